"""The scheduling loop: assign PENDING tasks to nodes, in batches.

Its view (a NodeInfo per node, the PENDING tasks) is built from the cache's
snapshot and kept current by the cache's changes. A pass groups the waiting
tasks by (service, spec version) so the filters run once per group, then
places each task on the eligible node with the fewest tasks of its service,
then the fewest tasks overall, after spreading over the values of the node
labels the spec prefers (spread.py). A task created for one node (global
services) is only checked against that node. Placements made during a pass are counted on
the nodes at once, so one pass spreads. Those whose write did not land are
taken back after it; those that landed stay counted, and the store's event
for each is applied as a change from that count. A task that fits nowhere
keeps PENDING with the reason in its status, and is tried again when nodes
change or resources are freed.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics
from shoal.controller.scheduler import spread
from shoal.controller.scheduler.filters import Pipeline
from shoal.controller.scheduler.nodeinfo import NodeInfo, holds_resources
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2, types_pb2


def is_pending(task: objects_pb2.Task) -> bool:
    """True if the task waits for a node."""
    return task.status.state == states.PENDING and not task.node_id and task.desired_state <= states.RUNNING


def is_preassigned(task: objects_pb2.Task) -> bool:
    """True if the task was made for one node (a global service's) and waits to be admitted there."""
    return task.status.state == states.PENDING and bool(task.node_id) and task.desired_state <= states.RUNNING


log = logging.getLogger(__name__)

#: Decisions written while a pass goes on, once this many are made (a pass over 100,000 tasks
#: otherwise holds every write, and the event loop, until it ends). Each chunk is written grouped
#: by node: at 1,000 nodes, 10,000 decisions give a node up to ten tasks in one assignment message
#: (2,000 gave two; bench/placement.py sent 10,596 messages for 100,000 tasks instead of 40,522).
WRITE_AHEAD = 10000


class Scheduler:
    """Assigns PENDING tasks to nodes."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._nodes: dict[str, NodeInfo] = {}
        self._pending: dict[str, objects_pb2.Task] = {}
        #: Tasks that fit nowhere at the last try, with the reason's one word (for metrics);
        #: retried when capacity may have appeared.
        self._unfit: dict[str, str] = {}
        #: The nodes each set of constraints admits (ready, active, matching), until a node changes:
        #: a pass for one task of a small service need not test thousands of nodes' labels again.
        self._static: dict[tuple[str, ...], list[NodeInfo]] = {}
        #: Where the next small group's sample of nodes starts (spread.LeastLoaded), round the cluster.
        self._sample_start = 0
        #: Placements that landed, counted on their nodes as written, until the store's event for each
        #: comes: taking each count back and adding the event's copy cost two NodeInfo updates a task.
        self._held: dict[str, objects_pb2.Task] = {}

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        for node in self._cache.nodes.values():
            self._add_node(node)
        for task in self._cache.tasks.values():
            self._apply_task(None, task)
        while True:
            if len(self._unfit) < len(self._pending):
                await self._pass()
            else:
                # Unfit tasks may have been scheduled elsewhere or removed without a pass.
                metrics.set_unschedulable(collections.Counter(self._unfit.values()))
            slicer = loops.Slicer()
            for batch in await loops.gather(sub, self._settings):
                for change in batch.changes:
                    self._apply(change)
                    await slicer.tick()

    # ---- keeping the view -----------------------------------------------------

    def _add_node(self, node: objects_pb2.Node) -> None:
        info = NodeInfo(node)
        for task in self._cache.tasks_of_node(node.id):
            info.add(task)
        self._nodes[node.id] = info
        self._static.clear()

    def _apply(self, change: Change) -> None:
        if change.kind is Kind.TASK:
            self._apply_task(change.old, change.new)  # type: ignore[arg-type]
        elif change.kind is Kind.NODE:
            if change.new is None:
                self._nodes.pop(change.old.id, None)  # type: ignore[union-attr]
            elif change.old is None or change.old.id not in self._nodes:  # type: ignore[attr-defined]
                self._add_node(change.new)  # type: ignore[arg-type]
            else:
                self._nodes[change.new.id].set_node(change.new)  # type: ignore[attr-defined,arg-type]
            self._static.clear()
            self._unfit.clear()

    def _apply_task(self, old: objects_pb2.Task | None, new: objects_pb2.Task | None) -> None:
        task_id = (new or old).id  # type: ignore[union-attr]
        held = self._held.pop(task_id, None)
        if held is not None:
            # The event of this loop's own placement (a write that landed compared the version the
            # pass read, so nothing came between): the view counts the task as written, not as `old`.
            old = held
            self._pending.pop(task_id, None)
            self._unfit.pop(task_id, None)
        if old is not None and new is not None and _counts_alike(old, new):
            # Most changes are an agent's reports on a task it runs: nothing the view holds moves.
            return
        if old is not None and old.node_id in self._nodes:
            self._nodes[old.node_id].remove(old)
            if holds_resources(old) and (new is None or not holds_resources(new)):
                self._unfit.clear()  # capacity was freed
        if new is not None and new.node_id in self._nodes:
            self._nodes[new.node_id].add(new)
        if new is not None and (is_pending(new) or is_preassigned(new)):
            self._pending[task_id] = new
            if old is not None and old.spec_version != new.spec_version:
                self._unfit.pop(task_id, None)
        else:
            self._pending.pop(task_id, None)
            self._unfit.pop(task_id, None)

    # ---- deciding -------------------------------------------------------------

    async def _pass(self) -> None:
        start = time.perf_counter()
        groups: dict[tuple[str, int], list[objects_pb2.Task]] = collections.defaultdict(list)
        preassigned: dict[tuple[str, int], list[objects_pb2.Task]] = collections.defaultdict(list)
        for task_id, task in self._pending.items():
            if task_id not in self._unfit:
                (preassigned if task.node_id else groups)[(task.service_id, task.spec_version)].append(task)
        decisions: list[tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]] = []
        explanations: list[tuple[objects_pb2.Task, str]] = []
        placed: list[tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]] = []
        writes: list[asyncio.Task[None]] = []
        now = time.time()
        slicer = loops.Slicer()
        try:
            for tasks in groups.values():
                await self._place_group(tasks, now, decisions, explanations, slicer)
                if len(decisions) + len(explanations) >= WRITE_AHEAD:
                    # Write what is decided while deciding the rest: etcd, the dispatcher and the
                    # agents start on the first thousands while the pass goes on, and the event loop
                    # (leader lease, heartbeats) gets a turn between groups.
                    writes.append(asyncio.create_task(self._write(decisions, explanations, now)))
                    placed += decisions
                    decisions, explanations = [], []
            for tasks in preassigned.values():
                self._admit_group(tasks, now, decisions, explanations)
            placed += decisions
            metrics.LOOP_DURATION.labels("scheduler").observe(time.perf_counter() - start)
            writes.append(asyncio.create_task(self._write(decisions, explanations, now)))
            await asyncio.gather(*writes)
        finally:
            for job in writes:
                job.cancel()
            await asyncio.gather(*writes, return_exceptions=True)
            # Counts of writes that did not land go; those that landed are held for their events.
            held = self._held
            for task, assigned, info in placed:
                if held.get(task.id) is not assigned:
                    info.remove(assigned)
        metrics.set_unschedulable(collections.Counter(self._unfit.values()))

    async def _place_group(
        self,
        tasks: list[objects_pb2.Task],
        now: float,
        decisions: list[tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]],
        explanations: list[tuple[objects_pb2.Task, str]],
        slicer: loops.Slicer,
    ) -> None:
        service_id = tasks[0].service_id
        pipeline = Pipeline(tasks[0].spec, service_id, overlay=bool(tasks[0].networks))
        key = pipeline.static_key()
        static = self._static.get(key)
        if static is None:
            static = self._static[key] = pipeline.statically_eligible(self._nodes.values())
        eligible = pipeline.fits_now(static)
        labels = spread.preference_labels(p.spread for p in tasks[0].spec.placement.preferences)
        chooser = spread.chooser(service_id, eligible, labels, self._nodes.values(), len(tasks), self._sample_start)
        self._sample_start += spread.sample_size(len(tasks))
        reason = ""
        for task in sorted(tasks, key=lambda t: t.slot):
            # Only this loop changes the view, and it applies changes between passes: a turn is safe here.
            await slicer.tick()
            info = chooser.next()
            if info is None:
                if not reason:
                    # Why nothing fits (now that this pass may have filled the eligible nodes): every filter's tally.
                    pipeline.eligible(self._nodes.values())
                    reason = pipeline.explain(len(self._nodes))
                self._unfit[task.id] = pipeline.reason(len(self._nodes))
                if task.status.err != reason:
                    explanations.append((task, reason))
                continue
            decisions.append((task, _assign(task, info, now), info))
            chooser.placed(info, pipeline.still_fits(info))

    def _admit_group(
        self,
        tasks: list[objects_pb2.Task],
        now: float,
        decisions: list[tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]],
        explanations: list[tuple[objects_pb2.Task, str]],
    ) -> None:
        """Tasks made for one node each: assign them there if the node fits, else say what it lacks."""
        pipeline = Pipeline(tasks[0].spec, tasks[0].service_id, overlay=bool(tasks[0].networks))
        for task in tasks:
            info = self._nodes.get(task.node_id)
            if info is None:
                continue  # the node is gone: the orchestrator removes the task
            refused = pipeline.refusal(info)
            if refused is None:
                decisions.append((task, _assign(task, info, now), info))
                continue
            reason = pipeline.explain_node(info, refused)
            self._unfit[task.id] = refused.name
            if task.status.err != reason:
                explanations.append((task, reason))

    async def _write(
        self,
        decisions: list[tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]],
        explanations: list[tuple[objects_pb2.Task, str]],
        now: float,
    ) -> None:
        # A node's decisions side by side: they land in one transaction, so the node's stream carries
        # them in one assignment message and its agent reports them together (spread placement gives
        # each node one task of every group; written in placing order, each was a message of its own).
        decisions.sort(key=_node_of)
        ops: list[w.Op] = [w.Put(assigned, task.meta.version) for task, assigned, _ in decisions]
        for task, reason in explanations:
            new = objects_pb2.Task()
            new.CopyFrom(task)
            new.status.err = reason
            new.status.message = "no suitable node"
            ops.append(w.put(new))
        if not ops:
            return
        landed = await self._writer.commit_each(ops)
        placed = 0
        for ok, (task, assigned, _) in zip(landed, decisions, strict=False):
            if ok:
                placed += 1
                self._held[task.id] = assigned
                metrics.SCHEDULING_LATENCY.observe(max(0.0, now - seconds(task.status.timestamp)))
        metrics.PLACEMENTS.inc(placed)
        if placed < len(decisions):
            log.debug("%d of %d placements lost a race; they are retried", len(decisions) - placed, len(decisions))


def _counts_alike(old: objects_pb2.Task, new: objects_pb2.Task) -> bool:
    """True if the scheduler's view counts both versions of a task the same way: the same node, spec
    and desired state, both holding resources there, and neither waiting for a node."""
    return (
        old.node_id == new.node_id
        and old.desired_state == new.desired_state
        and old.spec_version == new.spec_version
        and holds_resources(old)
        and holds_resources(new)
    )


def _node_of(decision: tuple[objects_pb2.Task, objects_pb2.Task, NodeInfo]) -> str:
    return decision[2].id


def _assigned_status(now: float) -> types_pb2.TaskStatus:
    status = types_pb2.TaskStatus(state=states.ASSIGNED, message="scheduler assigned task to node")
    status.timestamp.FromNanoseconds(int(now * 1e9))
    return status


def _assign(task: objects_pb2.Task, info: NodeInfo, now: float) -> objects_pb2.Task:
    """A copy of `task` ASSIGNED to the node, counted on it for the rest of the pass."""
    assigned = objects_pb2.Task()
    assigned.CopyFrom(task)
    assigned.node_id = info.id
    assigned.status.CopyFrom(_STATUS_OF_PASS(now))
    info.add(assigned)
    return assigned


#: One ASSIGNED status per pass (all its decisions share `now`), copied into each decision.
_STATUS_OF_PASS = functools.lru_cache(maxsize=1)(_assigned_status)
