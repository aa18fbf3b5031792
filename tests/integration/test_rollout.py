"""Rolling updates and rollbacks on real components: every --update-* and --rollback-* flag, and `service rollback`.

Invariants are asserted over every `docker ps` reading taken while the
update runs (running containers <= replicas stop-first, <= replicas +
parallelism start-first), and orders of events over the times the nodes
recorded in the tasks (a new task's RUNNING before or after its old task's
SHUTDOWN), not over how long anything took.
"""

from __future__ import annotations

import collections

from shoal.v1 import objects_pb2, types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.sampling import (
    QUICK_STOP,
    SLOW_STOP,
    Sampler,
    by_slot,
    created_at,
    ended_at,
    ran_at,
    wait_state,
)
from tests.integration.test_lifecycle import converged, create

Status = types_pb2.UpdateStatus
UPDATE = objects_pb2.Task.UPDATE
FAIL_NOW = ["--", "sh", "-c", "exit 1"]


def start(cluster: Cluster, name: str, image: str, replicas: int, *args: str) -> str:
    """A converged service of `replicas` QUICK_STOP tasks, stopped within 1 s."""
    service_id = create(
        cluster, name, image, "--replicas", str(replicas), "--stop-grace-period", "1s", *args, *QUICK_STOP
    )
    wait_until(lambda: converged(cluster, service_id, replicas, name), 90, f"{replicas} replicas of {name}")
    return service_id


def update_tasks(cluster: Cluster, service_id: str) -> list[objects_pb2.Task]:
    """The replacements the updater made for the service's current spec version."""
    version = cluster.control.service(service_id).spec_version
    return [t for t in cluster.control.tasks(service_id) if t.origin == UPDATE and t.spec_version == version]


def batches(tasks: list[objects_pb2.Task]) -> list[int]:
    """Sizes of the groups of tasks created in one write, in order."""
    return list(collections.Counter(created_at(t) for t in sorted(tasks, key=created_at)).values())


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most (start, end) spans open at the same instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_stop_first_parallelism_two(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "par", image, 4, "--update-parallelism", "2")
    with Sampler(cluster, "par") as sampler:
        cluster.ctl("service", "update", "par", "--env", "V=2", "--quiet", check=True)
    service = cluster.control.service(service_id)
    assert service.update_status.state == Status.COMPLETED
    assert max(sampler.counts) <= 4, sampler.counts
    assert sampler.slot_overlaps() == 1
    new_tasks = update_tasks(cluster, service_id)
    assert batches(new_tasks)[0] == 2  # the first two slots at once
    assert most_at_once([(created_at(t), ran_at(t)) for t in new_tasks]) == 2  # and never more in flight
    for slot_tasks in by_slot(cluster.control.tasks(service_id)).values():
        old, new = slot_tasks[0], slot_tasks[-1]
        assert ended_at(old) <= ran_at(new)  # stop-first: the old one had stopped


def test_update_delay_spaces_the_batches(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "slow", image, 2, "--update-delay", "3s")
    cluster.ctl("service", "update", "slow", "--env", "V=2", "--detach", check=True)
    wait_state(cluster, service_id, Status.COMPLETED)
    first, second = sorted(update_tasks(cluster, service_id), key=created_at)
    assert created_at(second) - ran_at(first) >= 3


def test_start_first_runs_the_new_task_before_stopping_the_old(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "sf", image, "--replicas", "3", "--stop-grace-period", "2s", "--update-order", "start-first",
        *SLOW_STOP,
    )  # fmt: skip
    wait_until(lambda: converged(cluster, service_id, 3, "sf"), 90, "3 replicas")
    with Sampler(cluster, "sf") as sampler:
        cluster.ctl("service", "update", "sf", "--env", "V=2", "--quiet", check=True)
    assert max(sampler.counts) <= 4, sampler.counts  # replicas + parallelism
    assert max(sampler.counts) == 4  # the old task lingers 2 s beside its replacement
    for slot_tasks in by_slot(cluster.control.tasks(service_id)).values():
        old, new = slot_tasks[0], slot_tasks[-1]
        assert ran_at(new) < ended_at(old)


def test_a_failing_update_pauses_with_the_reason_and_the_cli_exits_non_zero(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "bad", image, 3)
    result = cluster.ctl("service", "update", "bad", *FAIL_NOW)
    assert result.returncode == 1
    service = cluster.control.service(service_id)
    status = service.update_status
    assert status.state == Status.PAUSED
    # The slot (or two, if the first one ran before it failed) the update reached: it went no further.
    failed_ids = {t.id[:12] for t in update_tasks(cluster, service_id)}
    assert status.message in {f"update paused: task {i} failed: non-zero exit (1)" for i in failed_ids}
    assert result.stderr.strip().splitlines()[-1] == f"swarmctl: service bad: {status.message}"
    old = [t for t in cluster.control.running(service_id) if t.spec_version == service.previous_spec_version]
    assert len(old) == 3 - len(failed_ids) >= 1
    assert "PAUSED (update paused: task" in cluster.ctl("service", "ls", check=True).stdout
    inspect = cluster.ctl("service", "inspect", "bad", check=True).stdout
    assert status.message in inspect


def test_continue_goes_on_past_failures(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "cont", image, 3, "--update-failure-action", "continue", "--restart-condition", "none")
    result = cluster.ctl("service", "update", "cont", "--update-monitor", "1s", *FAIL_NOW)
    assert result.returncode == 0, result.stderr
    service = cluster.control.service(service_id)
    assert service.update_status.state == Status.COMPLETED
    assert service.update_status.message == "update completed (3 tasks failed)"
    assert sorted(t.slot for t in update_tasks(cluster, service_id)) == [1, 2, 3]


def test_rollback_on_failure(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "rb", image, 3, "--update-failure-action", "rollback")
    before = cluster.control.service(service_id)
    result = cluster.ctl("service", "update", "rb", *FAIL_NOW)
    assert result.returncode == 1
    assert "update rolled back: task " in result.stderr and "failed: non-zero exit (1)" in result.stderr
    service = wait_state(cluster, service_id, Status.ROLLBACK_COMPLETED)
    assert service.spec.task == before.spec.task
    assert service.spec_version == before.spec_version
    wait_until(lambda: converged(cluster, service_id, 3, "rb"), 60, "3 replicas of the old spec")
    assert {t.spec_version for t in cluster.control.running(service_id)} == {before.spec_version}
    assert "ROLLBACK_COMPLETED (rollback completed: task" in cluster.ctl("service", "ls", check=True).stdout


def test_max_failure_ratio_tolerates_failures(cluster: Cluster, image: str) -> None:
    service_id = start(
        cluster, "ratio", image, 4, "--update-max-failure-ratio", "0.5", "--update-delay", "1s",
        "--restart-condition", "none",
    )  # fmt: skip
    assert cluster.ctl("service", "update", "ratio", *FAIL_NOW).returncode == 1
    status = cluster.control.service(service_id).update_status
    assert status.state == Status.PAUSED
    # Two failures of four are allowed; the third pauses the update.
    assert len(status.failed_tasks) == 3
    assert len({t.slot for t in update_tasks(cluster, service_id)}) == 3


def test_update_monitor_sets_the_window_for_failures(cluster: Cluster, image: str) -> None:
    late_failure = ["--", "sh", "-c", "sleep 3; exit 1"]
    short = start(cluster, "short", image, 1, "--update-monitor", "1s")
    long_ = start(cluster, "long", image, 1, "--update-monitor", "20s")
    assert cluster.ctl("service", "update", "short", *late_failure).returncode == 0
    assert cluster.control.service(short).update_status.state == Status.COMPLETED
    assert cluster.ctl("service", "update", "long", *late_failure).returncode == 1
    assert cluster.control.service(long_).update_status.state == Status.PAUSED


def test_an_update_whose_task_cannot_start_is_not_stuck(cluster: Cluster, image: str) -> None:
    service_id = start(cluster, "stuck", image, 2, "--update-monitor", "2s")
    result = cluster.ctl("service", "update", "stuck", "--constraint", "node.labels.zone==nowhere")
    assert result.returncode == 1
    status = cluster.control.service(service_id).update_status
    assert status.state == Status.PAUSED
    assert "did not reach RUNNING within the 2s monitor window (no suitable node" in status.message


def test_service_rollback_uses_the_rollback_settings(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "back", image, "--replicas", "4", "--stop-grace-period", "2s",
        "--rollback-parallelism", "2", "--rollback-order", "start-first", "--rollback-delay", "2s", *SLOW_STOP,
    )  # fmt: skip
    wait_until(lambda: converged(cluster, service_id, 4, "back"), 90, "4 replicas")
    first = cluster.control.service(service_id)
    cluster.ctl("service", "update", "back", "--env", "V=2", "--update-parallelism", "0", "--quiet", check=True)
    with Sampler(cluster, "back") as sampler:
        result = cluster.ctl("service", "rollback", "back")
    assert result.returncode == 0, result.stderr
    service = cluster.control.service(service_id)
    assert service.update_status.state == Status.ROLLBACK_COMPLETED
    assert (service.spec.task, service.spec_version) == (first.spec.task, first.spec_version)
    assert "V=2" in service.previous_spec.task.container.env
    assert max(sampler.counts) <= 6, sampler.counts  # replicas + rollback parallelism
    rolled = sorted(update_tasks(cluster, service_id), key=created_at)
    assert batches(rolled)[0] == 2
    # Start-first: each new task ran before the task it replaced stopped; a slot is in flight until then.
    spans = []
    for slot_tasks in by_slot(cluster.control.tasks(service_id)).values():
        assert ran_at(slot_tasks[-1]) < ended_at(slot_tasks[-2])
        spans.append((created_at(slot_tasks[-1]), ended_at(slot_tasks[-2])))
    assert most_at_once(spans) == 2
    first_done = min(ran_at(t) for t in rolled[:2])
    assert min(created_at(t) for t in rolled[2:]) - first_done >= 2  # the rollback delay after a slot is done


def test_a_failing_rollback_pauses_and_is_not_rolled_back(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "nogood", image, "--replicas", "2", "--restart-delay", "30s", *FAIL_NOW)
    cluster.ctl("service", "update", "nogood", "--stop-grace-period", "1s", "--quiet", *QUICK_STOP, check=True)
    good = cluster.control.service(service_id)
    result = cluster.ctl("service", "rollback", "nogood")
    assert result.returncode == 1
    service = cluster.control.service(service_id)
    assert service.update_status.state == Status.ROLLBACK_PAUSED
    assert service.update_status.message.startswith("rollback paused: task ")
    assert service.spec.task == good.previous_spec.task  # still the rolled-back spec: no rollback of the rollback


def test_rollback_failure_action_continue_and_monitor(cluster: Cluster, image: str) -> None:
    late_failure = ["--", "sh", "-c", "sleep 3; exit 1"]
    service_id = create(cluster, "cont-rb", image, "--replicas", "2", "--restart-delay", "30s", *late_failure)
    cluster.ctl("service", "update", "cont-rb", "--quiet", "--stop-grace-period", "1s", *QUICK_STOP, check=True)
    # A rollback monitor of 1 s: the old spec's tasks fail after 3 s, outside it.
    result = cluster.ctl("service", "rollback", "cont-rb", "--quiet")
    assert cluster.control.service(service_id).update_status.state == Status.ROLLBACK_PAUSED  # default 5 s window
    assert result.returncode == 1
    cluster.ctl("service", "update", "cont-rb", "--rollback-monitor", "1s", "--quiet", *QUICK_STOP, check=True)
    assert cluster.ctl("service", "rollback", "cont-rb", "--quiet").returncode == 0
    cluster.ctl(
        "service", "update", "cont-rb", "--rollback-failure-action", "continue", "--rollback-monitor", "5s",
        "--quiet", *QUICK_STOP, check=True,
    )  # fmt: skip
    result = cluster.ctl("service", "rollback", "cont-rb")
    assert result.returncode == 0, result.stderr
    service = cluster.control.service(service_id)
    assert service.update_status.state == Status.ROLLBACK_COMPLETED
    assert len(service.update_status.failed_tasks) == 2
