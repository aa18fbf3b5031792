"""The CA API: joining the cluster with a token, and renewing certificates.

Join is the only call allowed without a client certificate, and the only
place where node objects are created: a worker token gets a worker
certificate for a new node, a controller token a controller certificate.
Tokens are compared in constant time, and joins are rate-limited per address.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from shoal import authz, errors, ids, pki
from shoal.controller import validation
from shoal.controller.api.base import Handlers
from shoal.controller.bootstrap import Authority, cert_validity
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.keys import Kind
from shoal.v1 import ca_pb2, ca_pb2_grpc, objects_pb2, types_pb2

log = logging.getLogger(__name__)


class RateLimiter:
    """A token bucket per address: `rate` joins a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, addr: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(addr, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            raise errors.ResourceExhausted("too many join attempts from this address; slow down")
        self._buckets[addr] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget idle addresses
            self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < 60}


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string such as "ipv4:127.0.0.1:5432"."""
    kind, _, rest = peer.partition(":")
    return rest.rsplit(":", 1)[0] if kind in ("ipv4", "ipv6") else peer


class CAServicer(Handlers, ca_pb2_grpc.CAServicer):
    """Join and RenewCertificate."""

    def __init__(self, *args, authority: Authority, limiter: RateLimiter, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._authority = authority
        self._limiter = limiter

    @handle
    async def Join(  # noqa: N802
        self, request: ca_pb2.JoinRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ca_pb2.JoinResponse:
        self._limiter.take(peer_host(context.peer()))
        term = self._leadership.require()
        ca = term.cache.ca
        if ca is None:
            raise errors.Unavailable("the cluster's CA is not loaded yet")
        # Compare with both tokens every time, so timing says nothing about which one (if any) matched.
        is_worker = pki.tokens_equal(request.token, ca.worker_token)
        is_controller = pki.tokens_equal(request.token, ca.controller_token)
        if not (is_worker or is_controller):
            raise errors.Unauthenticated("invalid join token (it may have been rotated)")
        role = "worker" if is_worker else "controller"
        new_id = ids.new_id()
        validity = cert_validity(term.cache.cluster)
        cert = self._authority.issue(request.csr_pem, common_name=new_id, role=role, validity=validity)
        if role == "worker":
            await self._create_node(term, new_id, request)
        log.info("%s %s joined from %s", role, request.node_name or new_id, peer_host(context.peer()))
        return ca_pb2.JoinResponse(
            certificate_pem=cert, ca_pem=self._authority.ca_pem, node_id=new_id, cluster_id=self._authority.cluster_id
        )

    async def _create_node(self, term, node_id: str, request: ca_pb2.JoinRequest) -> None:  # type: ignore[no-untyped-def]
        validation.check_name("node", request.node_name)
        validation.check_labels(f'node "{request.node_name}"', request.labels)
        if request.node_name in term.cache.node_by_name:
            raise errors.AlreadyExists(f'a node named "{request.node_name}" already exists')
        node = objects_pb2.Node(id=node_id, name=request.node_name)
        node.spec.labels.update(request.labels)
        node.status.CopyFrom(types_pb2.NodeStatus(state=types_pb2.NodeStatus.UNKNOWN, message="joined"))
        ops: list[w.Op] = [w.create(node), w.Claim(self._keys.name(Kind.NODE, node.name), node_id.encode())]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.AlreadyExists(f'a node named "{request.node_name}" already exists') from None

    @handle
    async def RenewCertificate(  # noqa: N802
        self, request: ca_pb2.RenewCertificateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ca_pb2.RenewCertificateResponse:
        caller = authz.caller()
        term = self._leadership.require()
        if caller.role == "worker" and caller.id not in term.cache.nodes:
            raise errors.PermissionDenied(f"node {caller.id} is not part of the cluster")
        validity = cert_validity(term.cache.cluster)
        cert = self._authority.issue(request.csr_pem, common_name=caller.id, role=caller.role, validity=validity)
        return ca_pb2.RenewCertificateResponse(certificate_pem=cert, ca_pem=self._authority.ca_pem)
