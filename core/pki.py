"""Keys, certificate requests, certificates and join tokens: what every party of the cluster needs.

Identity lives in certificates: CN = node or user ID, OU = role (controller,
worker, admin), O = cluster ID. Every key is ECDSA P-256. A join token is
`SHOALTKN-1-<digest>-<secret>`: the digest (SHA-256 of the root CA
certificate, base 36) lets a joining node check the CA it is shown; the
secret, which differs per role, lets the CA admit it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import ipaddress
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal import errors

#: Every certificate the CA issues to a controller, node or admin carries
#: these names, and clients verify servers against them, so addresses (which
#: change with network namespaces and NAT) never have to be in certificates.
CONTROLLER_NAME = "shoal-controller"
NODE_NAME = "shoal-node"


def node_server_name(node_id: str) -> str:
    """The name only node `node_id`'s certificate carries (beside NODE_NAME): what the controller dials it by,
    so that the TLS handshake itself proves it reached that node and not another one at the same address."""
    return f"{node_id}.{NODE_NAME}"


ROLES = ("controller", "worker", "admin")
TOKEN_PREFIX = "SHOALTKN-1-"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a certificate names."""

    id: str
    role: str
    cluster_id: str


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise errors.InvalidArgument("expected an ECDSA key")
    return key


def csr_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A certificate signing request for `key`; the CA decides the subject."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise errors.InvalidArgument(f"not a PEM certificate: {exc}") from None


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def identity(cert: x509.Certificate) -> Identity:
    """The (id, role, cluster) a certificate names."""

    def one(oid: x509.ObjectIdentifier) -> str:
        attrs = cert.subject.get_attributes_for_oid(oid)
        return str(attrs[0].value) if attrs else ""

    return Identity(one(NameOID.COMMON_NAME), one(NameOID.ORGANIZATIONAL_UNIT_NAME), one(NameOID.ORGANIZATION_NAME))


def digest(ca_pem: bytes) -> str:
    """The base-36 SHA-256 of a CA certificate (its DER form), as join tokens carry it."""
    der = load_cert(ca_pem).public_bytes(serialization.Encoding.DER)
    n = int.from_bytes(hashlib.sha256(der).digest(), "big")
    out = []
    for _ in range(50):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def new_token(ca_pem: bytes) -> str:
    """A fresh join token for the CA."""
    secret = "".join(secrets.choice(_B36) for _ in range(25))
    return f"{TOKEN_PREFIX}{digest(ca_pem)}-{secret}"


@dataclasses.dataclass(frozen=True)
class Token:
    """A parsed join token."""

    ca_digest: str
    secret: str


def parse_token(token: str) -> Token:
    """The parts of a join token; InvalidArgument if it is not one."""
    if not token.startswith(TOKEN_PREFIX):
        raise errors.InvalidArgument("invalid join token")
    ca_digest, sep, secret = token[len(TOKEN_PREFIX) :].partition("-")
    if not sep or len(ca_digest) != 50 or len(secret) != 25 or not (ca_digest + secret).isalnum():
        raise errors.InvalidArgument("invalid join token")
    return Token(ca_digest, secret)


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so that the time taken says nothing about the secret."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_ca(common_name: str, organization: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed root CA: (certificate PEM, key PEM)."""
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert_pem(cert), key_pem(key)


def issue(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    csr: bytes,
    *,
    common_name: str,
    role: str = "",
    organization: str = "",
    validity: datetime.timedelta,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    start: datetime.datetime | None = None,
) -> bytes:
    """A certificate for the CSR's key with the subject the CA chooses (the CSR's own subject is ignored).

    It is valid from `start` (default: now, backdated a little) for `validity`.
    """
    try:
        request = x509.load_pem_x509_csr(csr)
    except ValueError:
        raise errors.InvalidArgument("not a PEM certificate signing request") from None
    if not request.is_signature_valid:
        raise errors.InvalidArgument("the certificate signing request's signature is invalid")
    public = request.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise errors.InvalidArgument("certificate requests must be for ECDSA P-256 keys")
    ca_cert, ca_key = load_cert(ca_cert_pem), load_key(ca_key_pem)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if role:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = start or datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        # Backdated a little for clocks that lag, but not so much that short test certificates renew at once.
        .not_valid_before(now - min(datetime.timedelta(minutes=1), abs(validity) / 10))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return cert_pem(builder.sign(ca_key, hashes.SHA256()))
