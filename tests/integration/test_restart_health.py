"""Restart policy, task history and health checks on real components.

Every --restart-* and --health-* flag, `cluster update --task-history`, an
image's own HEALTHCHECK and --no-healthcheck. Negative outcomes ("this task
is not restarted") are asserted only once a control service under the same
timing has restarted several times, so the test never waits and hopes.
"""

from __future__ import annotations

import collections
import datetime
import json
import pathlib
import threading
from collections.abc import Iterator

import pytest

from shoal import units
from shoal.v1 import control_pb2, objects_pb2, types_pb2
from tests.integration import harness
from tests.integration.harness import Cluster, docker, wait_until
from tests.integration.sampling import QUICK_STOP, by_slot, ended_at, ran_at, stays, wait_state
from tests.integration.test_lifecycle import converged, create

Health = types_pb2.TaskStatus.Health
Status = types_pb2.UpdateStatus
LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"


def tasks_of(cluster: Cluster, service_id: str, state: int | None = None) -> list[objects_pb2.Task]:
    return [t for t in cluster.control.tasks(service_id) if state is None or t.status.state == state]


def test_restart_conditions(cluster: Cluster, image: str) -> None:
    def service(name: str, condition: str, code: int) -> str:
        return create(
            cluster, name, image, "--restart-condition", condition, "--restart-delay", "1s",
            "--", "sh", "-c", f"sleep 1; exit {code}",
        )  # fmt: skip

    any_ok = service("any-ok", "any", 0)
    fail_restarts = service("onfail-bad", "on-failure", 1)
    ok_stays = service("onfail-ok", "on-failure", 0)
    none_stays = service("none-bad", "none", 1)
    wait_until(lambda: len(tasks_of(cluster, any_ok, types_pb2.COMPLETE)) >= 3, 90, "any: 3 completions")
    wait_until(lambda: len(tasks_of(cluster, fail_restarts, types_pb2.FAILED)) >= 3, 90, "on-failure: 3 failures")
    assert [t.status.state for t in tasks_of(cluster, ok_stays)] == [types_pb2.COMPLETE]
    assert [t.status.state for t in tasks_of(cluster, none_stays)] == [types_pb2.FAILED]


def test_restart_delay_holds_the_prepared_replacement(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "later", image, "--restart-delay", "1h", "--", "sh", "-c", "exit 1")

    def staged() -> objects_pb2.Task | None:
        return next((t for t in tasks_of(cluster, service_id) if t.desired_state == types_pb2.READY), None)

    replacement = wait_until(lambda: (t := staged()) is not None and t.status.state == types_pb2.READY and t, 60,
                             "a prepared replacement")  # fmt: skip
    created = units.from_timestamp(replacement.meta.created_at)
    assert units.from_timestamp(replacement.start_after) - created >= 3500
    stays(lambda: staged() is not None and not cluster.running_containers("later"), 2, "the replacement waits")


def test_max_attempts_survive_a_controller_restart_and_reset_with_the_spec(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "capped", image, "--restart-max-attempts", "2", "--restart-delay", "500ms",
        "--", "sh", "-c", "sleep 1; exit 1",
    )  # fmt: skip
    wait_until(lambda: tasks_of(cluster, service_id, types_pb2.FAILED), 60, "a first failure")
    assert cluster.controller is not None
    cluster.controller.restart()
    wait_until(lambda: cluster.control.stub.GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=2), 30,
               "the controller to lead again")  # fmt: skip
    wait_until(lambda: len(tasks_of(cluster, service_id, types_pb2.FAILED)) == 3, 60, "three attempts")
    # A fourth would have started within 2 s (0.5 s delay, 1 s run): it never does.
    stays(lambda: len(tasks_of(cluster, service_id)) == 3, 4, "no attempt beyond --restart-max-attempts")
    cluster.ctl("service", "update", "capped", "--env", "SPEC=2", "--detach", check=True)
    version = cluster.control.service(service_id).spec_version

    def new_failures() -> int:
        return len([t for t in tasks_of(cluster, service_id, types_pb2.FAILED) if t.spec_version == version])

    wait_until(lambda: new_failures() == 3, 60, "three attempts of the new spec")
    stays(lambda: new_failures() == 3, 4, "the count starts over with the new spec, and stops again")


def test_restart_window_counts_only_recent_attempts(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "windowed", image, "--restart-max-attempts", "1", "--restart-window", "2s",
        "--restart-delay", "1s", "--", "sh", "-c", "sleep 2; exit 1",
    )  # fmt: skip
    # Without the window, one restart: two tasks ever.
    wait_until(lambda: len(tasks_of(cluster, service_id, types_pb2.FAILED)) >= 4, 90, "attempts beyond the cap")


def test_task_history_setting_bounds_finished_tasks_per_slot(cluster: Cluster, image: str) -> None:
    assert cluster.ctl("cluster", "update", "--task-history", "1", check=True).stdout.startswith("task history 1")
    info = cluster.ctl("cluster", "info", check=True).stdout.splitlines()
    assert ["Task", "history:", "1"] in [line.split() for line in info]
    service_id = create(cluster, "churn", image, "--restart-delay", "200ms", "--", "sh", "-c", "exit 1")
    seen: set[str] = set()
    most = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal most
        while not stop.is_set():
            tasks = tasks_of(cluster, service_id)
            seen.update(t.id for t in tasks)
            finished = collections.Counter(t.slot for t in tasks if t.status.state >= types_pb2.COMPLETE)
            most = max(most, *finished.values(), 0)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_until(lambda: len(seen) >= 8, 90, "eight tasks in the slot over time")
    finally:
        stop.set()
        sampler.join()
    # One kept, plus at most the one that just ended before the reaper's next pass.
    assert most <= 2, most


# ---- health checks ------------------------------------------------------------------------------


def test_a_health_check_gates_running_and_the_update(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "hc", image, "--stop-grace-period", "1s", *QUICK_STOP)
    wait_until(lambda: converged(cluster, service_id, 1, "hc"), 60, "1 replica")
    cluster.ctl(
        "service", "update", "hc", "--detach", "--update-order", "start-first",
        "--health-cmd", "test -e /ready", "--health-interval", "200ms", "--health-retries", "2",
        "--health-timeout", "3s", "--health-start-period", "20s",
        "--", "sh", "-c", f"sleep 2; touch /ready; {LOOP}",
    check=True)  # fmt: skip
    version = cluster.control.service(service_id).spec_version

    def new() -> objects_pb2.Task | None:
        return next((t for t in tasks_of(cluster, service_id) if t.spec_version == version), None)

    wait_until(
        lambda: (t := new()) is not None and t.status.health == Health.HEALTH_STARTING, 60, "a new task awaiting health"
    )
    starting = new()
    assert starting is not None and starting.status.state == types_pb2.STARTING
    wait_state(cluster, service_id, Status.COMPLETED, 90)
    task = new()
    assert task is not None and (task.status.state, task.status.health) == (types_pb2.RUNNING, Health.HEALTHY)
    container = json.loads(docker("inspect", task.status.container.container_id).stdout)[0]
    assert container["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -e /ready"],
        "Interval": 200_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 20_000_000_000,
        "Retries": 2,
    }
    started = datetime.datetime.fromisoformat(container["State"]["StartedAt"][:26]).replace(tzinfo=datetime.UTC)
    assert ran_at(task) >= started.timestamp() + 2  # RUNNING only once healthy
    old = by_slot(cluster.control.tasks(service_id))[1][0]
    assert ran_at(task) < ended_at(old)  # start-first: the old task stopped once the new one was healthy
    assert "Health:" in (inspect := cluster.ctl("task", "inspect", task.id, check=True).stdout)
    assert "healthy" in inspect
    assert "(healthy)" in cluster.ctl("service", "ps", "hc", check=True).stdout


def test_an_unhealthy_task_is_stopped_and_replaced(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "sick", image, "--restart-delay", "1s", "--stop-grace-period", "1s",
        "--health-cmd", "test ! -e /sick", "--health-interval", "200ms", "--health-retries", "1",
        "--", "sh", "-c", f"sleep 2; touch /sick; {LOOP}",
    )  # fmt: skip

    def unhealthy() -> list[objects_pb2.Task]:
        return [t for t in tasks_of(cluster, service_id, types_pb2.FAILED) if t.status.health == Health.UNHEALTHY]

    (first, *_) = wait_until(unhealthy, 60, "a task failed as unhealthy")
    assert first.status.err.startswith("task: container unhealthy")
    assert first.status.HasField("started_at")  # it was healthy (RUNNING) before
    running_ids = {c["id"] for c in cluster.running_containers("sick")}
    assert first.status.container.container_id not in running_ids
    wait_until(lambda: len(tasks_of(cluster, service_id)) >= 2, 60, "a replacement")


@pytest.fixture(scope="module")
def unhealthy_image(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test image with a HEALTHCHECK that always fails, pushed next to it."""
    ref = image.rsplit(":", 1)[0] + "-unhealthy:1"
    ctx = pathlib.Path(tmp_path_factory.mktemp("unhealthy-image"))
    (ctx / "Dockerfile").write_text(f'FROM {image}\nHEALTHCHECK --interval=200ms --retries=1 CMD ["false"]\n')
    docker("build", "-q", "-t", ref, str(ctx))
    docker("push", ref)
    docker("rmi", ref)
    yield ref
    harness.docker("rmi", ref, check=False)


def test_the_image_s_healthcheck_applies_unless_disabled(cluster: Cluster, unhealthy_image: str) -> None:
    sick = create(cluster, "img-hc", unhealthy_image, "--restart-delay", "1h", "--", "sh", "-c", LOOP)
    fine = create(cluster, "img-nohc", unhealthy_image, "--no-healthcheck", "--", "sh", "-c", LOOP)
    failed = wait_until(lambda: tasks_of(cluster, sick, types_pb2.FAILED), 60, "the image's check to fail the task")
    assert failed[0].status.health == Health.UNHEALTHY
    assert not failed[0].status.HasField("started_at")  # never RUNNING: it was never healthy
    wait_until(lambda: converged(cluster, fine, 1, "img-nohc"), 60, "the unchecked task to run")
    (task,) = cluster.control.running(fine)
    assert task.status.health == Health.HEALTH_NONE
