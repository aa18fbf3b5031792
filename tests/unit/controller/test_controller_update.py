"""Rolling updates through the replicated plan: parallelism, in-flight replacements, delay, update status."""

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
from shoal.controller.orchestrator import replicated, update
from shoal.v1 import objects_pb2

NODES = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))


def old_tasks(svc: objects_pb2.Service, slots: range = range(1, 4)) -> list[objects_pb2.Task]:
    """Running tasks of the version before the service's."""
    return [make_task(svc, s, node=f"n{s}", version=svc.spec_version - 1) for s in slots]


def replaced(svc: objects_pb2.Service, slot: int, *, state: int, status_at: float = NOW - 1) -> list[objects_pb2.Task]:
    """A slot mid-update or done: the old task told to stop, and its up-to-date replacement."""
    old = make_task(
        svc,
        slot,
        node=f"n{slot}",
        version=svc.spec_version - 1,
        state=states.SHUTDOWN,
        desired=states.SHUTDOWN,
        created=NOW - 300,
    )
    desired = states.RUNNING if state >= states.RUNNING else states.READY
    new = make_task(svc, slot, node=f"n{slot}", state=state, desired=desired, created=NOW - 60, status_at=status_at)
    return [old, new]


def replaced_slots(p: replicated.Plan) -> list[int]:
    return sorted(t.slot for t in created_tasks(p.groups))


def test_parallelism_one_replaces_one_slot_stop_first() -> None:
    svc = make_service(version=2, previous=True, parallelism=1)
    tasks = old_tasks(svc)
    p = replicated.plan(svc, tasks, NODES, NOW)
    (group,) = [g for g in p.groups if created_tasks([g])]
    assert desired_changes([group]) == {tasks[0].id: states.SHUTDOWN}
    (new,) = created_tasks([group])
    assert (new.slot, new.spec_version, new.desired_state) == (1, 2, states.READY)
    assert new.spec == svc.spec.task
    assert units.from_timestamp(new.start_after) == pytest.approx(NOW)


def test_the_first_pass_marks_the_service_updating() -> None:
    svc = make_service(version=2, previous=True)
    p = replicated.plan(svc, old_tasks(svc), NODES, NOW)
    (put,) = service_puts(p.groups)
    assert put.update_status.state == UPDATING
    assert units.from_timestamp(put.update_status.started_at) == pytest.approx(NOW)
    assert put.spec == svc.spec  # only the status changes
    assert svc.update_status.state != UPDATING  # the input is not changed


def test_no_new_slot_while_a_replacement_is_in_flight() -> None:
    svc = make_service(version=2, previous=True, parallelism=1, update_state=UPDATING)
    tasks = [*replaced(svc, 1, state=states.PENDING), *old_tasks(svc, range(2, 4))]
    p = replicated.plan(svc, tasks, NODES, NOW)
    assert created_tasks(p.groups) == []
    assert service_puts(p.groups) == []


def test_next_slot_once_the_replacement_runs() -> None:
    svc = make_service(version=2, previous=True, parallelism=1, update_state=UPDATING)
    tasks = [*replaced(svc, 1, state=states.RUNNING), *old_tasks(svc, range(2, 4))]
    p = replicated.plan(svc, tasks, NODES, NOW)
    assert replaced_slots(p) == [2]


def test_parallelism_two_keeps_two_in_flight() -> None:
    svc = make_service(replicas=4, version=2, previous=True, parallelism=2, update_state=UPDATING)
    tasks = [*replaced(svc, 1, state=states.PREPARING), *old_tasks(svc, range(2, 5))]
    p = replicated.plan(svc, tasks, nodes_by_id(*NODES.values(), make_node("n4")), NOW)
    assert replaced_slots(p) == [2]


def test_parallelism_zero_replaces_every_dirty_slot_at_once() -> None:
    svc = make_service(version=2, previous=True, parallelism=0)
    p = replicated.plan(svc, old_tasks(svc), NODES, NOW)
    assert replaced_slots(p) == [1, 2, 3]
    assert all(t.desired_state == states.READY for t in created_tasks(p.groups))


def test_the_update_delay_holds_the_next_slot_and_sets_a_timer() -> None:
    svc = make_service(version=2, previous=True, update_delay=10.0, update_state=UPDATING)
    tasks = [*replaced(svc, 1, state=states.RUNNING, status_at=NOW - 2), *old_tasks(svc, range(2, 4))]
    p = replicated.plan(svc, tasks, NODES, NOW)
    assert created_tasks(p.groups) == []
    assert p.wake_at == pytest.approx(NOW + 8)
    later = replicated.plan(svc, tasks, NODES, NOW + 8)
    assert replaced_slots(later) == [2]


def test_the_update_completes_when_every_slot_runs_the_new_version() -> None:
    svc = make_service(version=2, previous=True, update_state=UPDATING)
    tasks = [t for s in (1, 2, 3) for t in replaced(svc, s, state=states.RUNNING)]
    p = replicated.plan(svc, tasks, NODES, NOW)
    (put,) = service_puts(p.groups)
    assert put.update_status.state == COMPLETED
    assert units.from_timestamp(put.update_status.completed_at) == pytest.approx(NOW)
    assert created_tasks(p.groups) == []


def test_a_service_without_previous_spec_is_never_marked_updating() -> None:
    svc = make_service(version=2, previous=False)
    p = replicated.plan(svc, old_tasks(svc), NODES, NOW)
    assert replaced_slots(p) == [1]
    assert service_puts(p.groups) == []


def test_a_new_service_scaling_up_is_not_an_update() -> None:
    svc = make_service(version=1, previous=False)
    p = replicated.plan(svc, [], NODES, NOW)
    assert service_puts(p.groups) == []


def test_a_slot_being_restarted_is_not_also_replaced_by_the_update() -> None:
    svc = make_service(replicas=1, version=2, previous=True, parallelism=0)
    failed = make_task(svc, 1, version=1, state=states.FAILED)
    p = replicated.plan(svc, [failed], NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert new.spec_version == 2  # the restart already takes the new spec


def test_a_restart_after_a_completed_update_does_not_reopen_it() -> None:
    """A crash-restart in a slot that still keeps its pre-update task in history is not an update."""
    svc = make_service(replicas=2, version=2, previous=True, update_state=COMPLETED)
    old1, _ = replaced(svc, 1, state=states.RUNNING)
    crashed = make_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 30)
    restarting = make_task(svc, 1, state=states.PENDING, desired=states.READY, created=NOW - 5, start_after=NOW + 3)
    tasks = [old1, crashed, restarting, *replaced(svc, 2, state=states.RUNNING)]
    p = replicated.plan(svc, tasks, NODES, NOW)
    assert service_puts(p.groups) == []


def test_progress_counts_dirty_in_flight_and_delay() -> None:
    svc = make_service(version=2, previous=True, update_delay=4.0)
    tasks = [*replaced(svc, 1, state=states.RUNNING, status_at=NOW - 1), *replaced(svc, 2, state=states.STARTING)]
    tasks.append(make_task(svc, 3, version=1))
    current = {t.slot: t for t in tasks if t.desired_state <= states.RUNNING}
    by_slot: dict[int, list[objects_pb2.Task]] = {}
    for t in tasks:
        by_slot.setdefault(t.slot, []).append(t)
    pr = update.progress(svc, current, by_slot)
    assert (pr.dirty, pr.in_flight) == ([3], 1)
    assert pr.not_before == pytest.approx(NOW + 3)
    assert update.slots_to_replace(svc, pr, NOW) == []
    assert update.slots_to_replace(svc, pr, NOW + 3) == []  # parallelism 1, one still in flight
