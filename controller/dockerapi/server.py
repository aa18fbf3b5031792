"""The Docker API's HTTP side: the aiohttp app, its middlewares, and its listeners.

Every request goes through three middlewares, outermost first:
- errors: ShoalError (from the Control API or from mapping) becomes Docker's
  status code and `{"message": ...}`; so do aiohttp's own refusals (an
  oversized body is a 413, an unknown path a 404); anything unexpected is a
  500, logged once.
- versions: `/v1.N/...` paths are checked against the served range, as dockerd
  does ("client version 1.12 is too old..."); an unversioned path is the newest.
- admin: on TCP, the client certificate (required by TLS, from this cluster's
  CA) must be an admin's of this cluster; the unix socket is root's (0600).

`serve` opens the listeners (`unix:///PATH`, `tcp://HOST:PORT`) and keeps them
until cancelled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from shoal import errors, pki, tls

log = logging.getLogger(__name__)

#: The served API range: 1.41 is the Debian 20.10 CLI's own version, 1.45 the Docker SDK for Python 7's
#: default; newer CLIs negotiate down to MAX_VERSION from the ping.
MIN_VERSION = (1, 40)
MAX_VERSION = (1, 45)
#: The largest request body taken: a 500 KB secret is 683 KB as base64; a spec is far smaller.
MAX_BODY = 2 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: HTTP status of each error class, as dockerd answers for the same condition.
_STATUS: list[tuple[type[errors.ShoalError], int]] = [
    (errors.InvalidArgument, 400),
    (errors.FailedPrecondition, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.PermissionDenied, 403),
    (errors.Unauthenticated, 401),
    (errors.ResourceExhausted, 429),
    (errors.Unavailable, 503),
    (errors.DeadlineExceeded, 503),
]


def version_text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def status_of(exc: errors.ShoalError) -> int:
    """The HTTP status that reports `exc` (500 for a ShoalError of no more specific class)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Docker's exact media type: its clients read an error's message only from `application/json`,
    without a charset."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """Docker's error body: one JSON object with one message."""
    response = json_response({"message": message}, status=status)
    response.headers.update(_headers())
    return response


def _headers() -> dict[str, str]:
    return {
        "Api-Version": version_text(MAX_VERSION),
        "Docker-Experimental": "false",
        "Ostype": "linux",
        "Server": "Shoal",
    }


def route(path: str) -> str:
    """A route that also answers under any `/vX.Y/` prefix (the versions middleware checks which)."""
    return r"/{_version:(?:v[0-9]+\.[0-9]+/)?}" + path.lstrip("/")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except errors.ShoalError as exc:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, errors.Unavailable) and "leader" in message.lower():
            message = f"{message} (no leader: the cluster cannot be managed right now)"
        return error_response(status_of(exc), message)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body is larger than {MAX_BODY // 1024} KB")
    except web.HTTPNotFound:
        return error_response(404, "page not found")
    except web.HTTPMethodNotAllowed as exc:
        return error_response(405, f"method {exc.method} is not allowed on {request.path}")
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason)
    except Exception:  # noqa: BLE001 - one log line and Docker's 500, never a stack trace to the client
        log.exception("docker API: %s %s failed", request.method, request.path)
        return error_response(500, "internal error: see the controller's log")
    if not response.prepared:
        response.headers.update(_headers())
    return response


_VERSION = re.compile(r"^v(\d+)\.(\d+)/$")


@web.middleware
async def _versions(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.match_info.get("_version", "")
    if given:
        match = _VERSION.match(given)
        asked = (int(match.group(1)), int(match.group(2))) if match else MIN_VERSION
        if asked < MIN_VERSION:
            raise errors.InvalidArgument(
                f"client version {version_text(asked)} is too old. Minimum supported API version is "
                f"{version_text(MIN_VERSION)}, please upgrade your client to a newer version"
            )
        if asked > MAX_VERSION:
            raise errors.InvalidArgument(
                f"client version {version_text(asked)} is too new. Maximum supported API version is "
                f"{version_text(MAX_VERSION)}"
            )
    return await handler(request)


class AdminCheck:
    """On TLS connections, only an admin certificate of this cluster may call."""

    def __init__(self, cluster_id: Callable[[], str]) -> None:
        self._cluster_id = cluster_id
        self._known: dict[bytes, pki.Identity] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if not der:
                raise errors.Unauthenticated("a client certificate from this cluster's CA is required")
            who = self._known.get(der)
            if who is None:
                from cryptography import x509

                who = pki.identity(x509.load_der_x509_certificate(der))
                if len(self._known) > 1024:
                    self._known.clear()
                self._known[der] = who
            if who.cluster_id != self._cluster_id():
                raise errors.PermissionDenied("the certificate belongs to another cluster")
            if who.role != "admin":
                raise errors.PermissionDenied(
                    f"a {who.role or 'role-less'} certificate may not use the Docker API: an admin's is needed"
                )
        return await handler(request)


def make_app(
    routes: Callable[[web.Application], None], cluster_id: Callable[[], str]
) -> web.Application:
    """The app with its middlewares; `routes` adds the handlers."""
    app = web.Application(
        middlewares=[_errors, _versions, AdminCheck(cluster_id).middleware], client_max_size=MAX_BODY
    )
    routes(app)
    return app


async def body(request: web.Request) -> Any:
    """The request's JSON body; InvalidArgument (400) when it is not JSON."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"the request body is not valid JSON: {exc}") from None


def query_bool(request: web.Request, name: str) -> bool:
    """Docker's boolean query parameters: 1/true/yes (case-insensitive), anything else false."""
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidArgument(f"invalid {name} {raw!r}: expected an integer") from None


# ---- listeners -------------------------------------------------------------------------


def parse_listen(url: str) -> tuple[str, str]:
    """("unix", PATH) or ("tcp", "HOST:PORT") from `unix:///PATH` or `tcp://HOST:PORT`."""
    if url.startswith("unix://"):
        path = url[len("unix://") :]
        if not path.startswith("/"):
            raise ValueError(f"{url}: a unix socket needs an absolute path (unix:///run/shoal/docker.sock)")
        return "unix", path
    if url.startswith("tcp://"):
        hostport = url[len("tcp://") :].rstrip("/")
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{url}: expected tcp://HOST:PORT")
        return "tcp", hostport
    raise ValueError(f"{url}: expected unix:///PATH or tcp://HOST:PORT")


def _ssl_context(bundle: tls.Bundle, directory: pathlib.Path) -> ssl.SSLContext:
    """Server TLS that requires a client certificate from the cluster's CA."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    bundle.save(directory)  # ssl can load a certificate chain only from files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=bundle.ca_pem.decode())
    ctx.load_cert_chain(directory / tls.CERT_FILE, directory / tls.KEY_FILE)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _fresh_socket_path(path: pathlib.Path) -> None:
    """Make the socket's directory, and remove a socket a previous run left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.asynccontextmanager
async def serve(
    app: web.Application,
    listen: Sequence[str],
    *,
    server_bundle: Callable[[str], tls.Bundle],
    tls_dir: pathlib.Path,
) -> AsyncIterator[list[str]]:
    """Serve `app` on every listener until the context exits; yields what was bound.

    `server_bundle(host)` issues the TCP listeners' certificate, valid for the
    host clients dial (Docker's CLI checks it against DOCKER_HOST).
    """
    # A client that leaves (docker events interrupted) cancels its handler, and so its Control API stream.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    bound: list[str] = []
    try:
        for index, url in enumerate(listen):
            kind, where = parse_listen(url)
            if kind == "unix":
                path = pathlib.Path(where)
                _fresh_socket_path(path)
                site: web.BaseSite = web.UnixSite(runner, str(path))
                await site.start()
                os.chmod(path, 0o600)  # root's only, as dockerd's socket without a docker group
            else:
                host, _, port = where.rpartition(":")
                ctx = _ssl_context(server_bundle(host.strip("[]")), tls_dir / f"listener-{index}")
                site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=ctx)
                await site.start()
            bound.append(url)
        yield bound
    finally:
        await runner.cleanup()
