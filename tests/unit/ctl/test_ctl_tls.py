"""swarmctl and mutual TLS: where it finds the admin bundle, what it says when it cannot, whom it trusts."""

from __future__ import annotations

from pathlib import Path

from ctl_fakes import FakeControl
from ctl_tls import Cluster

from shoal import authz, pki, tls

HANDSHAKE = "TLS handshake failed: is --tls-dir the admin bundle of this cluster?"


def _one_line_error(result) -> str:
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("swarmctl: ")
    assert "Traceback" not in result.err
    return result.err.strip()


def test_calls_carry_the_admin_certificate(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")

    result = ctl("service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")
    assert fake.callers == [authz.Caller("admin", "admin")]


def test_a_missing_bundle_is_one_line_naming_the_file_and_the_options(
    swarmctl_bare, fake_addr: str, fake: FakeControl, tmp_path: Path
) -> None:
    result = swarmctl_bare("-H", fake_addr, "service", "ls")

    line = _one_line_error(result)
    default_ca = tmp_path / "config" / "shoal" / "tls" / "ca.pem"  # $XDG_CONFIG_HOME/shoal/tls
    assert f"{default_ca} is missing" in line
    assert "--tls-dir" in line and "SWARMCTL_TLS_DIR" in line
    assert fake.requests == []


def test_an_incomplete_bundle_names_the_missing_file(
    swarmctl_bare, fake_addr: str, cluster: Cluster, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    cluster.admin().save(partial)
    (partial / tls.KEY_FILE).unlink()

    result = swarmctl_bare("--tls-dir", str(partial), "-H", fake_addr, "node", "ls")

    line = _one_line_error(result)
    assert f"{partial / tls.KEY_FILE} is missing" in line
    assert "--tls-dir" in line and "SWARMCTL_TLS_DIR" in line


def test_the_bundle_may_come_from_the_environment(
    swarmctl_bare, fake_addr: str, fake: FakeControl, tls_dir: Path, monkeypatch
) -> None:
    fake.add_service("svc1", "web")
    monkeypatch.setenv("SWARMCTL_TLS_DIR", str(tls_dir))

    result = swarmctl_bare("-H", fake_addr, "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")


def test_the_flag_wins_over_the_environment(
    swarmctl_bare, fake_addr: str, fake: FakeControl, tls_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    fake.add_service("svc1", "web")
    monkeypatch.setenv("SWARMCTL_TLS_DIR", str(tmp_path / "nothing-here"))

    result = swarmctl_bare("--tls-dir", str(tls_dir), "-H", fake_addr, "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")


def test_the_default_bundle_is_under_the_config_home(
    swarmctl_bare, fake_addr: str, fake: FakeControl, cluster: Cluster, tmp_path: Path
) -> None:
    fake.add_service("svc1", "web")
    cluster.admin().save(tmp_path / "config" / "shoal" / "tls")

    result = swarmctl_bare("-H", fake_addr, "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")


def test_a_controller_of_another_cluster_fails_the_handshake(
    swarmctl_bare, fake_addr: str, fake: FakeControl, tmp_path: Path
) -> None:
    other = tmp_path / "other-admin-tls"
    Cluster.new("cluster0000000000000000002").admin().save(other)

    result = swarmctl_bare("--tls-dir", str(other), "-H", fake_addr, "service", "ls")

    assert _one_line_error(result) == f"swarmctl: cannot reach a controller at {fake_addr} ({HANDSHAKE})"
    assert fake.requests == []


def test_the_next_controller_is_tried_after_a_failed_handshake(
    swarmctl, serve, fake_addr: str, fake: FakeControl
) -> None:
    stranger = FakeControl()
    stranger_addr = serve(stranger, Cluster.new("cluster0000000000000000002").controller()).addr
    fake.add_service("svc1", "web")

    result = swarmctl("-H", f"{stranger_addr},{fake_addr}", "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")
    assert stranger.requests == []


def test_a_server_without_the_controller_name_is_not_trusted(swarmctl, serve, cluster: Cluster) -> None:
    # Same CA, but a node's certificate: swarmctl checks servers against pki.CONTROLLER_NAME.
    impostor = FakeControl()
    addr = serve(impostor, cluster.bundle("node1", "worker", dns_names=(pki.NODE_NAME,))).addr

    result = swarmctl("-H", addr, "service", "ls")

    assert _one_line_error(result).startswith(f"swarmctl: cannot reach a controller at {addr} (")
    assert impostor.requests == []


def test_a_certificate_that_is_not_an_admin_one_is_refused(
    swarmctl_bare, fake_addr: str, fake: FakeControl, cluster: Cluster, tmp_path: Path
) -> None:
    worker = tmp_path / "worker-tls"
    cluster.bundle("node1", "worker", dns_names=(pki.NODE_NAME,)).save(worker)

    result = swarmctl_bare("--tls-dir", str(worker), "-H", fake_addr, "service", "ls")

    assert _one_line_error(result) == "swarmctl: a worker certificate may not call /shoal.v1.Control/ListServices"
    assert fake.requests == []
