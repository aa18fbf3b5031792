"""The replicated orchestrator's loop: re-plan the services (or slots) that changes touch, write the plans.

The plans come from replicas.py (`planning` for a whole service, `plan_slots`
for some slots of a steady one); changes.py says which changes need none. The
loop re-plans every service touched by a change, debounced, and writes all
groups in bounded transactions. A plan that lost a race is simply re-planned
when the change that beat it arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import NoReturn, cast

from shoal import states
from shoal.controller import loops, metrics
from shoal.controller.orchestrator import slots
from shoal.controller.orchestrator.changes import labels_only, status_progress, steady
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.orchestrator.replicas import plan_orphans, plan_slots, planning
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2, types_pb2

log = logging.getLogger(__name__)


#: Operations written while a pass goes on, once this many are planned.
WRITE_AHEAD = 2000


@dataclasses.dataclass
class _Batch:
    """Groups of writes and the service each belongs to."""

    groups: list[list[w.Op]] = dataclasses.field(default_factory=list)
    owners: list[str] = dataclasses.field(default_factory=list)
    ops: int = 0

    def add(self, sid: str, groups: list[list[w.Op]]) -> None:
        self.groups.extend(groups)
        self.owners.extend(sid for _ in groups)
        self.ops += sum(len(g) for g in groups)


class ReplicatedOrchestrator:
    """The loop: re-plan the services that changes touch, write the plans.

    A service is planned whole (`plan`) when it, a node under it or a timer
    changed, or when one of its tasks was created or deleted, or was told to
    run or stop. The changes the agents and the scheduler make to tasks of a
    *settled* service (its last whole plan landed in full, and no rollout or
    automatic rebalance is under way) only concern their own slots, and only
    those are planned again (`plan_slots`): at a thousand tasks a service,
    that is the difference between planning one slot and planning a thousand
    for every report.
    """

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._timers: dict[str, float] = {}
        #: Services whose last whole plan landed in full: their slots may be planned alone.
        self._settled: set[str] = set()

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = set(self._cache.services) | set(self._cache.tasks_by_service)
        dirty_slots: dict[str, set[int]] = {}
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            dirty |= {sid for sid, at in self._timers.items() if at <= now}
            if dirty or dirty_slots:
                await self._reconcile(dirty, dirty_slots)
                dirty, dirty_slots = set(), {}
            wake_at = min(self._timers.values(), default=None)
            loop_wake = None if wake_at is None else loop.time() + (wake_at - time.time())
            for batch in await loops.gather(sub, self._settings, loop_wake):
                for change in batch.changes:
                    slot = self._slot_only(change)
                    if slot is not None and self._nothing_to_plan(change.new):  # type: ignore[arg-type]
                        continue
                    if slot is not None:
                        dirty_slots.setdefault(change.obj.service_id, set()).add(slot)  # type: ignore[attr-defined]
                    else:
                        dirty |= self._affected(change)

    def _slot_only(self, change: Change) -> int | None:
        """The slot, if this task change concerns only its slot of a settled service; else None.

        A task of a settled service is created by this orchestrator's own plans (the
        leadership fence keeps out anyone else's), in the slot that plan meant it for.
        """
        if change.kind is not Kind.TASK or change.new is None:
            return None
        old, new = cast(objects_pb2.Task | None, change.old), cast(objects_pb2.Task, change.new)
        if (
            not new.slot
            or new.service_id not in self._settled
            or (old is not None and old.desired_state != new.desired_state)
        ):
            return None
        return new.slot

    def _nothing_to_plan(self, task: objects_pb2.Task) -> bool:
        """True if planning this task's slot could only find it on its way: the slot's only task, of the
        service's spec version, meant to run, and either waiting for a node or placed (not ended) on a
        node that is up and not drained.

        `plan_slots` would write nothing for it (`_replace_or_restart` acts on an ended task, a lost or
        drained node or a delayed start; `moves.view` on older tasks in the slot), nor send the service
        back to `plan`. Anything that would change that (a node going down or drained, a task added to
        the slot, the task ending, a new spec) is a change of its own, and plans the slot or the service
        then. The creations and status reports of a thousand tasks a second do not each plan a slot.
        """
        state = task.status.state
        if task.desired_state != states.RUNNING or not states.PENDING <= state < states.COMPLETE:
            return False
        if len(self._cache.tasks_by_slot.get((task.service_id, task.slot), ())) != 1:
            return False
        service = self._cache.services.get(task.service_id)
        if service is None or task.spec_version != service.spec_version:
            return False
        return state == states.PENDING or slots.node_usable(self._cache.nodes.get(task.node_id))

    def _affected(self, change: Change) -> set[str]:
        if change.kind is Kind.TASK:
            if status_progress(change.old, change.new):  # type: ignore[arg-type]
                return set()
            return {change.obj.service_id}  # type: ignore[attr-defined]
        if change.kind is Kind.SERVICE:
            new = change.new
            # steady() first: it is a few field reads, labels_only copies both services.
            if new is not None and steady(new, self._cache.cluster) and labels_only(change.old, new):  # type: ignore[arg-type]
                return set()
            return {change.obj.id}  # type: ignore[attr-defined]
        if change.kind is Kind.NODE:
            old, new = change.old, change.new
            if (
                new is None
                or old is None
                or (
                    (old.status.state, old.spec.availability) != (new.status.state, new.spec.availability)  # type: ignore[attr-defined]
                )
            ):
                on_node = {t.service_id for t in self._cache.tasks_of_node(change.obj.id)}  # type: ignore[attr-defined]
                return on_node | self._to_rebalance(new)  # type: ignore[arg-type]
        if change.kind is Kind.CLUSTER:
            old_auto = change.old is not None and change.old.auto_rebalance  # type: ignore[attr-defined]
            if change.new is not None and change.new.auto_rebalance and not old_auto:  # type: ignore[attr-defined]
                return set(self._cache.services)
        return set()

    def _to_rebalance(self, node: objects_pb2.Node | None) -> set[str]:
        """Every service, when a node became ready or active and the cluster rebalances automatically."""
        cluster = self._cache.cluster
        if node is None or cluster is None or not cluster.auto_rebalance:
            return set()
        if node.status.state != slots.READY or node.spec.availability != types_pb2.NodeSpec.ACTIVE:
            return set()
        return set(self._cache.services)

    async def _reconcile(self, service_ids: set[str], dirty_slots: Mapping[str, set[int]]) -> None:
        start = time.perf_counter()
        now = time.time()
        cluster = self._cache.cluster
        batch = _Batch()
        writes: list[asyncio.Task[set[str]]] = []
        wholes = set(service_ids)
        todo: list[tuple[str, set[int] | None]] = [(sid, None) for sid in service_ids]
        todo += [(sid, slot_set) for sid, slot_set in dirty_slots.items() if sid not in service_ids]
        slicer = loops.Slicer()
        try:
            for sid, slot_set in todo:
                await slicer.tick()
                p = None
                if slot_set is None:
                    self._timers.pop(sid, None)
                else:
                    service = self._cache.services.get(sid)
                    if service is not None and sid in self._settled and steady(service, cluster):
                        by_slot = {n: self._cache.tasks_of_slot(sid, n) for n in slot_set}
                        p = plan_slots(service, by_slot, self._cache.nodes, now)
                if p is None:
                    self._settled.discard(sid)
                    wholes.add(sid)
                    p = await self._plan_whole(sid, now, slicer)
                if p is not None:
                    batch.add(sid, p.groups)
                    self._wake(sid, p)
                if batch.ops >= WRITE_AHEAD:
                    # Write while planning the rest: the scheduler starts on the first services'
                    # tasks, and the event loop (leader lease, heartbeats) gets a turn.
                    writes.append(asyncio.create_task(self._write(batch)))
                    batch = _Batch()
                    await asyncio.sleep(0)
            metrics.LOOP_DURATION.labels("orchestrator").observe(time.perf_counter() - start)
            writes.append(asyncio.create_task(self._write(batch)))
            lost = set().union(*await asyncio.gather(*writes))
        finally:
            for job in writes:
                job.cancel()
        self._settled -= lost
        # A whole plan that landed in full leaves the service as its spec says: settled.
        self._settled |= {sid for sid in wholes if sid not in lost and sid in self._cache.services}

    async def _write(self, batch: _Batch) -> set[str]:
        """Write a batch of groups; the services of the groups that did not land."""
        if not batch.groups:
            return set()
        landed = await self._writer.commit_groups(batch.groups)
        log.debug("orchestrator wrote %d of %d groups", sum(landed), len(batch.groups))
        return {sid for ok, sid in zip(landed, batch.owners, strict=True) if not ok}

    def _wake(self, sid: str, p: Plan) -> None:
        if p.wake_at is not None:
            known = self._timers.get(sid)
            self._timers[sid] = p.wake_at if known is None else min(known, p.wake_at)

    async def _plan_whole(self, sid: str, now: float, slicer: loops.Slicer) -> Plan | None:
        service = self._cache.services.get(sid)
        tasks = self._cache.tasks_of_service(sid)
        if service is None:
            return plan_orphans(tasks)
        if service.spec.WhichOneof("mode") != "replicated":
            return None
        steps = planning(service, tasks, self._cache.nodes, now, self._cache.cluster)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await slicer.tick()
