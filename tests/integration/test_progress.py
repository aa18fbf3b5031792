"""`service create` and `service update` follow the service until it converges, unless --detach."""

from __future__ import annotations

from shoal.v1 import types_pb2
from tests.integration.harness import Cluster
from tests.integration.sampling import QUICK_STOP


def test_create_waits_until_every_slot_runs_and_shows_each_slot(cluster: Cluster, image: str) -> None:
    result = cluster.ctl(
        "service", "create", "--name", "shown", "--image", image, "--replicas", "3", "--update-monitor", "1s",
        *QUICK_STOP,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    service_id = result.stdout.strip()  # stdout is only the ID: progress goes to stderr
    assert len(service_id) == 25
    # Converged when the command returned, without waiting here.
    assert len(cluster.control.running(service_id)) == 3
    lines = result.stderr.splitlines()
    for slot in (1, 2, 3):
        assert any(line.strip().startswith(f"{slot}/3: running") for line in lines), lines
    assert lines[-1] == "shown: converged"


def test_update_waits_for_the_update_and_quiet_prints_nothing(cluster: Cluster, image: str) -> None:
    cluster.ctl("service", "create", "--name", "upd", "--image", image, "--quiet", *QUICK_STOP, check=True)
    result = cluster.ctl("service", "update", "upd", "--env", "V=2", "--update-monitor", "1s", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    service = cluster.control.service("upd")
    assert service.update_status.state == types_pb2.UpdateStatus.COMPLETED
    (task,) = cluster.control.running(service.id)
    assert task.spec_version == service.spec_version


def test_detach_returns_before_the_service_converges(cluster: Cluster, image: str) -> None:
    # Nothing can place it: following it would never end.
    result = cluster.ctl(
        "service", "create", "--name", "nowhere", "--image", image, "--constraint", "node.labels.zone==none",
        "--detach", *QUICK_STOP,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert cluster.control.running(result.stdout.strip()) == []
    update = cluster.ctl("service", "update", "nowhere", "--env", "V=2", "-d")
    assert update.returncode == 0 and update.stdout.strip() == result.stdout.strip()
