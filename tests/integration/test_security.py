"""The threat model, one test per point, with real certificates and real connections.

A compromised worker holds only its own key: it must not reach admin APIs,
read other nodes' secrets, change other nodes' tasks, or pose as another node;
strangers (no certificate, another CA, an expired or removed certificate, a
wrong or rotated token, plaintext) get nothing.
"""

from __future__ import annotations

import datetime
import json
import pathlib

import grpc
import pytest

from shoal import pki, tls
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import (
    ca_pb2,
    ca_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    dispatcher_pb2,
    dispatcher_pb2_grpc,
    objects_pb2,
    types_pb2,
)
from tests.integration import harness
from tests.integration.harness import Cluster, docker, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def rpc_code(call, *args, **kwargs) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call(*args, timeout=5, **kwargs)
    return err.value.code()


def list_nodes(cluster: Cluster, bundle: tls.Bundle | None, *, plaintext: bool = False) -> grpc.StatusCode:
    """The status of ListNodes called with `bundle` (None: TLS without a client certificate)."""
    if plaintext:
        channel = grpc.insecure_channel(cluster.controller_addr)
    else:
        channel = harness.sync_channel(cluster.controller_addr, bundle, ca_pem=cluster_ca(cluster))
    with channel:
        return rpc_code(control_pb2_grpc.ControlStub(channel).ListNodes, control_pb2.ListNodesRequest())


def cluster_ca(cluster: Cluster) -> bytes:
    return tls.Bundle.load(cluster.admin_tls).ca_pem


def signed_by_cluster(
    cluster: Cluster, *, role: str, cn: str, validity: datetime.timedelta, start: datetime.datetime | None = None
) -> tls.Bundle:
    """A certificate signed with the cluster's own CA key (read from etcd, as only a controller can)."""
    stored = harness.read_etcd(cluster, Keys(cluster.prefix).object(Kind.CA, "root"))
    ca = objects_pb2.CertificateAuthority.FromString(stored)
    cluster_id = pki.identity(pki.load_cert(ca.root_cert_pem)).cluster_id
    key = pki.new_key()
    cert = pki.issue(
        ca.root_cert_pem,
        ca.root_key_pem,
        pki.csr_pem(key),
        common_name=cn,
        role=role,
        organization=cluster_id,
        validity=validity,
        start=start,
    )
    return tls.Bundle(ca.root_cert_pem, cert, pki.key_pem(key))


def test_strangers_are_refused(cluster: Cluster) -> None:
    admin = tls.Bundle.load(cluster.admin_tls)
    assert list_nodes(cluster, None) == grpc.StatusCode.UNAVAILABLE  # no certificate: no handshake
    assert list_nodes(cluster, None, plaintext=True) == grpc.StatusCode.UNAVAILABLE  # plaintext to a TLS port

    other_ca, other_key = pki.new_ca("another CA", admin.identity.cluster_id)
    key = pki.new_key()
    forged = pki.issue(
        other_ca,
        other_key,
        pki.csr_pem(key),
        common_name="admin-x",
        role="admin",
        organization=admin.identity.cluster_id,
        validity=datetime.timedelta(days=1),
    )
    assert list_nodes(cluster, tls.Bundle(admin.ca_pem, forged, pki.key_pem(key))) == grpc.StatusCode.UNAVAILABLE

    two_hours_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    expired = signed_by_cluster(
        cluster, role="admin", cn="admin-old", validity=datetime.timedelta(hours=1), start=two_hours_ago
    )
    assert list_nodes(cluster, expired) == grpc.StatusCode.UNAVAILABLE

    # The real admin bundle works, so the refusals above are about the certificates.
    with harness.sync_channel(cluster.controller_addr, admin) as channel:
        assert control_pb2_grpc.ControlStub(channel).ListNodes(control_pb2.ListNodesRequest(), timeout=5).nodes


def test_a_worker_cannot_use_the_control_api(cluster: Cluster) -> None:
    worker = harness.join_node(cluster, "mallory")
    with harness.sync_channel(cluster.controller_addr, worker) as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        assert rpc_code(stub.ListNodes, control_pb2.ListNodesRequest()) == grpc.StatusCode.PERMISSION_DENIED
        # Not even on its own node: a worker cannot change its labels or availability.
        own = control_pb2.UpdateNodeRequest(ref=worker.identity.id, spec=types_pb2.NodeSpec(labels={"vip": "yes"}))
        assert rpc_code(stub.UpdateNode, own) == grpc.StatusCode.PERMISSION_DENIED
        assert rpc_code(stub.GetSecret, control_pb2.GetFileRequest(ref="x")) == grpc.StatusCode.PERMISSION_DENIED
        ca = ca_pb2_grpc.CAStub(channel)
        # Renewing keeps its own identity: the CA issues for the certificate's CN, not a name in the request.
        renewed = ca.RenewCertificate(ca_pb2.RenewCertificateRequest(csr_pem=pki.csr_pem(pki.new_key())), timeout=5)
        assert pki.identity(pki.load_cert(renewed.certificate_pem)) == worker.identity
    node = {n.name: n for n in cluster.control.nodes()}["mallory"]
    assert not node.spec.labels


def test_join_tokens_wrong_rotated_and_rate_limited(cluster: Cluster) -> None:
    token = cluster.worker_token
    wrong = token[:-5] + ("aaaaa" if not token.endswith("aaaaa") else "bbbbb")
    with pytest.raises(grpc.RpcError) as err:
        harness.join_node(cluster, "wrongtoken", token=wrong)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    rotated = cluster.ctl("cluster", "join-token", "worker", "--rotate", "-q", check=True).stdout.strip()
    assert rotated != token and rotated.startswith(pki.TOKEN_PREFIX)
    with pytest.raises(grpc.RpcError) as err:
        harness.join_node(cluster, "oldtoken", token=token)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert harness.join_node(cluster, "newtoken", token=rotated).identity.role == "worker"
    # Nodes that joined with the old token are not disturbed: they use certificates.
    cluster.wait_ready("n1", "n2", "n3")

    # A token whose CA digest is not the cluster's is refused before anything is sent.
    other_ca, _ = pki.new_ca("another CA", "x")
    foreign = pki.new_token(other_ca)
    with pytest.raises(Exception, match="does not match the join token"):
        harness.join_node(cluster, "foreign", token=foreign)

    # Joins are rate-limited per address.
    ca_pem = cluster_ca(cluster)
    codes = []
    with harness.sync_channel(cluster.join_addr, None, ca_pem=ca_pem) as channel:
        stub = ca_pb2_grpc.CAStub(channel)
        for _ in range(300):
            try:
                stub.Join(ca_pb2.JoinRequest(token=wrong, csr_pem=b"x"), timeout=5)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes


def test_a_removed_node_is_refused_and_its_agent_stops(cluster: Cluster, image: str) -> None:
    bundle = tls.Bundle.load(cluster.tmp / "n3" / "tls")
    cluster.ctl("node", "rm", "--force", "n3", check=True)
    # Its session ends and it cannot come back with its certificate.
    wait_until(lambda: not cluster.agents["n3"].running, 30, "the removed node's agent to exit")
    assert "removed" in cluster.agents["n3"].log()
    with harness.sync_channel(cluster.controller_addr, bundle) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        beat = dispatcher_pb2.ReportRequest(heartbeat=dispatcher_pb2.HeartbeatRequest(session_id="x"))
        code = rpc_code(lambda timeout: next(stub.Report(iter([beat]), timeout=timeout)))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        ca = ca_pb2_grpc.CAStub(channel)
        code = rpc_code(ca.RenewCertificate, ca_pb2.RenewCertificateRequest(csr_pem=pki.csr_pem(pki.new_key())))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "n3" not in {n.name for n in cluster.control.nodes()}


def _files_of(cluster: Cluster, node: str) -> list[pathlib.Path]:
    root = cluster.tmp / node / "files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_secrets_reach_exactly_the_nodes_that_need_them(cluster: Cluster, image: str, tmp_path: pathlib.Path) -> None:
    data = b"s3cr3t-value-" + pathlib.Path("/proc/sys/kernel/random/uuid").read_bytes().strip()
    source = tmp_path / "secret.txt"
    source.write_bytes(data)
    cluster.ctl("secret", "create", "db-password", "-f", str(source), check=True)
    cluster.ctl("config", "create", "app-conf", "-f", "-", input="mode=fast\n", check=True)

    # Stored sealed: the plaintext is nowhere in etcd.
    assert all(data not in value for value in harness.etcd_dump(cluster).values())
    # Never shown, in any format.
    assert data.decode() not in cluster.ctl("secret", "inspect", "db-password", check=True).stdout
    assert "data" not in json.dumps(cluster.ctl_json("secret", "inspect", "db-password")).lower().replace(
        "metadata", ""
    )
    assert b"mode=fast" in cluster.ctl("config", "inspect", "app-conf", check=True).stdout.encode()

    service_id = create(
        cluster,
        "db",
        image,
        "--replicas",
        "2",
        "--constraint",
        "node.hostname!=n3",
        "--secret",
        "db-password,mode=0400",
        "--config",
        "app-conf,target=/etc/app.conf",
        *SLEEP,
    )
    wait_until(lambda: converged(cluster, service_id, 2, "db"), 90, "2 replicas on n1 and n2")
    for node in ("n1", "n2"):
        files = _files_of(cluster, node)
        assert any(p.read_bytes() == data for p in files), f"{node} lacks the secret"
        assert all(p.stat().st_mode & 0o777 in (0o400, 0o444) for p in files)
    assert not _files_of(cluster, "n3")
    assert "tmpfs" in pathlib.Path("/proc/mounts").read_text().split(str(cluster.tmp / "n1" / "files"))[1][:40]

    for c in cluster.running_containers("db"):
        inside = docker("exec", c["id"], "cat", "/run/secrets/db-password").stdout
        assert inside == data.decode()
        assert docker("exec", c["id"], "cat", "/etc/app.conf").stdout == "mode=fast\n"
        mode = docker("exec", c["id"], "stat", "-c", "%a", "/run/secrets/db-password").stdout.strip()
        assert mode == "400"
        write = docker("exec", c["id"], "sh", "-c", "echo x > /run/secrets/db-password", check=False)
        assert write.returncode != 0  # mounted read-only

    # In use: cannot be removed.
    rm = cluster.ctl("secret", "rm", "db-password")
    assert rm.returncode != 0 and "in use" in rm.stderr
    # Gone with the tasks: the files are wiped when the tasks stop.
    cluster.ctl("service", "rm", "db", check=True)
    wait_until(lambda: not _files_of(cluster, "n1") and not _files_of(cluster, "n2"), 60, "the secrets to be wiped")
    wait_until(lambda: cluster.ctl("secret", "rm", "db-password").returncode == 0, 30, "the secret to be removable")


def test_secret_limits_and_names(cluster: Cluster) -> None:
    big = cluster.ctl("secret", "create", "big", "-f", "-", input="x" * (500 * 1024 + 1))
    assert big.returncode != 0 and "500 KB" in big.stderr
    bad = cluster.ctl("secret", "create", "bad!name", "-f", "-", input="x")
    assert bad.returncode != 0 and "invalid" in bad.stderr
    cluster.ctl("secret", "create", "dup", "-f", "-", input="x", check=True)
    dup = cluster.ctl("secret", "create", "dup", "-f", "-", input="y")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    missing = cluster.ctl("service", "create", "--name", "s", "--image", "x", "--secret", "nosuch")
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_swarmctl_says_what_is_missing(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    import subprocess

    result = subprocess.run(
        [
            str(harness.BIN / "swarmctl"),
            "-H",
            cluster.controller_addr,
            "--tls-dir",
            str(tmp_path / "none"),
            "node",
            "ls",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "ca.pem is missing" in line and "--tls-dir" in line
    # A bundle of another cluster: the handshake fails, and swarmctl says so in one line.
    other = tmp_path / "other"
    ca, key_pem = pki.new_ca("x", "y")
    key = pki.new_key()
    cert = pki.issue(
        ca,
        key_pem,
        pki.csr_pem(key),
        common_name="a",
        role="admin",
        organization="y",
        validity=datetime.timedelta(days=1),
    )
    tls.Bundle(ca, cert, pki.key_pem(key)).save(other)
    result = subprocess.run(
        [str(harness.BIN / "swarmctl"), "-H", cluster.controller_addr, "--tls-dir", str(other), "node", "ls"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "TLS" in line
