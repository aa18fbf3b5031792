"""The job orchestrators' plans: completions, concurrency, failures, iterations, global jobs."""

from __future__ import annotations

from controller_fakes import (
    DOWN,
    DRAIN,
    NONE,
    NOW,
    created_tasks,
    desired_changes,
    make_node,
    make_service,
    make_task,
    nodes_by_id,
)

from shoal import states
from shoal.controller import service_modes
from shoal.controller.orchestrator import jobs
from shoal.v1 import objects_pb2

NODES = nodes_by_id(make_node("n1"), make_node("n2"), make_node("n3"))


def replicated_job(total: int, concurrent: int, **kw: object) -> objects_pb2.Service:
    svc = make_service(**kw)  # type: ignore[arg-type]
    svc.spec.replicated_job.total_completions = total
    svc.spec.replicated_job.max_concurrent = concurrent
    return svc


def global_job(**kw: object) -> objects_pb2.Service:
    svc = make_service(**kw)  # type: ignore[arg-type]
    svc.spec.global_job.SetInParent()
    return svc


# ---- replicated jobs --------------------------------------------------------------


def test_a_new_job_starts_max_concurrent_slots_lowest_first() -> None:
    svc = replicated_job(5, 2)
    p = jobs.plan_replicated(svc, [], NODES, NOW)
    assert [t.slot for t in created_tasks(p.groups)] == [1, 2]


def test_completed_slots_free_room_for_the_next_ones() -> None:
    svc = replicated_job(5, 2)
    tasks = [make_task(svc, 1, state=states.COMPLETE), make_task(svc, 2)]
    p = jobs.plan_replicated(svc, tasks, NODES, NOW)
    assert [t.slot for t in created_tasks(p.groups)] == [3]
    assert desired_changes(p.groups) == {}


def test_a_completed_task_is_never_restarted_and_a_done_job_plans_nothing() -> None:
    svc = replicated_job(2, 2)
    tasks = [make_task(svc, 1, state=states.COMPLETE), make_task(svc, 2, state=states.COMPLETE)]
    p = jobs.plan_replicated(svc, tasks, NODES, NOW)
    assert p.groups == [] and p.wake_at is None
    assert service_modes.counts(svc, tasks) == service_modes.Counts(0, 0, completed=2, completions=2)


def test_a_failed_task_is_replaced_in_its_slot_after_the_delay() -> None:
    svc = replicated_job(1, 1, restart_delay=3)
    failed = make_task(svc, 1, state=states.FAILED)
    p = jobs.plan_replicated(svc, [failed], NODES, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.slot, new.desired_state) == (1, states.READY)
    assert new.start_after.seconds == int(NOW + 3)
    assert desired_changes(p.groups) == {failed.id: states.SHUTDOWN}
    assert p.wake_at == NOW + 3


def test_a_failure_under_restart_none_stays_failed_and_takes_no_room() -> None:
    svc = replicated_job(3, 1, restart=NONE)
    p = jobs.plan_replicated(svc, [make_task(svc, 1, state=states.FAILED)], NODES, NOW)
    assert [t.slot for t in created_tasks(p.groups)] == [2]


def test_a_task_on_a_lost_node_is_replaced_at_once() -> None:
    svc = replicated_job(2, 2)
    lost = make_task(svc, 1, node="n1")
    nodes = {**NODES, "n1": make_node("n1", state=DOWN)}
    p = jobs.plan_replicated(svc, [lost, make_task(svc, 2, node="n2")], nodes, NOW)
    (new,) = created_tasks(p.groups)
    assert (new.slot, new.desired_state, new.node_id) == (1, states.RUNNING, "")
    assert desired_changes(p.groups) == {lost.id: states.SHUTDOWN}


def test_a_new_iteration_shuts_the_old_one_and_runs_again() -> None:
    svc = replicated_job(2, 2, version=2)
    old = [make_task(svc, 1, version=1, state=states.COMPLETE), make_task(svc, 2, version=1)]
    p = jobs.plan_replicated(svc, old, NODES, NOW)
    assert desired_changes(p.groups) == {t.id: states.SHUTDOWN for t in old}
    assert sorted(t.slot for t in created_tasks(p.groups)) == [1, 2]
    assert all(t.spec_version == 2 for t in created_tasks(p.groups))


def test_fewer_completions_remove_the_extra_slots() -> None:
    svc = replicated_job(1, 1)
    extra = make_task(svc, 2)
    p = jobs.plan_replicated(svc, [make_task(svc, 1, state=states.COMPLETE), extra], NODES, NOW)
    assert desired_changes(p.groups) == {extra.id: states.REMOVE}


def test_job_counts_show_running_and_completions() -> None:
    svc = replicated_job(4, 2)
    tasks = [make_task(svc, 1, state=states.COMPLETE), make_task(svc, 2), make_task(svc, 3, state=states.STARTING)]
    assert service_modes.counts(svc, tasks) == service_modes.Counts(1, 2, completed=1, completions=4)


# ---- global jobs ------------------------------------------------------------------


def test_a_global_job_runs_once_on_every_eligible_node() -> None:
    svc = global_job()
    new = created_tasks(jobs.plan_global(svc, [], NODES, NOW).groups)
    assert sorted(t.node_id for t in new) == ["n1", "n2", "n3"]
    done = [make_task(svc, 0, node=n, state=states.COMPLETE) for n in NODES]
    assert jobs.plan_global(svc, done, NODES, NOW).groups == []
    assert service_modes.counts(svc, done) == service_modes.Counts(0, 0, completed=3, completions=3)


def test_a_node_that_joins_runs_the_global_job() -> None:
    svc = global_job()
    done = [make_task(svc, 0, node=n, state=states.COMPLETE) for n in NODES]
    p = jobs.plan_global(svc, done, {**NODES, "n4": make_node("n4")}, NOW)
    assert [t.node_id for t in created_tasks(p.groups)] == ["n4"]


def test_a_drained_node_stops_its_unfinished_global_job_and_runs_it_again_later() -> None:
    svc = global_job()
    running = make_task(svc, 0, node="n1")
    drained = {**NODES, "n1": make_node("n1", availability=DRAIN)}
    others = [make_task(svc, 0, node=n, state=states.COMPLETE) for n in ("n2", "n3")]
    p = jobs.plan_global(svc, [running, *others], drained, NOW)
    assert desired_changes(p.groups) == {running.id: states.SHUTDOWN}
    assert created_tasks(p.groups) == []
    running.desired_state = states.SHUTDOWN
    running.status.state = states.SHUTDOWN
    p = jobs.plan_global(svc, [running, *others], NODES, NOW)
    assert [t.node_id for t in created_tasks(p.groups)] == ["n1"]


def test_a_forced_global_job_runs_again_everywhere() -> None:
    svc = global_job(version=3)
    done = [make_task(svc, 0, node=n, state=states.COMPLETE, version=2) for n in NODES]
    p = jobs.plan_global(svc, done, NODES, NOW)
    assert sorted(t.node_id for t in created_tasks(p.groups)) == ["n1", "n2", "n3"]
    assert desired_changes(p.groups) == {t.id: states.SHUTDOWN for t in done}
