"""The global orchestrator's plan: a task per eligible node, lost and drained nodes, restarts, updates."""

from __future__ import annotations

from controller_fakes import (
    DOWN,
    DRAIN,
    NONE,
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

from shoal import states
from shoal.controller import service_modes
from shoal.controller.orchestrator import global_
from shoal.v1 import objects_pb2, types_pb2

NODES = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))


def global_service(**kw: object) -> objects_pb2.Service:
    svc = make_service(**kw)  # type: ignore[arg-type]
    svc.spec.ClearField("replicated")
    getattr(svc.spec, "global").SetInParent()
    return svc


def on(svc: objects_pb2.Service, node: str, **kw: object) -> objects_pb2.Task:
    return make_task(svc, 0, node=node, **kw)  # type: ignore[arg-type]


def test_every_eligible_node_gets_one_task_made_for_it() -> None:
    svc = global_service()
    p = global_.plan(svc, [], NODES, NOW)
    new = created_tasks(p.groups)
    assert sorted(t.node_id for t in new) == ["n1", "n2", "n3"]
    for t in new:
        assert (t.slot, t.status.state, t.desired_state) == (0, states.PENDING, states.RUNNING)
        assert t.spec_version == svc.spec_version


def test_a_converged_global_service_plans_nothing() -> None:
    svc = global_service()
    p = global_.plan(svc, [on(svc, n) for n in NODES], NODES, NOW)
    assert p.groups == [] and p.wake_at is None


def test_a_node_that_joins_gets_a_task() -> None:
    svc = global_service()
    nodes = {**NODES, "n4": make_node("n4")}
    p = global_.plan(svc, [on(svc, n) for n in NODES], nodes, NOW)
    assert [t.node_id for t in created_tasks(p.groups)] == ["n4"]


def test_paused_not_ready_and_unmatched_nodes_get_no_new_task() -> None:
    svc = global_service(constraints=["node.labels.zone==a"])
    nodes = nodes_by_id(
        make_node("n1", labels={"zone": "a"}),
        make_node("n2", labels={"zone": "a"}, availability=PAUSE),
        make_node("n3", labels={"zone": "a"}, state=types_pb2.NodeStatus.DISCONNECTED),
        make_node("n4", labels={"zone": "b"}),
    )
    assert [t.node_id for t in created_tasks(global_.plan(svc, [], nodes, NOW).groups)] == ["n1"]


def test_a_paused_node_keeps_its_task() -> None:
    svc = global_service()
    nodes = {**NODES, "n1": make_node("n1", availability=PAUSE)}
    p = global_.plan(svc, [on(svc, n) for n in NODES], nodes, NOW)
    assert p.groups == []


def test_down_and_drained_nodes_lose_their_task_and_get_no_replacement() -> None:
    svc = global_service()
    tasks = [on(svc, n) for n in NODES]
    nodes = {**NODES, "n1": make_node("n1", state=DOWN), "n2": make_node("n2", availability=DRAIN)}
    p = global_.plan(svc, tasks, nodes, NOW)
    assert desired_changes(p.groups) == {tasks[0].id: states.SHUTDOWN, tasks[1].id: states.SHUTDOWN}
    assert created_tasks(p.groups) == []


def test_a_node_that_no_longer_meets_the_constraints_loses_its_task() -> None:
    svc = global_service(constraints=["node.labels.zone==a"])
    nodes = nodes_by_id(make_node("n1", labels={"zone": "a"}), make_node("n2", labels={"zone": "b"}))
    tasks = [on(svc, "n1"), on(svc, "n2")]
    p = global_.plan(svc, tasks, nodes, NOW)
    assert desired_changes(p.groups) == {tasks[1].id: states.SHUTDOWN}


def test_a_node_that_comes_back_gets_a_new_task() -> None:
    svc = global_service()
    old = on(svc, "n1", state=states.SHUTDOWN, desired=states.SHUTDOWN)
    p = global_.plan(svc, [old, on(svc, "n2"), on(svc, "n3")], NODES, NOW)
    assert [t.node_id for t in created_tasks(p.groups)] == ["n1"]


def test_a_node_back_from_down_starts_its_new_task_only_once_the_old_one_stopped() -> None:
    svc = global_service()
    # Shut down while the node was DOWN: its agent has not reported the stop yet.
    old = on(svc, "n1", state=states.RUNNING, desired=states.SHUTDOWN)
    p = global_.plan(svc, [old, on(svc, "n2"), on(svc, "n3")], NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.node_id, new.desired_state) == ("n1", states.READY)
    new.meta.created_at.seconds, new.meta.version = int(NOW), 12  # as stored
    assert global_.plan(svc, [old, new, on(svc, "n2"), on(svc, "n3")], NODES, NOW + 1).groups == []
    old.status.state = states.SHUTDOWN
    p = global_.plan(svc, [old, new, on(svc, "n2"), on(svc, "n3")], NODES, NOW + 1)
    assert desired_changes(p.groups) == {new.id: states.RUNNING}


def test_tasks_of_a_removed_node_are_removed() -> None:
    svc = global_service()
    gone = [on(svc, "n9"), on(svc, "n9", state=states.FAILED, desired=states.SHUTDOWN, created=NOW - 500)]
    p = global_.plan(svc, [*gone, *(on(svc, n) for n in NODES)], NODES, NOW)
    assert desired_changes(p.groups) == {t.id: states.REMOVE for t in gone}


def test_an_exited_task_is_restarted_on_its_node_after_the_delay() -> None:
    svc = global_service(restart_delay=5)
    failed = on(svc, "n1", state=states.FAILED)
    p = global_.plan(svc, [failed, on(svc, "n2"), on(svc, "n3")], NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.node_id, new.desired_state) == ("n1", states.READY)
    assert new.start_after.seconds == int(NOW + 5)
    assert desired_changes(p.groups) == {failed.id: states.SHUTDOWN}
    assert p.wake_at == NOW + 5


def test_restart_condition_none_leaves_an_exited_task() -> None:
    svc = global_service(restart=NONE)
    p = global_.plan(svc, [on(svc, "n1", state=states.COMPLETE), on(svc, "n2"), on(svc, "n3")], NODES, NOW)
    assert p.groups == []


def test_a_delayed_task_starts_once_the_old_one_stopped() -> None:
    svc = global_service()
    old = on(svc, "n1", state=states.RUNNING, desired=states.SHUTDOWN, created=NOW - 200)
    new = on(svc, "n1", state=states.READY, desired=states.READY, start_after=NOW - 1)
    others = [on(svc, "n2"), on(svc, "n3")]
    assert global_.plan(svc, [old, new, *others], NODES, NOW).groups == []
    old.status.state = states.SHUTDOWN
    p = global_.plan(svc, [old, new, *others], NODES, NOW)
    assert desired_changes(p.groups) == {new.id: states.RUNNING}


def test_a_rolling_update_replaces_parallelism_nodes_at_a_time_stop_first() -> None:
    svc = global_service(version=2, parallelism=1, previous=True)
    tasks = [on(svc, n, version=1) for n in NODES]
    p = global_.plan(svc, tasks, NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.node_id, new.desired_state, new.spec_version) == ("n1", states.READY, 2)
    assert desired_changes(p.groups) == {tasks[0].id: states.SHUTDOWN}
    (status,) = service_puts(p.groups)
    assert status.update_status.state == types_pb2.UpdateStatus.UPDATING


def test_an_update_waits_for_the_replacement_in_flight() -> None:
    svc = global_service(version=2, parallelism=1, previous=True)
    svc.update_status.state = types_pb2.UpdateStatus.UPDATING
    old = on(svc, "n1", version=1, state=states.SHUTDOWN, desired=states.SHUTDOWN, created=NOW - 200)
    new = on(svc, "n1", state=states.PREPARING)
    tasks = [old, new, on(svc, "n2", version=1), on(svc, "n3", version=1)]
    assert global_.plan(svc, tasks, NODES, NOW).groups == []
    new.status.state = states.RUNNING
    p = global_.plan(svc, tasks, NODES, NOW)
    assert [t.node_id for t in created_tasks(p.groups)] == ["n2"]


def test_a_paused_node_does_not_hold_an_update_back_and_the_update_completes() -> None:
    svc = global_service(version=2, previous=True)
    svc.update_status.state = types_pb2.UpdateStatus.UPDATING
    nodes = {**NODES, "n3": make_node("n3", availability=PAUSE)}
    tasks = [on(svc, "n1"), on(svc, "n2"), on(svc, "n3", version=1)]
    p = global_.plan(svc, tasks, nodes, NOW)
    (status,) = service_puts(p.groups)
    assert status.update_status.state == types_pb2.UpdateStatus.COMPLETED
    assert created_tasks(p.groups) == []


def test_counts_of_a_global_service() -> None:
    svc = global_service()
    tasks = [on(svc, "n1"), on(svc, "n2", state=states.PREPARING), on(svc, "n3", desired=states.SHUTDOWN)]
    assert service_modes.counts(svc, tasks) == service_modes.Counts(running=1, desired=2)


def test_a_rollback_uses_the_rollback_settings_and_ends_rollback_completed() -> None:
    svc = global_service(version=1, parallelism=1, previous=True)
    svc.spec.rollback.parallelism = 0  # all at once
    svc.update_status.state = types_pb2.UpdateStatus.ROLLBACK_STARTED
    tasks = [on(svc, n, version=2) for n in NODES]
    p = global_.plan(svc, tasks, NODES, NOW)
    assert sorted(t.node_id for t in created_tasks(p.groups)) == ["n1", "n2", "n3"]
    done = global_.plan(svc, [on(svc, n) for n in NODES], NODES, NOW)
    (status,) = service_puts(done.groups)
    assert status.update_status.state == types_pb2.UpdateStatus.ROLLBACK_COMPLETED
