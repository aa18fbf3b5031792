"""Start-first moves: draining a node without losing capacity, and rebalancing a service's tasks."""

from __future__ import annotations

import pytest
from controller_fakes import (
    DRAIN,
    NOW,
    PAUSE,
    created_tasks,
    desired_changes,
    make_node,
    make_service,
    make_task,
    nodes_by_id,
    service_puts,
)

from shoal import states, units
from shoal.controller.api.rollouts import started_rebalance
from shoal.controller.orchestrator import rebalance, replicas
from shoal.v1 import objects_pb2, types_pb2

MOVE = objects_pb2.Task.MOVE
Status = types_pb2.UpdateStatus


def moved(
    svc: objects_pb2.Service, slot: int, *, node: str = "", state: int = states.PENDING, created: float = NOW - 1
) -> objects_pb2.Task:
    t = make_task(svc, slot, node=node, state=state, created=created)
    t.origin = MOVE  # type: ignore[assignment]
    return t


# ---- drain --------------------------------------------------------------------------------------


def test_a_drained_node_s_running_task_gets_its_replacement_first() -> None:
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="n1")
    nodes = nodes_by_id(make_node("n1", availability=DRAIN), make_node("n2"))
    p = replicas.plan(svc, [task], nodes, NOW)
    assert desired_changes(p.groups) == {}
    (new,) = created_tasks(p.groups)
    assert (new.slot, new.desired_state, new.origin) == (1, states.RUNNING, MOVE)


def test_the_drained_task_stops_once_its_replacement_runs() -> None:
    svc = make_service(replicas=1)
    old = make_task(svc, 1, node="n1", created=NOW - 100)
    nodes = nodes_by_id(make_node("n1", availability=DRAIN), make_node("n2"))
    starting = moved(svc, 1, node="n2", state=states.STARTING)
    p = replicas.plan(svc, [old, starting], nodes, NOW)
    assert desired_changes(p.groups) == {}
    assert created_tasks(p.groups) == []
    running = moved(svc, 1, node="n2", state=states.RUNNING)
    p = replicas.plan(svc, [old, running], nodes, NOW)
    assert desired_changes(p.groups) == {old.id: states.SHUTDOWN}


def test_the_drained_task_stops_anyway_if_no_replacement_runs_within_the_monitor_window() -> None:
    svc = make_service(replicas=1)
    svc.spec.update.monitor.CopyFrom(units.to_duration(5))
    old = make_task(svc, 1, node="n1", created=NOW - 100)
    nodes = nodes_by_id(make_node("n1", availability=DRAIN))
    unplaced = moved(svc, 1, created=NOW - 2)
    p = replicas.plan(svc, [old, unplaced], nodes, NOW)
    assert desired_changes(p.groups) == {}
    assert p.wake_at == pytest.approx(NOW + 3)
    p = replicas.plan(svc, [old, unplaced], nodes, NOW + 3)
    assert desired_changes(p.groups) == {old.id: states.SHUTDOWN}


def test_a_task_not_yet_running_on_a_drained_node_is_replaced_at_once() -> None:
    svc = make_service(replicas=1)
    task = make_task(svc, 1, node="n1", state=states.PREPARING)
    p = replicas.plan(svc, [task], nodes_by_id(make_node("n1", availability=DRAIN)), NOW)
    assert desired_changes(p.groups) == {task.id: states.SHUTDOWN}
    assert len(created_tasks(p.groups)) == 1


def test_a_restart_of_the_replacement_starts_while_the_drained_task_still_runs() -> None:
    svc = make_service(replicas=1)
    old = make_task(svc, 1, node="n1", created=NOW - 100)
    failed = moved(svc, 1, node="n2", state=states.FAILED, created=NOW - 3)
    failed.desired_state = states.SHUTDOWN  # type: ignore[assignment]
    restart = make_task(svc, 1, node="n2", state=states.READY, desired=states.READY, created=NOW - 1)
    restart.origin = objects_pb2.Task.RESTART  # type: ignore[assignment]
    restart.start_after.CopyFrom(units.to_timestamp(NOW - 0.5))
    nodes = nodes_by_id(make_node("n1", availability=DRAIN), make_node("n2"))
    p = replicas.plan(svc, [old, failed, restart], nodes, NOW)
    assert desired_changes(p.groups) == {restart.id: states.RUNNING}


def test_a_paused_node_keeps_its_tasks() -> None:
    svc = make_service(replicas=2)
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n1")]
    p = replicas.plan(svc, tasks, nodes_by_id(make_node("n1", availability=PAUSE)), NOW)
    assert p.groups == []


# ---- rebalance ----------------------------------------------------------------------------------

THREE = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))


def rebalancing(replicas: int = 6, parallelism: int = 1) -> objects_pb2.Service:
    svc = started_rebalance(make_service(replicas=replicas, parallelism=parallelism), NOW - 50, "rebalance requested")
    svc.spec.update.monitor.CopyFrom(units.to_duration(5))
    return svc


def crowded(svc: objects_pb2.Service) -> list[objects_pb2.Task]:
    """Six tasks on n1 and n2, none on n3 (which came back)."""
    return [make_task(svc, s, node="n1" if s <= 3 else "n2", created=NOW - 1000) for s in range(1, 7)]


def test_choose_moves_from_the_fullest_towards_the_emptiest() -> None:
    svc = make_service(replicas=6)
    current = {t.slot: t for t in crowded(svc)}
    eligible = list(THREE.values())
    assert rebalance.choose(current, {}, eligible, set(), 10) == [6, 3]
    assert rebalance.choose(current, {}, eligible, {6}, 10) == [5, 3]  # a slot moves once per rebalance
    assert rebalance.choose(current, {}, eligible, set(), 1) == [6]


def test_choose_leaves_a_balanced_service_alone_and_skips_paused_nodes() -> None:
    svc = make_service(replicas=4)
    tasks = [make_task(svc, s, node=n) for s, n in ((1, "n1"), (2, "n1"), (3, "n2"), (4, "n3"))]
    current = {t.slot: t for t in tasks}
    assert rebalance.choose(current, {}, list(THREE.values()), set(), 10) == []
    nodes = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3", availability=PAUSE))
    assert rebalance.eligible_nodes(svc, nodes) == [nodes["n1"], nodes["n2"]]


def test_eligible_nodes_follow_the_constraints() -> None:
    svc = make_service(constraints=["node.labels.zone==a"])
    nodes = nodes_by_id(make_node("n1", labels={"zone": "a"}), make_node("n2", labels={"zone": "b"}))
    assert rebalance.eligible_nodes(svc, nodes) == [nodes["n1"]]


def test_a_rebalance_moves_start_first_with_the_update_parallelism() -> None:
    svc = rebalancing(parallelism=1)
    p = replicas.plan(svc, crowded(svc), THREE, NOW)
    assert desired_changes(p.groups) == {}
    (new,) = created_tasks(p.groups)
    assert (new.slot, new.origin, new.desired_state) == (6, MOVE, states.RUNNING)


def test_one_move_in_flight_holds_the_next() -> None:
    svc = rebalancing(parallelism=1)
    tasks = [*crowded(svc), moved(svc, 6, node="n3", state=states.PREPARING)]
    p = replicas.plan(svc, tasks, THREE, NOW)
    assert created_tasks(p.groups) == []
    assert desired_changes(p.groups) == {}


def test_the_moved_task_runs_its_old_one_stops_and_then_the_next_move_starts() -> None:
    svc = rebalancing(parallelism=1)
    done = moved(svc, 6, node="n3", state=states.RUNNING)
    done.status.started_at.CopyFrom(units.to_timestamp(NOW - 1))
    tasks = [*crowded(svc), done]
    p = replicas.plan(svc, tasks, THREE, NOW)
    assert desired_changes(p.groups) == {tasks[5].id: states.SHUTDOWN}
    assert created_tasks(p.groups) == []  # in flight until the old task has stopped
    tasks[5].desired_state = states.SHUTDOWN  # type: ignore[assignment]
    tasks[5].status.state = states.SHUTDOWN  # type: ignore[assignment]
    p = replicas.plan(svc, tasks, THREE, NOW)
    (new,) = created_tasks(p.groups)
    assert new.slot == 3


def test_a_failed_move_is_undone_and_pauses_the_rebalance() -> None:
    svc = rebalancing()
    failed = moved(svc, 6, node="n3", state=states.FAILED)
    failed.status.err = "task: non-zero exit (1)"
    tasks = [*crowded(svc), failed]
    p = replicas.plan(svc, tasks, THREE, NOW)
    assert desired_changes(p.groups) == {failed.id: states.SHUTDOWN}
    (put,) = service_puts(p.groups)
    assert put.update_status.state == Status.REBALANCE_PAUSED
    assert put.update_status.message == f"rebalance paused: task {failed.id} failed: non-zero exit (1)"
    assert created_tasks(p.groups) == []


def test_a_move_that_cannot_be_placed_is_undone_after_the_monitor_window() -> None:
    svc = rebalancing()
    stuck = moved(svc, 6, created=NOW - 6)
    p = replicas.plan(svc, [*crowded(svc), stuck], THREE, NOW)
    assert desired_changes(p.groups) == {stuck.id: states.SHUTDOWN}


def test_the_rebalance_completes_when_balanced_and_settled() -> None:
    svc = rebalancing()
    tasks = [make_task(svc, s, node=f"n{(s - 1) % 3 + 1}", created=NOW - 1000) for s in range(1, 7)]
    for t in tasks[4:]:
        t.origin = MOVE  # type: ignore[assignment]
        t.meta.created_at.CopyFrom(units.to_timestamp(NOW - 20))
        t.status.started_at.CopyFrom(units.to_timestamp(NOW - 2))
    p = replicas.plan(svc, tasks, THREE, NOW)
    assert service_puts(p.groups) == []
    assert p.wake_at == pytest.approx(NOW + 3)
    (put,) = service_puts(replicas.plan(svc, tasks, THREE, NOW + 3).groups)
    assert put.update_status.state == Status.REBALANCE_COMPLETED
    assert put.update_status.message == "rebalance completed: 2 tasks moved"


def test_auto_rebalance_starts_when_a_node_became_ready_after_the_last_one() -> None:
    svc = make_service(replicas=6)
    svc.meta.created_at.CopyFrom(units.to_timestamp(NOW - 1000))
    tasks = crowded(svc)
    nodes = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3", hostname="back"))
    for n in nodes.values():
        n.meta.updated_at.CopyFrom(units.to_timestamp(NOW - 2000))
    cluster = objects_pb2.Cluster(id="c", auto_rebalance=True)
    assert service_puts(replicas.plan(svc, tasks, nodes, NOW, cluster).groups) == []
    nodes["n3"].meta.updated_at.CopyFrom(units.to_timestamp(NOW - 5))
    (put,) = service_puts(replicas.plan(svc, tasks, nodes, NOW, cluster).groups)
    assert put.update_status.state == Status.REBALANCE_STARTED
    assert put.update_status.message == "rebalance started: node back became ready"
    assert units.from_timestamp(put.rebalanced_at) == pytest.approx(NOW)
    off = objects_pb2.Cluster(id="c", auto_rebalance=False)
    assert service_puts(replicas.plan(svc, tasks, nodes, NOW, off).groups) == []
    svc.rebalanced_at.CopyFrom(units.to_timestamp(NOW - 1))
    assert service_puts(replicas.plan(svc, tasks, nodes, NOW, cluster).groups) == []
