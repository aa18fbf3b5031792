"""The replicated orchestrator's plan: scaling, lost nodes, restarts, delayed starts, orphans."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
from controller_fakes import (
    ANY,
    DOWN,
    DRAIN,
    NONE,
    NOW,
    ON_FAILURE,
    PAUSE,
    created_tasks,
    desired_changes,
    make_node,
    make_service,
    make_task,
    nodes_by_id,
)

from shoal import states, units
from shoal.controller.orchestrator import changes, replicas, replicated, restart, slots
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2, types_pb2

NODES = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))


def test_scale_up_from_nothing_creates_one_pending_task_per_slot() -> None:
    svc = make_service(replicas=3)
    p = replicas.plan(svc, [], NODES, NOW)
    assert [len(g) for g in p.groups] == [1, 1, 1]
    new = created_tasks(p.groups)
    assert [t.slot for t in new] == [1, 2, 3]
    for t in new:
        assert (t.status.state, t.desired_state) == (states.PENDING, states.RUNNING)
        assert (t.service_id, t.spec_version, t.node_id) == (svc.id, svc.spec_version, "")
        assert t.spec == svc.spec.task
        assert not t.HasField("start_after")
    assert p.wake_at is None


def test_a_large_service_is_planned_in_steps_that_come_to_the_same_plan() -> None:
    slots_count = 2 * replicas.SLOTS_PER_STEP + 10
    svc = make_service(replicas=slots_count - 2)  # scale down by two ...
    tasks = [make_task(svc, s, node="n1" if s % 2 else "n2") for s in range(1, slots_count + 1)]
    tasks[5] = make_task(svc, 6, node="n3", state=states.FAILED)  # ... and restart one
    steps = replicas.planning(svc, tasks, NODES, NOW)
    pauses = 0
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as done:
            stepped = done.value
            break
    assert pauses >= 2
    whole = replicas.plan(svc, tasks, NODES, NOW)
    assert stepped.groups and stepped.groups == whole.groups
    assert stepped.wake_at == whole.wake_at


def test_scale_up_fills_the_lowest_free_slots() -> None:
    svc = make_service(replicas=4)
    tasks = [make_task(svc, 2), make_task(svc, 5)]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert sorted(t.slot for t in created_tasks(p.groups)) == [1, 3]
    assert desired_changes(p.groups) == {}


def test_a_converged_service_plans_nothing() -> None:
    svc = make_service(replicas=2)
    p = replicas.plan(svc, [make_task(svc, 1), make_task(svc, 2, node="n2")], NODES, NOW)
    assert p.groups == []
    assert p.wake_at is None


def test_scale_down_removes_non_running_tasks_first() -> None:
    svc = make_service(replicas=2)
    pending = make_task(svc, 3, node="", state=states.PENDING)
    tasks = [make_task(svc, 1), make_task(svc, 2, node="n2"), pending]
    p = replicas.plan(svc, tasks, NODES, NOW)
    assert desired_changes(p.groups) == {pending.id: states.REMOVE}
    assert created_tasks(p.groups) == []


def test_scale_down_takes_from_the_node_with_most_tasks_of_the_service() -> None:
    svc = make_service(replicas=3)
    on_n1 = [make_task(svc, s, node="n1") for s in (1, 2, 3)]
    tasks = [*on_n1, make_task(svc, 4, node="n2"), make_task(svc, 5, node="n3")]
    p = replicas.plan(svc, tasks, NODES, NOW)
    removed = {t.slot for t in tasks if desired_changes(p.groups).get(t.id) == states.REMOVE}
    assert removed == {2, 3}


def test_scale_down_removes_the_whole_slot_in_one_group() -> None:
    svc = make_service(replicas=1)
    keep = make_task(svc, 1)
    old = make_task(svc, 2, node="n2", state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 500)
    cur = make_task(svc, 2, node="n2", state=states.PENDING)
    p = replicas.plan(svc, [keep, old, cur], NODES, NOW)
    assert [sorted(op.obj.id for op in g) for g in p.groups] == [sorted([old.id, cur.id])]
    assert desired_changes(p.groups) == {old.id: states.REMOVE, cur.id: states.REMOVE}


def test_tasks_already_being_removed_do_not_hold_their_slot() -> None:
    svc = make_service(replicas=1)
    leaving = make_task(svc, 1, desired=states.REMOVE)
    p = replicas.plan(svc, [leaving], NODES, NOW)
    assert [t.slot for t in created_tasks(p.groups)] == [1]
    assert desired_changes(p.groups) == {}


def test_negative_replicas_count_as_zero() -> None:
    svc = make_service(replicas=-2)
    task = make_task(svc, 1)
    p = replicas.plan(svc, [task], NODES, NOW)
    assert desired_changes(p.groups) == {task.id: states.REMOVE}


def test_two_runnable_tasks_in_a_slot_keep_only_the_newest() -> None:
    svc = make_service(replicas=1)
    older = make_task(svc, 1, created=NOW - 50)
    newer = make_task(svc, 1, node="n2", created=NOW - 10)
    p = replicas.plan(svc, [newer, older], NODES, NOW)
    assert desired_changes(p.groups) == {older.id: states.SHUTDOWN}


_LOST = {
    "down": nodes_by_id(make_node("n1", state=DOWN)),
    "drained": nodes_by_id(make_node("n1", availability=DRAIN)),
    "deleted": {},
}


@pytest.mark.parametrize(
    ("lost", "state"),
    [
        (lost, state)
        for lost in _LOST
        for state in (states.ASSIGNED, states.PREPARING, states.RUNNING)
        # A running task on a drained node is moved start-first instead (test_controller_moves.py).
        if not (lost == "drained" and state == states.RUNNING)
    ],
)
def test_a_task_on_a_lost_node_is_replaced_at_once(lost: str, state: int) -> None:
    nodes = _LOST[lost]
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="n1", state=state)
    p = replicas.plan(svc, [task], nodes, NOW)
    assert len(p.groups) == 1
    (group,) = p.groups
    assert desired_changes([group]) == {task.id: states.SHUTDOWN}
    (new,) = created_tasks([group])
    assert (new.slot, new.desired_state, new.status.state) == (1, states.RUNNING, states.PENDING)
    assert not new.HasField("start_after")
    assert p.wake_at is None


def test_the_replaced_task_update_expects_the_version_read() -> None:
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="gone")
    p = replicas.plan(svc, [task], {}, NOW)
    (stop,) = [op for op in p.groups[0] if isinstance(op, w.Put) and op.expect]
    assert stop.expect == task.meta.version
    assert task.desired_state == states.RUNNING  # the input message is not changed


def test_a_task_on_a_paused_node_stays() -> None:
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="n1")
    p = replicas.plan(svc, [task], nodes_by_id(make_node("n1", availability=PAUSE)), NOW)
    assert p.groups == []


def test_an_unassigned_task_is_not_replaced_for_a_missing_node() -> None:
    svc = make_service(replicas=1)
    p = replicas.plan(svc, [make_task(svc, 1, node="", state=states.PENDING)], {}, NOW)
    assert p.groups == []


def test_a_failed_task_is_replaced_after_the_restart_delay() -> None:
    svc = make_service(replicas=1, restart_delay=7.0)
    task = make_task(svc, 1, state=states.FAILED)
    p = replicas.plan(svc, [task], NODES, NOW)
    (group,) = p.groups
    assert desired_changes([group]) == {task.id: states.SHUTDOWN}
    (new,) = created_tasks([group])
    assert (new.slot, new.desired_state, new.status.state) == (1, states.READY, states.PENDING)
    assert units.from_timestamp(new.start_after) == pytest.approx(NOW + 7.0)
    assert p.wake_at == pytest.approx(NOW + 7.0)


@pytest.mark.parametrize(
    ("condition", "state", "restarts"),
    [
        (ANY, states.COMPLETE, True),
        (ANY, states.FAILED, True),
        (ANY, states.SHUTDOWN, True),
        (ON_FAILURE, states.COMPLETE, False),
        (ON_FAILURE, states.FAILED, True),
        (ON_FAILURE, states.REJECTED, True),
        (NONE, states.FAILED, False),
        (NONE, states.COMPLETE, False),
    ],
)
def test_restart_condition_decides_whether_an_ended_task_is_replaced(
    condition: int, state: int, restarts: bool
) -> None:
    svc = make_service(replicas=1, restart=condition)
    task = make_task(svc, 1, state=state)
    assert restart.should_restart(task, [task], NOW) is restarts
    p = replicas.plan(svc, [task], NODES, NOW)
    assert bool(created_tasks(p.groups)) is restarts
    if not restarts:
        # The ended task still holds its slot: no fresh slot is opened either.
        assert p.groups == []


def test_restart_delay_is_read_from_the_task_spec() -> None:
    svc = make_service(restart_delay=2.5)
    assert restart.delay(make_task(svc, 1, state=states.FAILED)) == 2.5


def test_a_delayed_task_waits_for_its_start_after() -> None:
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="n1", state=states.READY, desired=states.READY, start_after=NOW + 3)
    p = replicas.plan(svc, [task], NODES, NOW)
    assert p.groups == []
    assert p.wake_at == pytest.approx(NOW + 3)


def test_a_delayed_task_starts_once_due_and_nothing_else_in_its_slot_may_run() -> None:
    svc = make_service(replicas=1)
    old = make_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 200)
    task = make_task(svc, 1, state=states.READY, desired=states.READY, start_after=NOW - 1)
    p = replicas.plan(svc, [old, task], NODES, NOW)
    assert p.groups and len(p.groups) == 1
    assert desired_changes(p.groups) == {task.id: states.RUNNING}


@pytest.mark.parametrize("old_state", [states.ASSIGNED, states.RUNNING])
def test_a_delayed_task_waits_while_the_old_task_of_its_slot_may_still_run(old_state: int) -> None:
    svc = make_service(replicas=1)
    old = make_task(svc, 1, node="n2", state=old_state, desired=states.SHUTDOWN, created=NOW - 200)
    task = make_task(svc, 1, state=states.READY, desired=states.READY, start_after=NOW - 1)
    p = replicas.plan(svc, [old, task], NODES, NOW)
    assert p.groups == []


def test_an_old_task_on_a_down_node_does_not_hold_back_the_delayed_start() -> None:
    svc = make_service(replicas=1)
    nodes = nodes_by_id(make_node("n1"), make_node("n2", state=DOWN))
    old = make_task(svc, 1, node="n2", state=states.RUNNING, desired=states.SHUTDOWN, created=NOW - 200)
    task = make_task(svc, 1, state=states.READY, desired=states.READY, start_after=NOW - 1)
    p = replicas.plan(svc, [old, task], nodes, NOW)
    assert desired_changes(p.groups) == {task.id: states.RUNNING}


def test_may_be_alive_needs_an_assigned_unfinished_task_on_a_usable_node() -> None:
    svc = make_service()
    nodes = nodes_by_id(make_node("n1"), make_node("n2", state=DOWN))
    assert slots.may_be_alive(make_task(svc, 1, state=states.RUNNING), nodes)
    assert not slots.may_be_alive(make_task(svc, 1, state=states.PENDING, node=""), nodes)
    assert not slots.may_be_alive(make_task(svc, 1, state=states.COMPLETE), nodes)
    assert not slots.may_be_alive(make_task(svc, 1, node="n2"), nodes)
    assert not slots.may_be_alive(make_task(svc, 1, node="n9"), nodes)


def test_scale_down_victims_prefers_non_running_then_the_busiest_node() -> None:
    svc = make_service()
    current = {
        1: make_task(svc, 1, node="a"),
        2: make_task(svc, 2, node="a"),
        3: make_task(svc, 3, node="b"),
        4: make_task(svc, 4, node="c", state=states.PENDING),
    }
    assert slots.scale_down_victims(current, 1) == [4]
    assert slots.scale_down_victims(current, 2) == [4, 2]
    three = slots.scale_down_victims(current, 3)
    assert three[:2] == [4, 2] and three[2] in (1, 3)  # then a tie between nodes a and b
    assert sorted(slots.scale_down_victims(current, 9)) == [1, 2, 3, 4]


def test_free_slots_are_the_smallest_unused_numbers_from_one() -> None:
    assert slots.free_slots([], 3) == [1, 2, 3]
    assert slots.free_slots([1, 3, 4], 3) == [2, 5, 6]
    assert slots.free_slots([1, 2], 0) == []


def test_orphans_of_a_deleted_service_are_all_removed() -> None:
    svc = make_service()
    running = make_task(svc, 1)
    stopped = make_task(svc, 2, state=states.SHUTDOWN, desired=states.SHUTDOWN)
    leaving = make_task(svc, 3, desired=states.REMOVE)
    p = replicas.plan_orphans([running, stopped, leaving])
    assert [len(g) for g in p.groups] == [1, 1]
    assert desired_changes(p.groups) == {running.id: states.REMOVE, stopped.id: states.REMOVE}
    assert p.wake_at is None


@pytest.mark.parametrize(("earlier_failures", "restarts"), [(1, True), (2, False)])
def test_restart_max_attempts_caps_the_replacements_of_a_slot(earlier_failures: int, restarts: bool) -> None:
    """--restart-max-attempts 2: the first task and two replacements may run; then the slot stays failed."""
    svc = make_service(replicas=1)
    svc.spec.task.restart.max_attempts = 2
    ended = [
        make_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 100 + i)
        for i in range(earlier_failures)
    ]
    current = make_task(svc, 1, state=states.FAILED, created=NOW - 10)
    p = replicas.plan(svc, [*ended, current], NODES, NOW)
    assert bool(created_tasks(p.groups)) is restarts


# ---- which service changes re-plan ---------------------------------------------------


def _relabelled(svc: objects_pb2.Service, **labels: str) -> objects_pb2.Service:
    """`svc` after an update that only set labels (as UpdateService writes it: version, previous spec)."""
    new = objects_pb2.Service()
    new.CopyFrom(svc)
    new.previous_spec.CopyFrom(svc.spec)
    new.previous_spec_version = svc.spec_version
    new.spec.labels.update(labels)
    new.meta.version = svc.meta.version + 1
    return new


def _orchestrator() -> replicated.ReplicatedOrchestrator:
    cache = types.SimpleNamespace(cluster=None)
    return replicated.ReplicatedOrchestrator(cache=cache, writer=None, settings=LoopSettings())  # type: ignore[arg-type]


def test_a_label_only_update_of_a_steady_service_is_not_planned_again() -> None:
    svc = make_service(replicas=1000)
    new = _relabelled(svc, team="web")
    assert changes.labels_only(svc, new)
    assert _orchestrator()._affected(Change(Kind.SERVICE, svc, new)) == set()


@pytest.mark.parametrize(
    "change",
    [
        lambda s: setattr(s.spec.replicated, "replicas", 5),
        lambda s: setattr(s.spec.task.container, "image", "busybox:2"),
        lambda s: setattr(s, "spec_version", 2),
        lambda s: setattr(s.update_status, "state", types_pb2.UpdateStatus.UPDATING),
        lambda s: setattr(s.spec.update, "parallelism", 4),
    ],
)
def test_an_update_of_anything_but_labels_is_planned(change: Callable[[objects_pb2.Service], None]) -> None:
    svc = make_service()
    new = _relabelled(svc, team="web")
    change(new)
    assert not changes.labels_only(svc, new)
    assert _orchestrator()._affected(Change(Kind.SERVICE, svc, new)) == {svc.id}


def test_a_label_only_update_during_a_rollout_is_planned() -> None:
    svc = make_service(version=2, previous=True, update_state=types_pb2.UpdateStatus.UPDATING)
    new = _relabelled(svc, team="web")
    assert changes.labels_only(svc, new)
    assert _orchestrator()._affected(Change(Kind.SERVICE, svc, new)) == {svc.id}


def test_a_created_or_removed_service_is_planned() -> None:
    svc = make_service()
    orchestrator = _orchestrator()
    assert orchestrator._affected(Change(Kind.SERVICE, None, svc)) == {svc.id}
    assert orchestrator._affected(Change(Kind.SERVICE, svc, None)) == {svc.id}


# ---- which task changes plan their slot ------------------------------------------------


@pytest.mark.parametrize(
    ("state", "desired", "node", "slot_tasks", "quiet"),
    [
        (states.ASSIGNED, states.RUNNING, "n1", 1, True),  # placed: on its way
        (states.RUNNING, states.RUNNING, "n1", 1, True),  # running, nothing else in the slot
        (states.RUNNING, states.RUNNING, "down", 1, False),  # its node is lost: replace it
        (states.RUNNING, states.RUNNING, "drained", 1, False),  # its node drains: start one elsewhere
        (states.RUNNING, states.RUNNING, "gone", 1, False),  # its node was removed
        (states.FAILED, states.RUNNING, "n1", 1, False),  # ended: the restart policy decides
        (states.ASSIGNED, states.READY, "n1", 1, False),  # a delayed start
        (states.PENDING, states.RUNNING, "", 1, True),  # waiting for a node: the scheduler's, not ours
        (states.PENDING, states.READY, "", 1, False),  # a delayed start, not yet placed
        (states.RUNNING, states.RUNNING, "n1", 2, False),  # an older task in the slot: moves.view decides
        (states.PENDING, states.RUNNING, "", 2, False),  # a replacement: the older one may have to stop
        (states.NEW, states.RUNNING, "", 1, False),
    ],
)
def test_a_task_on_its_way_in_a_slot_of_its_own_plans_nothing(
    state: int, desired: int, node: str, slot_tasks: int, quiet: bool
) -> None:
    svc = make_service(replicas=1)
    nodes = nodes_by_id(make_node("n1"), make_node("down", state=DOWN), make_node("drained", availability=DRAIN))
    task = make_task(svc, 1, node=node, state=state, desired=desired)
    older = [make_task(svc, 1, node="n1", state=states.FAILED, desired=states.SHUTDOWN, task_id="old")]
    in_slot = [task, *older][:slot_tasks]
    cache = types.SimpleNamespace(
        cluster=None, nodes=nodes, services={svc.id: svc}, tasks_by_slot={(svc.id, 1): {t.id for t in in_slot}}
    )
    orchestrator = replicated.ReplicatedOrchestrator(cache=cache, writer=None, settings=LoopSettings())  # type: ignore[arg-type]
    assert orchestrator._nothing_to_plan(task) is quiet
    if quiet:
        # The shortcut is only sound while the slot's own plan would indeed write nothing.
        p = replicas.plan_slots(svc, {1: in_slot}, nodes, NOW)
        assert p is not None and p.groups == [] and p.wake_at is None


def test_a_task_of_an_older_spec_version_is_planned() -> None:
    """plan_slots sends such a slot back to the whole plan (a rollout decides it): the shortcut may not skip it."""
    svc = make_service(replicas=1, version=2)
    nodes = nodes_by_id(make_node("n1"))
    task = make_task(svc, 1, node="n1", state=states.RUNNING, version=1)
    cache = types.SimpleNamespace(
        cluster=None, nodes=nodes, services={svc.id: svc}, tasks_by_slot={(svc.id, 1): {task.id}}
    )
    orchestrator = replicated.ReplicatedOrchestrator(cache=cache, writer=None, settings=LoopSettings())  # type: ignore[arg-type]
    assert replicas.plan_slots(svc, {1: [task]}, nodes, NOW) is None
    assert not orchestrator._nothing_to_plan(task)
    assert orchestrator._nothing_to_plan(make_task(svc, 1, node="n1", state=states.RUNNING))
