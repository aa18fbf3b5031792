"""The scheduler: the filter pipeline, node accounting, and one placing pass over a fake cache."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Container

import pytest
from controller_fakes import (
    DOWN,
    DRAIN,
    GIB,
    MIB,
    PAUSE,
    FakeCache,
    RecordingWriter,
    make_node,
    make_service,
    make_task,
)

from shoal import errors, states
from shoal.controller.scheduler import filters, nodeinfo, scheduler, spread
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.v1 import objects_pb2


def info_of(node: objects_pb2.Node, *tasks: objects_pb2.Task) -> nodeinfo.NodeInfo:
    info = nodeinfo.NodeInfo(node)
    for t in tasks:
        info.add(t)
    return info


def pending(svc: objects_pb2.Service, count: int, *, first_slot: int = 1) -> list[objects_pb2.Task]:
    return [make_task(svc, s, node="", state=states.PENDING) for s in range(first_slot, first_slot + count)]


async def one_pass(nodes: list[objects_pb2.Node], tasks: list[objects_pb2.Task]) -> list[w.Op]:
    """Run the scheduler until it writes its first batch; return that batch."""
    writer = RecordingWriter()
    sched = scheduler.Scheduler(cache=FakeCache(nodes, tasks), writer=writer, settings=LoopSettings())  # type: ignore[arg-type]
    run = asyncio.create_task(sched.run())
    written = asyncio.create_task(writer.written.wait())
    try:
        async with asyncio.timeout(5):
            await asyncio.wait({run, written}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            run.result()  # the loop crashed before writing: raise its error here
    finally:
        for t in (run, written):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
    return writer.batches[0]


def placements(ops: list[w.Op]) -> collections.Counter[str]:
    return collections.Counter(op.obj.node_id for op in ops if op.obj.status.state == states.ASSIGNED)  # type: ignore[attr-defined]


# ---- filters ---------------------------------------------------------------------


def test_the_pipeline_accepts_a_ready_active_node_that_fits() -> None:
    svc = make_service(memory=512 * MIB, constraints=["node.labels.zone==a"])
    pipe = filters.Pipeline(svc.spec.task)
    node = make_node("n1", memory=GIB, labels={"zone": "a"})
    assert pipe.eligible([info_of(node)]) == [info_of(node)]
    assert [f.name for f in pipe.filters] == ["ready", "availability", "memory", "constraint"]


def test_the_explanation_names_each_filter_with_its_node_count() -> None:
    svc = make_service(constraints=["node.labels.zone==a"])
    pipe = filters.Pipeline(svc.spec.task)
    nodes = [make_node("n1", state=DOWN), make_node("n2", state=DOWN), make_node("n3", labels={"zone": "b"})]
    assert pipe.eligible(info_of(n) for n in nodes) == []
    assert pipe.explain(3) == "no suitable node (2 nodes not ready; 1 node constraint node.labels.zone==a not met)"


def test_the_first_refusing_filter_is_the_one_blamed() -> None:
    svc = make_service(constraints=["node.labels.zone==a"])
    pipe = filters.Pipeline(svc.spec.task)
    pipe.eligible([info_of(make_node("n1", state=DOWN, labels={"zone": "b"}))])
    assert pipe.refused == {"not ready": 1}


@pytest.mark.parametrize("availability", [PAUSE, DRAIN])
def test_paused_and_drained_nodes_take_no_new_tasks(availability: int) -> None:
    pipe = filters.Pipeline(make_service().spec.task)
    assert pipe.eligible([info_of(make_node("n1", availability=availability))]) == []
    assert pipe.explain(1) == "no suitable node (1 node not available for new tasks (paused or drained))"


def test_reservations_count_what_the_node_already_holds() -> None:
    svc = make_service(memory=512 * MIB)
    spec = svc.spec.task
    spec.resources.reservations.nano_cpus = 2_000_000_000
    pipe = filters.Pipeline(spec)
    big = make_node("n1", cpus=4_000_000_000, memory=768 * MIB)
    busy = info_of(big, make_task(svc, 1, node="n1", state=states.RUNNING))
    small = info_of(make_node("n2", cpus=1_000_000_000, memory=GIB))
    assert pipe.eligible([info_of(big)]) != []
    assert pipe.eligible([busy, small]) == []
    assert pipe.explain(2) == (
        "no suitable node (1 node insufficient memory; 1 node insufficient CPU; the task reserves 2 CPU and 512MiB)"
    )


def test_an_empty_cluster_is_explained() -> None:
    assert filters.Pipeline(make_service().spec.task).explain(0) == "no suitable node (the cluster has no nodes)"


def test_a_bad_constraint_is_an_invalid_argument() -> None:
    svc = make_service(constraints=["zone==a"])
    with pytest.raises(errors.InvalidArgument):
        filters.Pipeline(svc.spec.task)


# ---- node accounting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "desired", "node", "holds", "spreads"),
    [
        (states.PENDING, states.RUNNING, "", False, False),
        (states.ASSIGNED, states.RUNNING, "n1", True, True),
        (states.RUNNING, states.RUNNING, "n1", True, True),
        (states.PREPARING, states.READY, "n1", True, True),
        (states.RUNNING, states.SHUTDOWN, "n1", True, False),
        (states.RUNNING, states.REMOVE, "n1", True, False),
        (states.COMPLETE, states.RUNNING, "n1", False, False),
        (states.FAILED, states.SHUTDOWN, "n1", False, False),
    ],
)
def test_what_a_task_counts_for(state: int, desired: int, node: str, holds: bool, spreads: bool) -> None:
    task = make_task(make_service(), 1, node=node, state=state, desired=desired)
    assert nodeinfo.holds_resources(task) is holds
    assert nodeinfo.counts_for_spread(task) is spreads


def test_node_info_adds_and_removes_tasks() -> None:
    svc = make_service(memory=256 * MIB)
    svc.spec.task.resources.reservations.nano_cpus = 500_000_000
    info = nodeinfo.NodeInfo(make_node("n1", cpus=2_000_000_000, memory=GIB))
    running = make_task(svc, 1)
    stopping = make_task(svc, 2, desired=states.SHUTDOWN)
    info.add(running)
    info.add(stopping)
    assert (info.tasks, info.by_service[svc.id]) == (1, 1)
    assert (info.free_cpu, info.free_memory) == (1_000_000_000, 512 * MIB)
    info.remove(running)
    info.remove(stopping)
    assert (info.tasks, info.reserved_cpu, info.reserved_memory) == (0, 0, 0)
    assert svc.id not in info.by_service


# ---- placing ---------------------------------------------------------------------


async def test_six_tasks_spread_two_per_node_over_three_equal_nodes() -> None:
    svc = make_service()
    tasks = pending(svc, 6)
    ops = await one_pass([make_node("n1"), make_node("n2"), make_node("n3")], tasks)
    assert placements(ops) == {"n1": 2, "n2": 2, "n3": 2}
    for op in ops:
        assert isinstance(op, w.Put) and op.expect == 11  # the version read: a compare, not a creation
        assert op.obj.status.state == states.ASSIGNED  # type: ignore[attr-defined]
        assert op.obj.desired_state == states.RUNNING  # type: ignore[attr-defined]


async def test_a_pass_writes_each_nodes_tasks_side_by_side() -> None:
    """Spread placement deals the tasks of a service round the nodes; the write groups them by node
    again, so that a node's new tasks land in one transaction and reach its agent in one message."""
    svc = make_service()
    tasks = [
        make_task(svc, slot, node="", state=states.PENDING, service_id=sid, task_id=f"{sid}{slot}")
        for sid in ("a", "b")
        for slot in range(1, 7)
    ]
    ops = await one_pass([make_node("n1"), make_node("n2"), make_node("n3")], tasks)
    nodes = [op.obj.node_id for op in ops]  # type: ignore[union-attr]
    assert nodes == ["n1"] * 4 + ["n2"] * 4 + ["n3"] * 4


async def test_a_node_already_running_the_service_gets_fewer() -> None:
    svc = make_service()
    existing = [make_task(svc, s, node="n1") for s in (1, 2)]
    ops = await one_pass(
        [make_node("n1"), make_node("n2"), make_node("n3")], [*existing, *pending(svc, 4, first_slot=3)]
    )
    assert placements(ops) == {"n2": 2, "n3": 2}


async def test_ties_on_the_service_go_to_the_node_with_fewer_tasks_overall() -> None:
    svc = make_service()
    other = [make_task(svc, s, node="n1", service_id="other") for s in (1, 2)]
    ops = await one_pass([make_node("n1"), make_node("n2")], [*other, *pending(svc, 1)])
    assert placements(ops) == {"n2": 1}


async def test_tasks_stopping_on_a_node_do_not_count_toward_spread() -> None:
    svc = make_service()
    stopping = [make_task(svc, s, node="n1", desired=states.SHUTDOWN) for s in (1, 2)]
    ops = await one_pass([make_node("n1"), make_node("n2")], [*stopping, *pending(svc, 2, first_slot=3)])
    assert placements(ops) == {"n1": 1, "n2": 1}


async def test_only_eligible_nodes_receive_tasks() -> None:
    svc = make_service(constraints=["node.labels.zone==a"])
    nodes = [make_node("n1", labels={"zone": "a"}), make_node("n2", labels={"zone": "b"}), make_node("n3", state=DOWN)]
    ops = await one_pass(nodes, pending(svc, 3))
    assert placements(ops) == {"n1": 3}


# ---- sampling many candidates ------------------------------------------------------

MANY = spread.SAMPLE_ABOVE + spread.SAMPLE_MIN


def loaded_infos(
    svc: objects_pb2.Service, count: int, *, service_on: Container[int] = (), other_on: Container[int] = ()
) -> list[nodeinfo.NodeInfo]:
    """`count` nodes; a task of `svc` on each node in `service_on`, one of another service on each in `other_on`."""
    infos = []
    for i in range(count):
        tasks = [make_task(svc, i + 1, node=f"n{i}")] if i in service_on else []
        tasks += [make_task(svc, i + 1, node=f"n{i}", service_id="other")] if i in other_on else []
        infos.append(info_of(make_node(f"n{i}"), *tasks))
    return infos


def test_a_small_group_among_many_nodes_is_placed_within_a_rotating_sample() -> None:
    svc = make_service()
    # Every node but the last carries another service's task: over all candidates, the last is the least loaded.
    infos = loaded_infos(svc, MANY, other_on=range(MANY - 1))
    chooser = spread.chooser(svc.id, infos, [], infos, wanted=1, start=0)
    assert chooser.next() is infos[0]  # the sample (from node 0) holds nodes with one task each only
    chooser = spread.chooser(svc.id, infos, [], infos, wanted=1, start=MANY - 50)
    assert chooser.next() is infos[-1]
    # Without a group size (or with few candidates) every candidate is weighed.
    assert spread.chooser(svc.id, infos, [], infos).next() is infos[-1]


#: Sample starts: at the front, and near the end so that the sample goes round to the front.
STARTS = [0, MANY - spread.SAMPLE_MIN // 2]


def _sampled(start: int) -> range:
    return range(start, start + spread.SAMPLE_MIN)


async def test_the_next_group_samples_where_the_previous_sample_ended() -> None:
    one, two = make_service(), make_service()
    two.id = "svc-2"
    nodes = [make_node(f"n{i:04d}") for i in range(MANY)]
    ops = await one_pass(nodes, [*pending(one, 1), *pending(two, 1, first_slot=2)])
    # Equal empty nodes: each group takes the lowest ID of its own sample.
    assert placements(ops) == {"n0000": 1, f"n{spread.SAMPLE_MIN:04d}": 1}


@pytest.mark.parametrize("start", STARTS)
def test_spreading_by_service_stays_exact_when_the_sample_holds_the_service_everywhere(start: int) -> None:
    svc = make_service()
    # The service runs on exactly the nodes the sample holds.
    on = {i % MANY for i in _sampled(start)}
    infos = loaded_infos(svc, MANY, service_on=on)
    chooser = spread.chooser(svc.id, infos, [], infos, wanted=1, start=start)
    chosen = chooser.next()
    assert chosen is not None and chosen.by_service.get(svc.id, 0) == 0


@pytest.mark.parametrize("start", STARTS)
def test_a_sample_that_fills_up_gives_way_to_every_candidate(start: int) -> None:
    svc = make_service()
    infos = loaded_infos(svc, MANY)
    chooser = spread.chooser(svc.id, infos, [], infos, wanted=1, start=start)
    chosen = []
    while (info := chooser.next()) is not None:
        chosen.append(info.id)
        chooser.placed(info, still_fits=False)
    # Every candidate once: the sample first, then the rest, none twice and none left out.
    assert sorted(chosen) == sorted(i.id for i in infos)
    assert {f"n{i % MANY}" for i in _sampled(start)} == set(chosen[: spread.SAMPLE_MIN])


async def test_running_out_of_memory_mid_pass_explains_insufficient_memory() -> None:
    svc = make_service(memory=512 * MIB)
    tasks = pending(svc, 5)
    ops = await one_pass([make_node("n1", memory=GIB), make_node("n2", memory=GIB)], tasks)
    assert placements(ops) == {"n1": 2, "n2": 2}
    (unplaced,) = [op.obj for op in ops if op.obj.status.state == states.PENDING]  # type: ignore[attr-defined]
    assert unplaced.id == tasks[4].id  # lowest slots first
    assert unplaced.node_id == ""
    assert unplaced.status.err == "no suitable node (2 nodes insufficient memory; the task reserves 512MiB)"


async def test_a_task_that_fits_nowhere_keeps_pending_with_the_reason() -> None:
    svc = make_service(constraints=["node.labels.zone==a"])
    ops = await one_pass([make_node("n1", state=DOWN), make_node("n2", labels={"zone": "b"})], pending(svc, 1))
    (op,) = ops
    assert isinstance(op, w.Put)
    assert op.obj.status.state == states.PENDING  # type: ignore[attr-defined]
    assert op.obj.status.err == (  # type: ignore[attr-defined]
        "no suitable node (1 node not ready; 1 node constraint node.labels.zone==a not met)"
    )


@pytest.mark.parametrize(
    ("state", "desired", "node", "spread", "memory"),
    [
        (states.RUNNING, states.RUNNING, "n1", 1, MIB),  # a report on the way up: counted as before
        (states.COMPLETE, states.RUNNING, "n1", 0, 0),  # finished: the node is free of it
        (states.RUNNING, states.SHUTDOWN, "n1", 0, MIB),  # told to stop: not spread, still holding memory
        (states.RUNNING, states.RUNNING, "n2", 0, 0),  # on another node now
    ],
)
def test_the_view_follows_a_task_change(state: int, desired: int, node: str, spread: int, memory: int) -> None:
    svc = make_service(memory=MIB)
    assigned = make_task(svc, 1, node="n1", state=states.ASSIGNED)
    sched = scheduler.Scheduler(cache=FakeCache([], []), writer=RecordingWriter(), settings=LoopSettings())  # type: ignore[arg-type]
    for n in ("n1", "n2"):
        sched._add_node(make_node(n))
    sched._apply_task(None, assigned)
    changed = make_task(svc, 1, node=node, state=state, desired=desired)
    sched._apply_task(assigned, changed)
    n1 = sched._nodes["n1"]
    assert (n1.tasks, n1.by_service[svc.id], n1.reserved_memory) == (spread, spread, memory)


class LandingWriter:
    """Lands every write but those of the tasks in `refused` (a conflict), at once."""

    def __init__(self, refused: Container[str]) -> None:
        self.refused = refused

    async def commit_each(self, ops: list[w.Op]) -> list[bool]:
        return [op.obj.id not in self.refused for op in ops]  # type: ignore[union-attr]


async def test_a_landed_placement_stays_counted_until_its_event_and_is_counted_once() -> None:
    """A pass's placements count on their nodes as they are made. Those that landed stay counted after the
    pass, and the store's events for them (the write, then an agent's report) leave the count as it is;
    the one that lost a race is taken back, and waits for the next pass."""
    svc = make_service(memory=MIB)
    tasks = pending(svc, 4)
    sched = scheduler.Scheduler(
        cache=FakeCache([], []), writer=LandingWriter({tasks[0].id}), settings=LoopSettings()  # type: ignore[arg-type]
    )
    sched._add_node(make_node("n1", memory=GIB))
    for t in tasks:
        sched._apply_task(None, t)
    await sched._pass()
    n1 = sched._nodes["n1"]
    counts = (n1.tasks, n1.by_service[svc.id], n1.reserved_memory)
    assert counts == (3, 3, 3 * MIB)
    for t in tasks[1:]:
        stored = make_task(svc, t.slot, node="n1", state=states.ASSIGNED, task_id=t.id)
        stored.meta.version = 12
        sched._apply_task(t, stored)
        running = make_task(svc, t.slot, node="n1", state=states.RUNNING, task_id=t.id)
        sched._apply_task(stored, running)
    assert (n1.tasks, n1.by_service[svc.id], n1.reserved_memory) == counts
    assert set(sched._pending) == {tasks[0].id}
    assert not sched._held


async def test_a_held_placement_whose_task_is_deleted_frees_the_node() -> None:
    svc = make_service(memory=MIB)
    (task,) = pending(svc, 1)
    sched = scheduler.Scheduler(cache=FakeCache([], []), writer=LandingWriter(()), settings=LoopSettings())  # type: ignore[arg-type]
    sched._add_node(make_node("n1", memory=GIB))
    sched._apply_task(None, task)
    await sched._pass()
    # The write and the deletion came in one change (a re-list after compaction coalesces them).
    sched._apply_task(task, None)
    n1 = sched._nodes["n1"]
    assert (n1.tasks, n1.reserved_memory, sched._pending, sched._held) == (0, 0, {}, {})
