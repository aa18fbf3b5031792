"""The node's identity (agent/credentials.py): the saved certificate, joining with a token, renewal.

Joins and renewals go to an in-process fake of our CA service, served as the
controller serves it: server-only TLS on the join port, mutual TLS on the
other, behind the controller's Authorizer.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
from agent_fakes import NODE_ID, wait_until
from agent_tls import Cluster, Endpoints, FakeCA, serving_controller
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shoal import authz, errors, pki, tls
from shoal.agent import credentials as credentials_
from shoal.agent import runner as runner_
from shoal.agent import server
from shoal.agent.settings import AgentSettings

OTHER_CLUSTER = "cluster0000000000000000002"


def settings_for(
    state_dir: Path, *, token: str = "", join_addr: str = "", controllers: Sequence[str] = ("127.0.0.1:1",)
) -> AgentSettings:
    return AgentSettings(
        controllers=tuple(controllers),
        node_name="lab-1",
        state_dir=state_dir,
        labels={"zone": "a"},
        join_token=token,
        join_addr=join_addr,
        rpc_timeout=5.0,
        backoff_base=0.01,
        backoff_cap=0.05,
    )


def spki(public_key: ec.EllipticCurvePublicKey | object) -> bytes:
    """A public key's DER SubjectPublicKeyInfo, to compare keys."""
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def same_key_pair(bundle: tls.Bundle) -> bool:
    """True if the bundle's key is the one its certificate certifies."""
    return spki(bundle.cert.public_key()) == spki(pki.load_key(bundle.key_pem).public_key())


@pytest.fixture
def ca(cluster: Cluster) -> FakeCA:
    return FakeCA(cluster)


@pytest.fixture
async def controller(ca: FakeCA, cluster: Cluster) -> AsyncIterator[Endpoints]:
    async with serving_controller(cluster.controller(), ca=ca) as endpoints:
        yield endpoints


def test_the_join_port_is_the_first_controllers_port_plus_one(tmp_path: Path) -> None:
    assert credentials_.join_addr(settings_for(tmp_path, controllers=["10.0.0.1:4240", "10.0.0.2:4240"])) == (
        "10.0.0.1:4241"
    )
    assert credentials_.join_addr(settings_for(tmp_path, controllers=["[::1]:4240"])) == "[::1]:4241"
    assert credentials_.join_addr(settings_for(tmp_path, join_addr="10.0.0.9:7000")) == "10.0.0.9:7000"


async def test_without_a_certificate_or_a_token_there_is_one_clear_error(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)

    with pytest.raises(errors.FailedPrecondition) as failed:
        await credentials_.load_or_join(settings)

    message = str(failed.value)
    assert "\n" not in message
    assert f"no certificate in {settings.tls_dir}" in message
    assert "--join-token" in message
    assert not settings.tls_dir.exists()
    assert not settings.node_id_path.exists()


async def test_a_saved_certificate_is_loaded_without_joining(tmp_path: Path, node_bundle: tls.Bundle) -> None:
    # A token too, and no controller anywhere: the saved certificate wins and nothing is dialled.
    settings = settings_for(tmp_path, token=Cluster.new().token())
    node_bundle.save(settings.tls_dir)

    creds = await credentials_.load_or_join(settings)

    assert creds.bundle == node_bundle
    assert creds.node_id == NODE_ID


async def test_join_checks_the_ca_and_saves_the_bundle_and_the_node_id(
    controller: Endpoints, ca: FakeCA, cluster: Cluster, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, token=ca.token, join_addr=controller.join_addr)

    creds = await credentials_.load_or_join(settings)

    (node_id,) = ca.issued
    (request,) = ca.joins
    assert (request.token, request.node_name, dict(request.labels)) == (ca.token, "lab-1", {"zone": "a"})
    # The key never left the node: the CSR, the certificate and the saved key are one key pair.
    assert spki(x509.load_pem_x509_csr(request.csr_pem).public_key()) == spki(creds.bundle.cert.public_key())
    assert same_key_pair(creds.bundle)
    assert creds.node_id == node_id
    assert creds.bundle.identity == pki.Identity(node_id, "worker", cluster.cluster_id)
    assert creds.bundle.ca_pem == cluster.ca_pem
    assert tls.Bundle.load(settings.tls_dir) == creds.bundle
    assert stat.S_IMODE((settings.tls_dir / tls.KEY_FILE).stat().st_mode) == 0o600
    assert settings.node_id_path.read_text() == node_id + "\n"


async def test_a_token_for_another_ca_is_refused_before_any_csr_is_sent(
    controller: Endpoints, ca: FakeCA, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, token=Cluster.new(OTHER_CLUSTER).token(), join_addr=controller.join_addr)

    with pytest.raises(errors.PermissionDenied) as refused:
        await credentials_.join(settings)

    assert str(refused.value) == f"the CA presented by {controller.join_addr} does not match the join token"
    assert ca.joins == []
    assert not tls.Bundle.exists(settings.tls_dir)
    assert not settings.node_id_path.exists()


async def test_a_token_the_ca_does_not_know_is_refused_and_nothing_is_saved(
    controller: Endpoints, ca: FakeCA, cluster: Cluster, tmp_path: Path
) -> None:
    stale = cluster.token()  # the right CA digest, but not the current secret (rotated)
    settings = settings_for(tmp_path, token=stale, join_addr=controller.join_addr)

    with pytest.raises(errors.Unauthenticated) as refused:
        await credentials_.join(settings)

    assert str(refused.value) == (
        f"join refused by {controller.join_addr}: invalid join token (it may have been rotated)"
    )
    assert len(ca.joins) == 1
    assert not tls.Bundle.exists(settings.tls_dir)
    assert not settings.node_id_path.exists()


async def test_a_malformed_token_is_refused_before_anything_is_dialled(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid join token"):
        await credentials_.join(settings_for(tmp_path, token="SHOALTKN-1-short-secret"))


async def test_join_is_retried_while_the_controller_is_unavailable(
    controller: Endpoints, ca: FakeCA, tmp_path: Path
) -> None:
    ca.join_errors = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]  # e.g. no leader yet
    settings = settings_for(tmp_path, token=ca.token, join_addr=controller.join_addr)

    bundle = await credentials_.join(settings)

    assert len(ca.joins) == 3
    (node_id,) = ca.issued
    assert bundle.identity.id == node_id


async def test_renew_once_replaces_the_bundle_and_calls_on_renew(
    controller: Endpoints, ca: FakeCA, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    settings = settings_for(tmp_path, controllers=[controller.addr])
    node_bundle.save(settings.tls_dir)
    creds = await credentials_.load_or_join(settings)
    renewed: list[tls.Bundle] = []
    creds.on_renew.append(renewed.append)

    await creds.renew_once(controller.addr)

    assert ca.renewals == [authz.Caller(NODE_ID, "worker")]  # asked with the old certificate
    assert renewed == [creds.bundle]
    assert creds.bundle.identity == node_bundle.identity
    assert creds.bundle.key_pem != node_bundle.key_pem  # a new key
    assert creds.bundle.cert.serial_number != node_bundle.cert.serial_number
    assert same_key_pair(creds.bundle)
    assert tls.Bundle.load(settings.tls_dir) == creds.bundle

    await creds.renew_once(controller.addr)  # the next channel uses the new certificate
    assert ca.renewals == [authz.Caller(NODE_ID, "worker")] * 2
    assert len(renewed) == 2


async def test_a_failed_renewal_keeps_the_certificate(
    controller: Endpoints, ca: FakeCA, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    settings = settings_for(tmp_path, controllers=[controller.addr])
    node_bundle.save(settings.tls_dir)
    creds = await credentials_.load_or_join(settings)
    renewed: list[tls.Bundle] = []
    creds.on_renew.append(renewed.append)
    ca.renew_errors = [grpc.StatusCode.UNAVAILABLE]

    with pytest.raises(grpc.aio.AioRpcError):
        await creds.renew_once(controller.addr)

    assert creds.bundle == node_bundle
    assert tls.Bundle.load(settings.tls_dir) == node_bundle
    assert renewed == []


async def test_renew_forever_renews_when_due_and_retries_failures(
    controller: Endpoints, ca: FakeCA, cluster: Cluster, tmp_path: Path
) -> None:
    # One-second certificates are due for renewal well before they expire (at 50-80% of their lifetime).
    ca.validity = datetime.timedelta(seconds=1)
    ca.renew_errors = [grpc.StatusCode.UNAVAILABLE]
    settings = settings_for(tmp_path, controllers=[controller.addr])
    creds = credentials_.Credentials(settings, cluster.node(NODE_ID, validity=ca.validity))
    renewed: list[tls.Bundle] = []
    creds.on_renew.append(renewed.append)

    task = asyncio.create_task(creds.renew_forever(lambda: controller.addr))
    try:
        await wait_until(lambda: len(renewed) >= 2, timeout=15, what="two renewals")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert len(ca.renewals) >= 3  # the failed one, then two that worked
    assert set(ca.renewals) == {authz.Caller(NODE_ID, "worker")}
    assert creds.bundle in renewed


class NoTasks:
    """The worker as the agent's server sees it, with no task on this node."""

    def runner(self, task_id: str) -> runner_.Runner | None:
        return None


def served_certificate(addr: str, client: tls.Bundle, directory: Path) -> x509.Certificate:
    """The certificate a server presents to `client` (checked against the CA and pki.NODE_NAME)."""
    client.save(directory)
    context = ssl.create_default_context(cafile=str(directory / tls.CA_FILE))
    context.load_cert_chain(str(directory / tls.CERT_FILE), str(directory / tls.KEY_FILE))
    context.set_alpn_protocols(["h2"])
    host, _, port = addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=pki.NODE_NAME) as conn:
            der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_the_agent_server_presents_the_renewed_certificate(
    controller: Endpoints, cluster: Cluster, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    creds = credentials_.Credentials(settings_for(tmp_path, controllers=[controller.addr]), node_bundle)
    async with server.serve("127.0.0.1:0", NoTasks(), grace=0, credentials=creds) as addr:
        client = cluster.controller()
        before = await asyncio.to_thread(served_certificate, addr, client, tmp_path / "c1")
        await creds.renew_once(controller.addr)
        after = await asyncio.to_thread(served_certificate, addr, client, tmp_path / "c2")

    assert before == node_bundle.cert
    assert after == creds.bundle.cert
    assert after != before
