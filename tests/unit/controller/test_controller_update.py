"""Rolling updates through the replicated plan: parallelism, order, delay, monitor, failure actions, rollback."""

from __future__ import annotations

import pytest
from controller_fakes import (
    COMPLETED,
    NOW,
    UPDATING,
    created_tasks,
    desired_changes,
    make_node,
    make_service,
    make_task,
    nodes_by_id,
    service_puts,
)

from shoal import states, units
from shoal.controller import rollout
from shoal.controller.api.services import updated
from shoal.controller.orchestrator import replicas, update
from shoal.v1 import objects_pb2, types_pb2

NODES = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))
UPDATE = objects_pb2.Task.UPDATE
RESTART = objects_pb2.Task.RESTART
Status = types_pb2.UpdateStatus
Config = types_pb2.UpdateConfig
STARTED = NOW - 100  # when the update under test started


def updating(**kw: object) -> objects_pb2.Service:
    """A service at spec version 2 whose update started at STARTED, with the update settings given."""
    state = kw.pop("state", UPDATING)
    svc = make_service(version=2, previous=True, update_state=state, **kw)  # type: ignore[arg-type]
    svc.previous_spec_version = 1
    svc.update_status.started_at.CopyFrom(units.to_timestamp(STARTED))
    svc.spec.update.monitor.CopyFrom(units.to_duration(5))
    svc.spec.rollback.CopyFrom(svc.spec.update)
    return svc


def old_tasks(svc: objects_pb2.Service, slots: range = range(1, 4)) -> list[objects_pb2.Task]:
    """Running tasks of the version before the service's, made long before the update."""
    return [make_task(svc, s, node=f"n{s}", version=svc.spec_version - 1, created=NOW - 1000) for s in slots]


def new_task(
    svc: objects_pb2.Service,
    slot: int,
    *,
    state: int,
    desired: int = states.RUNNING,
    created: float = NOW - 60,
    ran: float | None = None,
    status_at: float | None = None,
    origin: int = UPDATE,
    err: str = "",
) -> objects_pb2.Task:
    """A replacement the updater made; `ran` is when it reached RUNNING."""
    t = make_task(svc, slot, node=f"n{slot}", state=state, desired=desired, created=created, status_at=status_at)
    t.origin = origin  # type: ignore[assignment]
    t.status.err = err
    if ran is not None:
        t.status.started_at.CopyFrom(units.to_timestamp(ran))
    return t


def replaced(svc: objects_pb2.Service, slot: int, *, state: int, ran: float | None = None, **kw: object) -> list:
    """A slot mid-update or done: the old task stopped, and its up-to-date replacement."""
    old = make_task(
        svc, slot, node=f"n{slot}", version=1, state=states.SHUTDOWN, desired=states.SHUTDOWN, created=NOW - 1000
    )
    desired = states.RUNNING if state >= states.RUNNING else states.READY
    if state >= states.RUNNING and ran is None:
        ran = NOW - 30
    return [old, new_task(svc, slot, state=state, desired=desired, ran=ran, **kw)]  # type: ignore[arg-type]


def replaced_slots(p: replicas.Plan) -> list[int]:
    return sorted(t.slot for t in created_tasks(p.groups))


def status_of(p: replicas.Plan) -> types_pb2.UpdateStatus | None:
    puts = service_puts(p.groups)
    assert len(puts) <= 1
    return puts[0].update_status if puts else None


# ---- the API side: an update is recorded with the spec ------------------------------------------


def test_a_task_spec_change_takes_a_new_version_and_starts_an_update() -> None:
    svc = make_service(version=3)
    svc.previous_spec_version = 2
    spec = types_pb2.ServiceSpec()
    spec.CopyFrom(svc.spec)
    spec.task.container.image = "busybox:new"
    task_of_later_version = make_task(svc, 1, version=7)
    new = updated(svc, spec, lambda: [task_of_later_version], NOW)
    assert (new.spec_version, new.previous_spec_version) == (8, 3)
    assert new.update_status.state == UPDATING
    assert units.from_timestamp(new.update_status.started_at) == pytest.approx(NOW)
    assert new.previous_spec == svc.spec


def test_a_scale_keeps_the_version_and_the_update_state() -> None:
    svc = make_service(version=3, update_state=COMPLETED)
    spec = types_pb2.ServiceSpec()
    spec.CopyFrom(svc.spec)
    spec.replicated.replicas = 9
    new = updated(svc, spec, list, NOW)
    assert (new.spec_version, new.update_status.state) == (3, COMPLETED)


def test_any_update_resumes_a_paused_one() -> None:
    svc = make_service(version=3, update_state=Status.PAUSED)
    svc.update_status.failed_tasks.append("t-old")
    new = updated(svc, svc.spec, list, NOW)
    assert new.update_status.state == UPDATING
    assert list(new.update_status.failed_tasks) == []


# ---- replacing slots ----------------------------------------------------------------------------


def test_parallelism_one_replaces_one_slot_stop_first() -> None:
    svc = updating(parallelism=1)
    tasks = old_tasks(svc)
    p = replicas.plan(svc, tasks, NODES, NOW)
    (group,) = [g for g in p.groups if created_tasks([g])]
    assert desired_changes([group]) == {tasks[0].id: states.SHUTDOWN}
    (new,) = created_tasks([group])
    assert (new.slot, new.spec_version, new.desired_state, new.origin) == (1, 2, states.READY, UPDATE)
    assert new.spec == svc.spec.task
    assert units.from_timestamp(new.start_after) == pytest.approx(NOW)


def test_start_first_leaves_the_old_task_running() -> None:
    svc = updating(parallelism=2)
    svc.spec.update.order = Config.START_FIRST
    tasks = old_tasks(svc)
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert desired_changes(p.groups) == {}
    news = created_tasks(p.groups)
    assert sorted(t.slot for t in news) == [1, 2]
    assert {t.desired_state for t in news} == {states.RUNNING}


def test_start_first_keeps_the_old_task_until_the_new_one_runs_then_stops_it() -> None:
    svc = updating()
    svc.spec.update.order = Config.START_FIRST
    old = old_tasks(svc, range(1, 2))[0]
    starting = new_task(svc, 1, state=states.STARTING, created=NOW - 1)
    p = replicas.plan(svc, [old, starting], nodes_by_id(make_node("n1")), NOW)
    assert desired_changes(p.groups) == {}
    running = new_task(svc, 1, state=states.RUNNING, created=NOW - 1, ran=NOW)
    running.id = starting.id
    p = replicas.plan(svc, [old, running], nodes_by_id(make_node("n1")), NOW)
    assert desired_changes(p.groups) == {old.id: states.SHUTDOWN}


def test_start_first_holds_the_next_slot_until_the_old_task_has_stopped() -> None:
    """Running containers never exceed replicas + parallelism, even while old ones take their grace period."""
    svc = updating()
    svc.spec.update.order = Config.START_FIRST
    old1, old2, old3 = old_tasks(svc)
    old1.desired_state = states.SHUTDOWN  # type: ignore[assignment]
    new1 = new_task(svc, 1, state=states.RUNNING, created=NOW - 5, ran=NOW - 4)
    p = replicas.plan(svc, [old1, new1, old2, old3], NODES, NOW)
    assert created_tasks(p.groups) == []
    old1.status.state = states.SHUTDOWN  # type: ignore[assignment]
    p = replicas.plan(svc, [old1, new1, old2, old3], NODES, NOW)
    assert replaced_slots(p) == [2]


def test_a_slot_whose_task_does_not_run_is_replaced_stop_first_even_in_start_first_order() -> None:
    svc = updating(replicas=1)
    svc.spec.update.order = Config.START_FIRST
    pending = make_task(svc, 1, node="", version=1, state=states.PENDING, created=NOW - 1000)
    p = replicas.plan(svc, [pending], NODES, NOW)
    assert desired_changes(p.groups) == {pending.id: states.SHUTDOWN}
    (new,) = created_tasks(p.groups)
    assert new.desired_state == states.READY


def test_no_new_slot_while_a_replacement_is_in_flight() -> None:
    svc = updating(parallelism=1)
    tasks = [*replaced(svc, 1, state=states.PENDING), *old_tasks(svc, range(2, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert created_tasks(p.groups) == []
    assert service_puts(p.groups) == []


def test_next_slot_once_the_replacement_runs() -> None:
    svc = updating(parallelism=1)
    tasks = [*replaced(svc, 1, state=states.RUNNING), *old_tasks(svc, range(2, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert replaced_slots(p) == [2]


def test_parallelism_two_keeps_two_in_flight() -> None:
    svc = updating(replicas=4, parallelism=2)
    tasks = [*replaced(svc, 1, state=states.PREPARING), *old_tasks(svc, range(2, 5))]
    p = replicas.plan(svc, tasks, nodes_by_id(*NODES.values(), make_node("n4")), NOW)
    assert replaced_slots(p) == [2]


def test_parallelism_zero_replaces_every_dirty_slot_at_once() -> None:
    svc = updating(parallelism=0)
    p = replicas.plan(svc, old_tasks(svc), NODES, NOW)
    assert replaced_slots(p) == [1, 2, 3]
    assert all(t.desired_state == states.READY for t in created_tasks(p.groups))


def test_the_update_delay_holds_the_next_slot_and_sets_a_timer() -> None:
    svc = updating(update_delay=10.0)
    tasks = [*replaced(svc, 1, state=states.RUNNING, ran=NOW - 2), *old_tasks(svc, range(2, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert created_tasks(p.groups) == []
    assert p.wake_at == pytest.approx(NOW + 8)
    later = replicas.plan(svc, tasks, NODES, NOW + 8)
    assert replaced_slots(later) == [2]


def test_the_update_completes_once_the_last_task_ran_for_the_monitor_window() -> None:
    svc = updating()
    tasks = [t for s in (1, 2, 3) for t in replaced(svc, s, state=states.RUNNING, ran=NOW - 2)]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert status_of(p) is None
    assert p.wake_at == pytest.approx(NOW + 3)
    p = replicas.plan(svc, tasks, NODES, NOW + 3)
    status = status_of(p)
    assert status is not None and status.state == COMPLETED
    assert units.from_timestamp(status.completed_at) == pytest.approx(NOW + 3)
    assert created_tasks(p.groups) == []


def test_out_of_date_slots_without_an_update_recorded_start_one() -> None:
    svc = make_service(version=2, previous=True)
    p = replicas.plan(svc, old_tasks(svc), NODES, NOW)
    status = status_of(p)
    assert status is not None and status.state == UPDATING
    assert created_tasks(p.groups) == []


def test_a_new_service_scaling_up_is_not_an_update() -> None:
    svc = make_service(version=1, previous=False)
    p = replicas.plan(svc, [], NODES, NOW)
    assert service_puts(p.groups) == []


def test_a_slot_being_restarted_is_not_also_replaced_by_the_update() -> None:
    svc = updating(replicas=1, parallelism=0)
    failed = make_task(svc, 1, version=1, state=states.FAILED)
    p = replicas.plan(svc, [failed], NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.spec_version, new.origin) == (2, RESTART)  # the restart already takes the new spec


def test_a_restart_after_a_completed_update_does_not_reopen_it() -> None:
    svc = updating(replicas=2, state=COMPLETED)
    old1, _ = replaced(svc, 1, state=states.RUNNING)
    crashed = new_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 30, ran=NOW - 29)
    restarting = new_task(svc, 1, state=states.PENDING, desired=states.READY, created=NOW - 5, origin=RESTART)
    restarting.start_after.CopyFrom(units.to_timestamp(NOW + 3))
    tasks = [old1, crashed, restarting, *replaced(svc, 2, state=states.RUNNING)]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert service_puts(p.groups) == []


# ---- watching new tasks: the monitor window and the failure action ----------------------------


def test_failure_of_a_task_that_never_ran_or_ended_within_the_window() -> None:
    svc = updating()
    never = new_task(svc, 1, state=states.FAILED, err="task: non-zero exit (1)")
    assert update.failure(never, 5, NOW) == f"task {never.id} failed: non-zero exit (1)"
    quick = new_task(svc, 1, state=states.FAILED, status_at=NOW - 10, ran=NOW - 12, err="task: non-zero exit (2)")
    assert update.failure(quick, 5, NOW) is not None
    late = new_task(svc, 1, state=states.FAILED, status_at=NOW - 10, ran=NOW - 20)
    assert update.failure(late, 5, NOW) is None
    assert update.failure(late, 0, NOW) is None  # no window: only tasks that never ran count


def test_a_task_not_running_within_the_window_fails_unless_its_health_check_decides() -> None:
    svc = updating()
    stuck = new_task(svc, 1, state=states.PENDING, created=NOW - 6)
    stuck.status.err = "no suitable node"
    why = update.failure(stuck, 5, NOW)
    assert why == f"task {stuck.id} did not reach RUNNING within the 5s monitor window (no suitable node)"
    assert update.failure(stuck, 10, NOW) is None
    assert update.failure(stuck, 0, NOW) is None
    checking = new_task(svc, 1, state=states.STARTING, created=NOW - 60)
    checking.status.health = types_pb2.TaskStatus.HEALTH_STARTING  # type: ignore[assignment]
    assert update.failure(checking, 5, NOW) is None
    staged = new_task(svc, 1, state=states.READY, desired=states.READY, created=NOW - 60)
    assert update.failure(staged, 5, NOW) is None  # not told to run yet (its old task is stopping)


def test_a_promoted_task_counts_its_window_from_the_promotion() -> None:
    svc = updating()
    promoted = new_task(svc, 1, state=states.PREPARING, created=NOW - 60)
    promoted.start_after.CopyFrom(units.to_timestamp(NOW - 2))
    assert update.failure(promoted, 5, NOW) is None
    assert update.failure(promoted, 5, NOW + 3) is not None


def test_a_failure_pauses_the_update_with_the_reason() -> None:
    svc = updating()
    failed = new_task(svc, 1, state=states.FAILED, err="task: non-zero exit (1)")
    tasks = [failed, *old_tasks(svc, range(2, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    status = status_of(p)
    assert status is not None and status.state == Status.PAUSED
    assert status.message == f"update paused: task {failed.id} failed: non-zero exit (1)"
    assert list(status.failed_tasks) == [failed.id]
    assert [t.slot for t in created_tasks(p.groups)] == [1]  # only the restart of the failed slot


def test_a_paused_update_replaces_nothing_more() -> None:
    svc = updating(state=Status.PAUSED)
    tasks = [*replaced(svc, 1, state=states.RUNNING), *old_tasks(svc, range(2, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert created_tasks(p.groups) == [] and service_puts(p.groups) == []


def test_continue_records_the_failure_and_goes_on() -> None:
    svc = updating()
    svc.spec.update.failure_action = Config.CONTINUE
    failed = new_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, err="task: non-zero exit (1)")
    restarted = new_task(svc, 1, state=states.PENDING, desired=states.READY, created=NOW - 1, origin=RESTART)
    restarted.start_after.CopyFrom(units.to_timestamp(NOW + 4))
    p = replicas.plan(svc, [failed, restarted, *old_tasks(svc, range(2, 4))], NODES, NOW)
    status = status_of(p)
    assert status is not None and status.state == UPDATING and list(status.failed_tasks) == [failed.id]
    assert replaced_slots(p) == [2]


def test_the_max_failure_ratio_tolerates_failures_up_to_it() -> None:
    svc = updating(replicas=4)
    svc.spec.update.max_failure_ratio = 0.5
    svc.update_status.failed_tasks.append("earlier")
    failed = new_task(svc, 2, state=states.FAILED, err="task: non-zero exit (1)")
    tasks = [*replaced(svc, 1, state=states.RUNNING), failed, *old_tasks(svc, range(3, 5))]
    p = replicas.plan(svc, tasks, nodes_by_id(*NODES.values(), make_node("n4")), NOW)
    status = status_of(p)
    assert status is not None and status.state == UPDATING  # 2 of 4 is not more than half
    svc.update_status.CopyFrom(status)
    third = new_task(svc, 3, state=states.REJECTED, err="exec: pull access denied")
    tasks = [*replaced(svc, 1, state=states.RUNNING), failed, third, *old_tasks(svc, range(4, 5))]
    p = replicas.plan(svc, tasks, nodes_by_id(*NODES.values(), make_node("n4")), NOW)
    status = status_of(p)
    assert status is not None and status.state == Status.PAUSED
    assert status.message == f"update paused: task {third.id} was rejected: exec: pull access denied"


def test_rollback_on_failure_restores_the_previous_spec() -> None:
    svc = updating()
    svc.spec.update.failure_action = Config.ROLLBACK
    failed = new_task(svc, 1, state=states.FAILED, err="task: non-zero exit (1)")
    p = replicas.plan(svc, [failed, *old_tasks(svc, range(2, 4))], NODES, NOW)
    (put,) = service_puts(p.groups)
    assert put.update_status.state == Status.ROLLBACK_STARTED
    assert put.update_status.message == f"rollback started: task {failed.id} failed: non-zero exit (1)"
    assert put.spec.task == svc.previous_spec.task
    assert (put.spec_version, put.previous_spec_version) == (1, 2)
    assert put.spec.update == svc.spec.update  # the rollout settings stay


def test_a_rollback_replaces_only_the_slots_the_update_reached() -> None:
    svc = rollout.rolled_back(updating(), now=NOW - 10, message="rollback requested")
    tasks = [*[t for s in (1, 2) for t in replaced(updating(), s, state=states.RUNNING)], *old_tasks(svc, range(3, 4))]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert replaced_slots(p) == [1]  # parallelism 1; slot 3 never left version 1
    (new,) = created_tasks(p.groups)
    assert new.spec_version == 1 and new.spec == svc.spec.task


def test_a_failing_rollback_pauses_and_is_never_rolled_back() -> None:
    svc = rollout.rolled_back(updating(), now=STARTED, message="rollback started: x")
    svc.spec.rollback.failure_action = Config.ROLLBACK  # refused by validation; still never a rollback
    failed = new_task(svc, 1, state=states.FAILED, err="task: non-zero exit (1)")
    assert failed.spec_version == 1
    p = replicas.plan(svc, [failed, *old_tasks(updating(), range(2, 4))], NODES, NOW)
    (put,) = service_puts(p.groups)
    assert put.update_status.state == Status.ROLLBACK_PAUSED
    assert put.spec == svc.spec


def test_a_completed_rollback_keeps_the_reason() -> None:
    svc = rollout.rolled_back(updating(), now=STARTED, message="rollback started: task t1 failed: x")
    tasks = [make_task(svc, s, node=f"n{s}", version=1, created=NOW - 1000) for s in (1, 2, 3)]
    status = status_of(replicas.plan(svc, tasks, NODES, NOW))
    assert status is not None and status.state == Status.ROLLBACK_COMPLETED
    assert status.message == "rollback completed: task t1 failed: x"


def test_a_start_first_rollback_takes_the_old_task_back() -> None:
    svc = updating(replicas=1)
    svc.spec.update.order = Config.START_FIRST
    old = old_tasks(svc, range(1, 2))[0]
    starting = new_task(svc, 1, state=states.STARTING, created=NOW - 1)
    back = rollout.rolled_back(svc, now=NOW, message="rollback requested")
    p = replicas.plan(back, [old, starting], nodes_by_id(make_node("n1")), NOW)
    assert desired_changes(p.groups) == {starting.id: states.SHUTDOWN}
    assert created_tasks(p.groups) == []


def test_start_first_with_continue_lets_the_old_task_go_once_the_new_one_failed() -> None:
    svc = updating(replicas=1)
    svc.spec.update.order = Config.START_FIRST
    svc.spec.update.failure_action = Config.CONTINUE
    old = old_tasks(svc, range(1, 2))[0]
    stuck = new_task(svc, 1, state=states.PENDING, created=NOW - 10)
    p = replicas.plan(svc, [old, stuck], nodes_by_id(make_node("n1")), NOW)
    assert desired_changes(p.groups) == {old.id: states.SHUTDOWN}
