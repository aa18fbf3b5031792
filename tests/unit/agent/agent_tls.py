"""A throwaway cluster CA for the agent's unit tests, a fake of our CA service, a server that serves like a controller.

`Cluster` issues certificates as the controller's CA does (core/pki.py,
controller/bootstrap.py): CN = ID, OU = role, O = cluster ID, and the fixed
server names `pki.CONTROLLER_NAME` (controllers) and `pki.NODE_NAME` (nodes).
`FakeCA` implements `shoal.v1.ca_pb2_grpc.CAServicer` over a `Cluster`.
`serving_controller` serves fakes of our services the way the controller
does: mutual TLS on one port and server-only TLS on a join port, with the
controller's `authz.Authorizer` in front of both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import AsyncIterator, Callable

import grpc

from shoal import authz, ids, pki, tls
from shoal.v1 import ca_pb2, ca_pb2_grpc, dispatcher_pb2_grpc

VALIDITY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A root CA and the cluster ID its certificates name."""

    cluster_id: str
    ca_pem: bytes
    ca_key_pem: bytes

    @classmethod
    def new(cls, cluster_id: str = "cluster0000000000000000001") -> Cluster:
        ca_pem, ca_key_pem = pki.new_ca(f"shoal-ca-{cluster_id}", cluster_id)
        return cls(cluster_id, ca_pem, ca_key_pem)

    def issue(
        self, csr_pem: bytes, common_name: str, role: str, *, validity: datetime.timedelta = VALIDITY
    ) -> bytes:
        """A certificate for a CSR, with the server name of the role, as the controller's CA issues it."""
        names = (pki.CONTROLLER_NAME,) if role == "controller" else (pki.NODE_NAME,) if role == "worker" else ()
        return pki.issue(
            self.ca_pem,
            self.ca_key_pem,
            csr_pem,
            common_name=common_name,
            role=role,
            organization=self.cluster_id,
            validity=validity,
            dns_names=names,
        )

    def bundle(self, common_name: str, role: str, *, validity: datetime.timedelta = VALIDITY) -> tls.Bundle:
        """A fresh key and a certificate from this CA."""
        key = pki.new_key()
        cert = self.issue(pki.csr_pem(key), common_name, role, validity=validity)
        return tls.Bundle(self.ca_pem, cert, pki.key_pem(key))

    def controller(self, controller_id: str = "controller00000000000000001") -> tls.Bundle:
        return self.bundle(controller_id, "controller")

    def node(self, node_id: str, *, validity: datetime.timedelta = VALIDITY) -> tls.Bundle:
        return self.bundle(node_id, "worker", validity=validity)

    def token(self) -> str:
        """A worker join token of this CA."""
        return pki.new_token(self.ca_pem)


class FakeCA(ca_pb2_grpc.CAServicer):
    """Join with `token` makes a new node ID and a worker certificate; RenewCertificate keeps the caller's identity.

    Tests queue status codes in `join_errors` / `renew_errors` to make the next
    calls fail, and read what was asked in `joins` and `renewals`.
    """

    def __init__(self, cluster: Cluster, *, validity: datetime.timedelta = VALIDITY) -> None:
        self.cluster = cluster
        self.token = cluster.token()
        self.validity = validity
        self.joins: list[ca_pb2.JoinRequest] = []
        self.issued: list[str] = []  # node IDs given out by Join
        self.renewals: list[authz.Caller] = []
        self.join_errors: list[grpc.StatusCode] = []
        self.renew_errors: list[grpc.StatusCode] = []

    async def Join(self, request: ca_pb2.JoinRequest, context: grpc.aio.ServicerContext) -> ca_pb2.JoinResponse:  # noqa: N802
        self.joins.append(request)
        if self.join_errors:
            await context.abort(self.join_errors.pop(0), "scripted join error")
        if not pki.tokens_equal(request.token, self.token):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid join token (it may have been rotated)")
        node_id = ids.new_id()
        self.issued.append(node_id)
        cert = self.cluster.issue(request.csr_pem, node_id, "worker", validity=self.validity)
        return ca_pb2.JoinResponse(
            certificate_pem=cert, ca_pem=self.cluster.ca_pem, node_id=node_id, cluster_id=self.cluster.cluster_id
        )

    async def RenewCertificate(  # noqa: N802
        self, request: ca_pb2.RenewCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.RenewCertificateResponse:
        who = authz.caller()
        self.renewals.append(who)
        if self.renew_errors:
            await context.abort(self.renew_errors.pop(0), "scripted renewal error")
        cert = self.cluster.issue(request.csr_pem, who.id, who.role, validity=self.validity)
        return ca_pb2.RenewCertificateResponse(certificate_pem=cert, ca_pem=self.cluster.ca_pem)


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where a fake controller listens: mutual TLS, and the server-only TLS join port."""

    addr: str
    join_addr: str


@contextlib.asynccontextmanager
async def serving_controller(
    bundle: tls.Bundle,
    *,
    dispatcher: dispatcher_pb2_grpc.DispatcherServicer | None = None,
    ca: ca_pb2_grpc.CAServicer | None = None,
    removed: Callable[[str], bool] = lambda _id: False,
) -> AsyncIterator[Endpoints]:
    """Serve the given fakes on two free loopback ports as a controller with `bundle` serves; yields both."""
    cluster_id = bundle.identity.cluster_id
    server = grpc.aio.server(
        interceptors=[authz.Authorizer(lambda: cluster_id, authz.CONTROLLER_RULES, removed)],
        options=(("grpc.so_reuseport", 0), *tls.SERVER_KEEPALIVE_OPTIONS),
    )
    if dispatcher is not None:
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(dispatcher, server)
    if ca is not None:
        ca_pb2_grpc.add_CAServicer_to_server(ca, server)
    serving = tls.ServingCertificate(bundle)
    port = server.add_secure_port("127.0.0.1:0", serving.credentials())
    join_port = server.add_secure_port("127.0.0.1:0", serving.credentials(require_client_cert=False))
    await server.start()
    try:
        yield Endpoints(f"127.0.0.1:{port}", f"127.0.0.1:{join_port}")
    finally:
        await server.stop(0)
