"""Asking a registry for the digest an image tag has now (the OCI distribution API), as the docker CLI does.

`HEAD /v2/<name>/manifests/<tag>` with the manifest types we accept (a list
or index first, so a multi-platform image resolves to its list, as Docker
pins it); the answer's `Docker-Content-Digest` is the digest (a registry
that leaves it out is asked with GET, and the body is hashed). A 401 names
the scheme in `WWW-Authenticate`: Basic (retry with the credentials) or
Bearer (fetch a token from the realm, with the credentials or an identity
token, then retry).

Transport follows Docker's rules: HTTPS, verified with the system CAs and
`<certs-dir>/<host:port>/ca.crt` when it exists; a registry counted insecure
(`--insecure-registry`, or on a loopback address) is also tried without
verification and then over plain HTTP. Errors are one line:

    ResolveError             (base)
      Unreachable            no answer, TLS failure, 5xx: UNAVAILABLE
      Refused                401/403 after authenticating: PERMISSION_DENIED
      UnknownImage           404: NOT_FOUND
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import pathlib
import re
import ssl
from collections.abc import Mapping

import aiohttp

from shoal import errors, imageref
from shoal.controller.settings import RegistrySettings
from shoal.v1 import types_pb2

ACCEPT = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
#: A manifest larger than this is not one (registries cap them at 4 MiB).
MAX_MANIFEST = 4 * 1024 * 1024


class ResolveError(errors.ShoalError):
    """The tag could not be resolved."""


class Unreachable(ResolveError, errors.Unavailable):
    """The registry did not answer (or not over a connection we trust)."""


class Refused(ResolveError, errors.PermissionDenied):
    """The registry refused the credentials, or asked for some and had none."""


class UnknownImage(ResolveError, errors.NotFound):
    """The registry does not have this repository or tag."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    digest: str
    pinned: str
    media_type: str


def _is_insecure(host: str, settings: RegistrySettings) -> bool:
    """Docker's rule: registries named by --insecure-registry, and any on a loopback address."""
    if host in settings.insecure_registries:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def ssl_context(host: str, settings: RegistrySettings, *, verify: bool = True) -> ssl.SSLContext:
    """System CAs plus the registry's own `ca.crt` from the certs directory, or no verification."""
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context()
    ca = pathlib.Path(settings.certs_dir) / host / "ca.crt"
    if ca.is_file():
        ctx.load_verify_locations(cafile=str(ca))
    return ctx


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme ("basic", "bearer") and parameters of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def _basic(auth: types_pb2.RegistryAuth) -> str:
    return "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()


class Resolver:
    """Resolves tags to digests; one aiohttp session per call, each call under `settings.timeout`."""

    def __init__(self, settings: RegistrySettings) -> None:
        self._settings = settings

    async def resolve(self, image: str, auth: types_pb2.RegistryAuth | None = None) -> Resolved:
        """The digest `image`'s tag has now, and `image` pinned to it."""
        try:
            ref = imageref.parse(image)
        except ValueError as exc:
            raise errors.InvalidArgument(str(exc)) from None
        host = ref.api_host
        attempts: list[tuple[str, ssl.SSLContext | bool]] = [("https", ssl_context(host, self._settings))]
        if _is_insecure(ref.domain, self._settings):
            attempts += [("https", ssl_context(host, self._settings, verify=False)), ("http", False)]
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        last: Exception | None = None
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for scheme, tls in attempts:
                try:
                    digest, media_type = await self._ask(session, f"{scheme}://{host}", ref, auth, tls)
                except (aiohttp.ClientConnectionError, ssl.SSLError) as exc:
                    last = exc
                    continue
                except TimeoutError:
                    raise Unreachable(f"registry {host} did not answer within {self._settings.timeout:g}s") from None
                except (aiohttp.ClientError, ValueError) as exc:  # a broken answer: as good as none
                    raise Unreachable(f"registry {host} answered something unusable: {_reason(exc)}") from None
                return Resolved(digest, imageref.pinned(image, digest), media_type)
        raise Unreachable(f"cannot reach registry {host}: {_reason(last)}")

    async def _ask(
        self,
        session: aiohttp.ClientSession,
        base: str,
        ref: imageref.Reference,
        auth: types_pb2.RegistryAuth | None,
        tls: ssl.SSLContext | bool,
    ) -> tuple[str, str]:
        url = f"{base}/v2/{ref.path}/manifests/{ref.lookup}"
        headers = {"Accept": ACCEPT}
        async with session.head(url, headers=headers, ssl=tls, allow_redirects=True) as resp:
            status, found = resp.status, resp.headers
        if status == 401:
            headers["Authorization"] = await self._authorize(session, found, ref, auth, tls)
            async with session.head(url, headers=headers, ssl=tls, allow_redirects=True) as resp:
                status, found = resp.status, resp.headers
        _check(status, ref)
        digest = found.get("Docker-Content-Digest", "")
        media_type = found.get("Content-Type", "").split(";")[0]
        if digest:
            return digest, media_type
        # Without the header the digest is the manifest's own hash, as the registry would compute it.
        async with session.get(url, headers=headers, ssl=tls, allow_redirects=True) as resp:
            _check(resp.status, ref)
            body = await resp.content.read(MAX_MANIFEST + 1)
        if len(body) > MAX_MANIFEST:
            raise Unreachable(f"registry {ref.api_host} sent a manifest larger than {MAX_MANIFEST} bytes")
        return "sha256:" + hashlib.sha256(body).hexdigest(), media_type

    async def _authorize(
        self,
        session: aiohttp.ClientSession,
        headers: Mapping[str, str],
        ref: imageref.Reference,
        auth: types_pb2.RegistryAuth | None,
        tls: ssl.SSLContext | bool,
    ) -> str:
        """The Authorization header the registry's challenge asks for."""
        scheme, params = challenge(headers.get("WWW-Authenticate", ""))
        has_password = auth is not None and bool(auth.username or auth.password)
        if scheme == "basic":
            if auth is None or not has_password:
                raise Refused(f"registry {ref.api_host} wants credentials for {ref.path} (--with-registry-auth)")
            return _basic(auth)
        if scheme != "bearer" or "realm" not in params:
            raise Refused(f"registry {ref.api_host} asks for an authentication scheme we do not speak ({scheme!r})")
        query = {"service": params.get("service", ""), "scope": params.get("scope", f"repository:{ref.path}:pull")}
        if auth is not None and auth.identity_token:
            form = {**query, "grant_type": "refresh_token", "refresh_token": auth.identity_token, "client_id": "shoal"}
            request = session.post(params["realm"], data=form, ssl=tls)
        else:
            token_headers = {"Authorization": _basic(auth)} if auth is not None and has_password else {}
            request = session.get(params["realm"], params=query, headers=token_headers, ssl=tls)
        async with request as resp:
            if resp.status in (401, 403):
                raise Refused(f"registry {ref.api_host}'s token service refused the credentials")
            if resp.status != 200:
                raise Unreachable(f"registry {ref.api_host}'s token service answered {resp.status}")
            answer = await resp.json(content_type=None)
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise Unreachable(f"registry {ref.api_host}'s token service sent no token")
        return f"Bearer {token}"


def _check(status: int, ref: imageref.Reference) -> None:
    if status in (200, 202):
        return
    what = f"{ref.path}:{ref.lookup}" if not ref.digest else f"{ref.path}@{ref.digest}"
    if status in (401, 403):
        raise Refused(f"registry {ref.api_host} refused access to {ref.path} (unauthorized: check the credentials)")
    if status == 404:
        raise UnknownImage(f"registry {ref.api_host} has no image {what}")
    raise Unreachable(f"registry {ref.api_host} answered {status} for {what}")


def _reason(exc: Exception | None) -> str:
    if exc is None:
        return "no attempt was made"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:200]
