"""Placement beyond the basic spread: tasks made for one node, max replicas per node, spread preferences."""

from __future__ import annotations

import collections

import pytest
from controller_fakes import GIB, MIB, PAUSE, make_node, make_service, make_task
from test_controller_scheduler import info_of, one_pass, pending, placements

from shoal import errors, states
from shoal.controller import constraint, validation
from shoal.controller.scheduler import filters
from shoal.v1 import objects_pb2, types_pb2


def preassigned(svc: objects_pb2.Service, node: str) -> objects_pb2.Task:
    return make_task(svc, 0, node=node, state=states.PENDING)


# ---- tasks made for one node (global services) ------------------------------------


async def test_a_task_made_for_a_node_is_assigned_there_and_nowhere_else() -> None:
    svc = make_service()
    task = preassigned(svc, "n2")
    ops = await one_pass([make_node("n1"), make_node("n2")], [task])
    (op,) = ops
    assert (op.obj.id, op.obj.node_id, op.obj.status.state) == (task.id, "n2", states.ASSIGNED)  # type: ignore[attr-defined]


async def test_a_node_that_cannot_take_its_task_is_named_in_the_reason() -> None:
    svc = make_service(memory=512 * MIB)
    hog = make_task(make_service(memory=768 * MIB), 1, node="n1", service_id="other")
    ops = await one_pass([make_node("n1", memory=GIB), make_node("n2", memory=GIB)], [hog, preassigned(svc, "n1")])
    (op,) = ops
    assert op.obj.status.state == states.PENDING and op.obj.node_id == "n1"  # type: ignore[attr-defined]
    assert op.obj.status.err == "node n1 cannot take the task: insufficient memory; the task reserves 512MiB"  # type: ignore[attr-defined]


async def test_a_paused_node_admits_no_task_made_for_it() -> None:
    svc = make_service()
    ops = await one_pass([make_node("n1", availability=PAUSE)], [preassigned(svc, "n1")])
    assert "node n1 cannot take the task: not available for new tasks" in ops[0].obj.status.err  # type: ignore[attr-defined]


# ---- max replicas per node --------------------------------------------------------


def max_per_node(limit: int, **kw: object) -> objects_pb2.Service:
    svc = make_service(**kw)  # type: ignore[arg-type]
    svc.spec.task.placement.max_replicas = limit
    return svc


async def test_max_replicas_per_node_caps_each_node_and_explains_the_rest() -> None:
    svc = max_per_node(1)
    tasks = pending(svc, 3)
    ops = await one_pass([make_node("n1"), make_node("n2")], tasks)
    assert placements(ops) == {"n1": 1, "n2": 1}
    (unplaced,) = [op.obj for op in ops if op.obj.status.state == states.PENDING]  # type: ignore[attr-defined]
    assert unplaced.status.err == (
        "no suitable node (2 nodes already running the maximum of 1 task of the service per node)"
    )


async def test_max_replicas_counts_tasks_already_running() -> None:
    svc = max_per_node(2)
    running = [make_task(svc, s, node="n1") for s in (1, 2)]
    ops = await one_pass([make_node("n1"), make_node("n2")], [*running, *pending(svc, 2, first_slot=3)])
    assert placements(ops) == {"n2": 2}


def test_the_max_replicas_filter_is_named_for_metrics() -> None:
    svc = max_per_node(1)
    pipe = filters.Pipeline(svc.spec.task, svc.id)
    full = info_of(make_node("n1"), make_task(svc, 1, node="n1"))
    assert pipe.eligible([full]) == []
    assert pipe.reason(1) == "max_replicas"


# ---- spread preferences -----------------------------------------------------------


def spread_over(*labels: str, **kw: object) -> objects_pb2.Service:
    svc = make_service(**kw)  # type: ignore[arg-type]
    for label in labels:
        svc.spec.task.placement.preferences.add(spread=f"node.labels.{label}")
    return svc


def zoned(name: str, zone: str | None, **labels: str) -> objects_pb2.Node:
    return make_node(name, labels={**({"zone": zone} if zone else {}), **labels})


async def test_tasks_spread_evenly_over_zones_not_nodes() -> None:
    # Zone a has three nodes, zone b one: plain spread would put 3 of 4 tasks in a.
    svc = spread_over("zone")
    nodes = [zoned("a1", "a"), zoned("a2", "a"), zoned("a3", "a"), zoned("b1", "b")]
    ops = await one_pass(nodes, pending(svc, 4))
    per_node = placements(ops)
    assert per_node["b1"] == 2
    assert sum(per_node[n] for n in ("a1", "a2", "a3")) == 2 and max(per_node.values()) == 2


async def test_spread_counts_tasks_already_in_a_zone() -> None:
    svc = spread_over("zone")
    nodes = [zoned("a1", "a"), zoned("b1", "b")]
    running = [make_task(svc, s, node="a1") for s in (1, 2)]
    ops = await one_pass(nodes, [*running, *pending(svc, 2, first_slot=3)])
    assert placements(ops) == {"b1": 2}


async def test_nodes_without_the_label_take_tasks_only_when_no_labelled_node_can() -> None:
    svc = spread_over("zone")
    ops = await one_pass([zoned("a1", "a"), zoned("x1", None), zoned("x2", None)], pending(svc, 3))
    assert placements(ops) == {"a1": 3}
    limited = spread_over("zone")
    limited.spec.task.placement.max_replicas = 1
    ops = await one_pass([zoned("a1", "a"), zoned("x1", None), zoned("x2", None)], pending(limited, 3))
    assert placements(ops) == {"a1": 1, "x1": 1, "x2": 1}


async def test_preferences_nest() -> None:
    svc = spread_over("zone", "rack")
    nodes = [zoned("a1", "a", rack="1"), zoned("a2", "a", rack="1"), zoned("a3", "a", rack="2"), zoned("b1", "b")]
    ops = await one_pass(nodes, pending(svc, 4))
    per_node = placements(ops)
    assert per_node["b1"] == 2 and per_node["a3"] == 1
    assert per_node["a1"] + per_node["a2"] == 1


async def test_a_full_zone_leaves_its_share_to_the_others() -> None:
    svc = spread_over("zone", memory=512 * MIB)
    nodes = [make_node("a1", labels={"zone": "a"}, memory=GIB // 2), make_node("b1", labels={"zone": "b"}, memory=GIB)]
    ops = await one_pass(nodes, pending(svc, 3))
    assert placements(ops) == collections.Counter({"a1": 1, "b1": 2})


# ---- validation of the placement fields --------------------------------------------


def test_a_spread_preference_must_name_a_node_label() -> None:
    assert constraint.parse_spread("node.labels.zone") == "zone"
    for bad in ("zone", "node.labels.", "node.hostname", "engine.labels.x", "node.labels.a b"):
        with pytest.raises(errors.InvalidArgument, match="expected node.labels.KEY"):
            constraint.parse_spread(bad)


def test_max_replicas_is_refused_for_global_modes() -> None:
    spec = make_service().spec
    spec.task.placement.max_replicas = 1
    validation.check_service_spec(spec)
    getattr(spec, "global").SetInParent()
    with pytest.raises(errors.InvalidArgument, match="not to global"):
        validation.check_service_spec(spec)
    spec.global_job.SetInParent()
    with pytest.raises(errors.InvalidArgument, match="not to global-job"):
        validation.check_service_spec(spec)


def test_a_replicated_job_defaults_to_one_completion_and_as_many_at_once_as_completions() -> None:
    spec = types_pb2.ServiceSpec(name="job")
    spec.replicated_job.SetInParent()
    validation.apply_defaults(spec)
    assert (spec.replicated_job.total_completions, spec.replicated_job.max_concurrent) == (1, 1)
    spec.replicated_job.total_completions = 6
    spec.replicated_job.max_concurrent = 0
    validation.apply_defaults(spec)
    assert spec.replicated_job.max_concurrent == 6


def test_node_role_constraints_match_workers() -> None:
    node = make_node("n1")
    assert constraint.parse("node.role==worker").matches(node)
    assert not constraint.parse("node.role==manager").matches(node)
    assert constraint.parse("node.role!=manager").matches(node)
