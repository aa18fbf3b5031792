"""Who is calling, and may they: authorization of every RPC by role, in one place.

The caller is the peer's TLS client certificate (CN = node, controller or
user ID; OU = role; O = cluster ID), never a field of a request. The
`Authorizer` interceptor checks it before any handler runs: each method is
allowed to a set of roles, or to anyone (None) for the CA's Join, which is how
a node without a certificate gets one. Certificates must come from this
cluster's CA (TLS checks the signature and expiry) and name this cluster; a
removed node's certificate is refused. The caller is then left for the
handler (`caller()`, `node_caller()`). The controller and the agent's own
server both use it, with their own rules.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, cast

import grpc

from shoal import errors, pki

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller: CN (node, controller or user ID) and OU (role) of its certificate."""

    id: str
    role: str


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("shoal_caller", default=None)


def set_caller(caller: Caller | None) -> contextvars.Token[Caller | None]:
    """Record the caller of the RPC being handled (the interceptor does this)."""
    return _CALLER.set(caller)


def caller() -> Caller:
    """The authenticated caller of the current RPC."""
    current = _CALLER.get()
    if current is None:
        raise errors.Unauthenticated("this call needs a client certificate")
    return current


def node_caller() -> Caller:
    """The calling node (a worker or a controller acting as one)."""
    current = caller()
    if current.role not in ("worker", "controller"):
        raise errors.PermissionDenied(f"a {current.role} certificate cannot act as a node")
    return current


WORKER, CONTROLLER, ADMIN = "worker", "controller", "admin"

#: Who may call what, by method prefix; the longest matching prefix wins and
#: a method that matches nothing is refused.
CONTROLLER_RULES: Mapping[str, frozenset[str] | None] = {
    "/shoal.v1.CA/Join": None,
    "/shoal.v1.CA/RenewCertificate": frozenset({WORKER, CONTROLLER, ADMIN}),
    "/shoal.v1.Dispatcher/": frozenset({WORKER, CONTROLLER}),
    "/shoal.v1.Control/": frozenset({ADMIN, CONTROLLER}),
}
#: The agent's own server answers the controllers only.
AGENT_RULES: Mapping[str, frozenset[str] | None] = {"/shoal.v1.Agent/": frozenset({CONTROLLER})}

_PARSED_MAX = 4096


class Authorizer(grpc.aio.ServerInterceptor):
    """Checks the caller's certificate against the method's roles before the handler runs."""

    def __init__(
        self,
        cluster_id: Callable[[], str],
        rules: Mapping[str, frozenset[str] | None],
        removed: Callable[[str], bool] = lambda _id: False,
    ) -> None:
        self._cluster_id = cluster_id
        self._rules = rules
        self._removed = removed
        self._parsed: collections.OrderedDict[bytes, pki.Identity] = collections.OrderedDict()

    def _roles(self, method: str) -> frozenset[str] | None | Literal[False]:
        best = max((p for p in self._rules if method.startswith(p)), key=len, default=None)
        return False if best is None else self._rules[best]

    def _identity(self, pem: bytes) -> pki.Identity:
        found = self._parsed.get(pem)
        if found is None:
            found = pki.identity(pki.load_cert(pem))
            self._parsed[pem] = found
            if len(self._parsed) > _PARSED_MAX:
                self._parsed.popitem(last=False)
        return found

    def check(self, method: str, auth: Mapping[str, Any]) -> tuple[grpc.StatusCode, str] | Caller | None:
        """The caller, None for an open method, or (code, message) to refuse with."""
        roles = self._roles(method)
        if roles is False:
            return grpc.StatusCode.PERMISSION_DENIED, f"{method} is not allowed"
        pems = auth.get("x509_pem_cert") or []
        if not pems:
            if roles is None:
                return None
            return grpc.StatusCode.UNAUTHENTICATED, "a client certificate from this cluster's CA is required"
        who = self._identity(pems[0])
        if who.cluster_id != self._cluster_id():
            return grpc.StatusCode.PERMISSION_DENIED, "the certificate belongs to another cluster"
        if self._removed(who.id):
            return grpc.StatusCode.PERMISSION_DENIED, f"node {who.id} was removed from the cluster"
        if roles is not None and who.role not in roles:
            return grpc.StatusCode.PERMISSION_DENIED, f"a {who.role or 'role-less'} certificate may not call {method}"
        return Caller(who.id, who.role)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        return _wrap(handler, lambda context: self.check(method, context.auth_context()))


_MALFORMED = object()

#: The handlers of grpc.aio: grpc's stubs describe the synchronous server's (plain functions taking a
#: grpc.ServicerContext), but an aio server's are coroutine and async generator functions.
_Context = grpc.aio.ServicerContext[Any, Any]
_AioUnary = Callable[[Any, _Context], Awaitable[Any]]
_AioStream = Callable[[Any, _Context], AsyncIterator[Any]]


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], check: Callable[[_Context], tuple[grpc.StatusCode, str] | Caller | None]
) -> grpc.RpcMethodHandler[Any, Any]:
    inner_deserialize = handler.request_deserializer

    def deserialize(data: bytes) -> Any:
        # gRPC would answer INTERNAL for bytes that do not parse; it is the caller's error.
        try:
            return inner_deserialize(data) if inner_deserialize else data
        except Exception:  # noqa: BLE001 - any parse failure is a malformed request
            return _MALFORMED

    async def refuse_malformed(context: _Context, request: Any) -> None:
        if request is _MALFORMED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed request: not a valid message")

    async def admit(context: _Context, request: Any) -> None:
        verdict = check(context)
        if isinstance(verdict, tuple):
            await context.abort(*verdict)
        await refuse_malformed(context, request)
        set_caller(verdict)

    if handler.unary_unary is not None:
        inner_uu = cast(_AioUnary, handler.unary_unary)

        async def unary_unary(request: Any, context: _Context) -> Any:
            await admit(context, request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, handler.response_serializer)
    if handler.unary_stream is not None:
        inner_us = cast(_AioStream, handler.unary_stream)

        async def unary_stream(request: Any, context: _Context) -> AsyncIterator[Any]:
            await admit(context, request)
            async for item in inner_us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, handler.response_serializer)
    if handler.stream_stream is not None:
        inner_ss = cast(_AioStream, handler.stream_stream)

        async def stream_stream(requests: AsyncIterator[Any], context: _Context) -> AsyncIterator[Any]:
            await admit(context, None)

            async def well_formed() -> AsyncIterator[Any]:
                async for request in requests:
                    await refuse_malformed(context, request)
                    yield request

            async for item in inner_ss(well_formed(), context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserialize, handler.response_serializer)
    raise TypeError(f"unsupported handler kind for authorization: {handler}")
