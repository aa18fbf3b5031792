"""TLS material on disk and the gRPC credentials made from it.

A bundle is a directory with `ca.pem` (the cluster's root), `cert.pem` and
`key.pem` (0600). Every gRPC channel and server in Shoal is built here, with
mutual TLS; servers are checked against a fixed name (pki.CONTROLLER_NAME,
pki.NODE_NAME) rather than an address.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import pathlib
import random
import socket
import ssl
from collections.abc import Sequence

import grpc
from cryptography import x509

from shoal import errors, pki

CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"

#: Certificates renew at a random point in this part of their lifetime, so a
#: fleet that joined together does not renew together (SwarmKit: 50-80%).
RENEW_WINDOW = (0.5, 0.8)


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A CA certificate, and a certificate with its key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Bundle:
        """Read a bundle; FailedPrecondition names the missing file."""
        d = pathlib.Path(directory)
        parts = []
        for name in (CA_FILE, CERT_FILE, KEY_FILE):
            path = d / name
            try:
                parts.append(path.read_bytes())
            except FileNotFoundError:
                raise errors.FailedPrecondition(f"TLS bundle incomplete: {path} is missing") from None
            except PermissionError:
                raise errors.FailedPrecondition(f"TLS bundle unreadable: no permission to read {path}") from None
        return cls(*parts)

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        d = pathlib.Path(directory)
        return all((d / n).exists() for n in (CA_FILE, CERT_FILE, KEY_FILE))

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the bundle atomically; the key is readable by its owner only."""
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, data, mode in (
            (CA_FILE, self.ca_pem, 0o644),
            (CERT_FILE, self.cert_pem, 0o644),
            (KEY_FILE, self.key_pem, 0o600),
        ):
            tmp = d / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            tmp.replace(d / name)

    @functools.cached_property
    def cert(self) -> x509.Certificate:
        return pki.load_cert(self.cert_pem)

    @functools.cached_property
    def identity(self) -> pki.Identity:
        return pki.identity(self.cert)

    def renew_in(self) -> float:
        """Seconds until this certificate should be renewed (random within RENEW_WINDOW)."""
        cert = self.cert
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        at = start + (end - start) * random.uniform(*RENEW_WINDOW)
        return max(0.0, (at - datetime.datetime.now(datetime.UTC)).total_seconds())


def default_client_dir() -> pathlib.Path:
    """Where swarmctl looks for its admin bundle when not told: $XDG_CONFIG_HOME/shoal/tls."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return pathlib.Path(base) / "shoal" / "tls"


def channel_options(server_name: str, extra: Sequence[tuple[str, object]] = ()) -> list[tuple[str, object]]:
    """Options for a channel to a Shoal server: check its certificate against `server_name`."""
    return [("grpc.ssl_target_name_override", server_name), ("grpc.default_authority", server_name), *extra]


def channel_credentials(bundle: Bundle | None, ca_pem: bytes | None = None) -> grpc.ChannelCredentials:
    """Mutual TLS with `bundle`; or, to join, server-only TLS trusting `ca_pem`."""
    if bundle is None:
        return grpc.ssl_channel_credentials(root_certificates=ca_pem)
    return grpc.ssl_channel_credentials(bundle.ca_pem, bundle.key_pem, bundle.cert_pem)


#: What a controller's server allows of its clients' keepalive pings: agents ping every few
#: seconds to notice a dead controller (AgentSettings.keepalive), more often than gRPC's default allows.
SERVER_KEEPALIVE_OPTIONS: list[tuple[str, object]] = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]


def secure_channel(
    addr: str,
    bundle: Bundle | None,
    *,
    server_name: str = pki.CONTROLLER_NAME,
    ca_pem: bytes | None = None,
    options: Sequence[tuple[str, object]] = (),
) -> grpc.aio.Channel:
    """An asyncio channel to a Shoal server with (mutual) TLS."""
    return grpc.aio.secure_channel(
        addr, channel_credentials(bundle, ca_pem), options=channel_options(server_name, options)
    )


def server_config(bundle: Bundle) -> grpc.ServerCertificateConfiguration:
    """The certificate a server presents: the bundle's, followed by the root so that joiners can fetch it."""
    return grpc.ssl_server_certificate_configuration(
        [(bundle.key_pem, bundle.cert_pem + bundle.ca_pem)], root_certificates=bundle.ca_pem
    )


class ServingCertificate:
    """Server credentials whose certificate can be replaced while the server runs (renewal).

    gRPC asks `_fetch` at each new handshake; established connections keep
    the certificate they started with, so a renewal drops no session.
    """

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._config = server_config(bundle)
        self._served: dict[bool, grpc.ServerCertificateConfiguration] = {}

    def replace(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._config = server_config(bundle)

    def credentials(self, *, require_client_cert: bool = True) -> grpc.ServerCredentials:
        """Mutual TLS (the default), or server-only TLS for the join port."""

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            if self._served.get(require_client_cert) is self._config:
                return None
            self._served[require_client_cert] = self._config
            return self._config

        self._served[require_client_cert] = self._config
        return grpc.dynamic_ssl_server_credentials(
            # grpc's stubs miss that the fetcher returns None to keep the configuration it has.
            self._config,
            fetch,  # type: ignore[arg-type]
            require_client_authentication=require_client_cert,
        )


def fetch_root_ca(addr: str, ca_digest: str, timeout: float = 10.0) -> bytes:
    """The cluster's root CA certificate, taken from the server's TLS chain and checked against `ca_digest`.

    This is the one connection made without verifying the server: what it
    returns is trusted only if its digest matches the join token's, exactly
    as `docker swarm join` checks the CA it is shown. (Python 3.11's ssl
    module exposes the unverified chain only on the C object; 3.13 makes it
    public as SSLSocket.get_unverified_chain.)
    """
    host, _, port = addr.rpartition(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw:
            with ctx.wrap_socket(raw) as tls:
                chain_fn = getattr(tls, "get_unverified_chain", None) or tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]
                chain = chain_fn() or []
    except OSError as exc:
        raise errors.Unavailable(f"cannot reach {addr} to fetch the cluster CA: {exc}") from None
    for item in chain:
        pem = item.public_bytes()  # PEM, as str
        pem = pem.encode() if isinstance(pem, str) else pem
        if pki.digest(pem) == ca_digest:
            return pem
    raise errors.PermissionDenied(f"the CA presented by {addr} does not match the join token")
