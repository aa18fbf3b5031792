"""The replicated orchestrator: N slots per replicated service, each with one up-to-date task.

`plan` is pure: given a service, its tasks and the nodes, it returns groups of
writes (each group atomic: a stopped task and its replacement land together or
not at all) and when it wants to be woken for a delayed start. The loop
re-plans every service touched by a change, debounced, and writes all groups
in bounded transactions. A plan that lost a race is simply re-planned when the
change that beat it arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics
from shoal.controller.orchestrator import restart, slots, update
from shoal.controller.orchestrator.tasks import new_task, set_desired
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Plan:
    """Writes for one service, and the wall-clock time it wants another look (None: no timer)."""

    groups: list[list[w.Op]] = dataclasses.field(default_factory=list)
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def plan(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> Plan:
    """What to write so that `service`'s slots converge on its spec."""
    p = Plan()
    by_slot = slots.group(tasks)
    current: dict[int, objects_pb2.Task] = {}
    for slot, slot_tasks in by_slot.items():
        runnable = sorted(
            (t for t in slot_tasks if t.desired_state <= states.RUNNING), key=lambda t: seconds(t.meta.created_at)
        )
        if runnable:
            current[slot] = runnable[-1]
            # Two runnable tasks in a slot should not happen; keep the newest.
            p.groups.extend([set_desired(t, states.SHUTDOWN)] for t in runnable[:-1])

    replicas = max(0, service.spec.replicated.replicas)
    if len(current) > replicas:
        for slot in slots.scale_down_victims(current, len(current) - replicas):
            p.groups.append([set_desired(t, states.REMOVE) for t in by_slot[slot]])
            del current[slot]

    touched = set()
    for slot, cur in current.items():
        if _replace_or_restart(p, service, slot, cur, by_slot[slot], nodes, now):
            touched.add(slot)

    missing = replicas - len(current)
    if missing > 0:
        p.groups.extend([new_task(service, n, now=now)] for n in slots.free_slots(current, missing))

    progress = update.progress(service, current, by_slot)
    for slot in update.slots_to_replace(service, progress, now):
        if slot not in touched:
            cur = current[slot]
            p.groups.append(
                [
                    set_desired(cur, states.SHUTDOWN),
                    new_task(service, slot, now=now, desired=states.READY, start_after=now),
                ]
            )
    if progress.not_before > now and progress.dirty:
        p.wake(progress.not_before)
    status = update.status_change(service, progress, now)
    if status is not None:
        new = objects_pb2.Service()
        new.CopyFrom(service)
        new.update_status.CopyFrom(status)
        p.groups.append([w.put(new)])
    return p


def _replace_or_restart(
    p: Plan,
    service: objects_pb2.Service,
    slot: int,
    cur: objects_pb2.Task,
    slot_tasks: list[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> bool:
    """Handle a lost node, an ended task or a due delayed start; True if the slot was acted on."""
    state = cur.status.state
    assigned = bool(cur.node_id) and state >= states.ASSIGNED
    if assigned and state < states.COMPLETE and not slots.node_usable(nodes.get(cur.node_id)):
        p.groups.append([set_desired(cur, states.SHUTDOWN), new_task(service, slot, now=now)])
        return True
    if state >= states.COMPLETE:
        if not restart.should_restart(cur, slot_tasks, now):
            return False
        due = now + restart.delay(cur)
        p.groups.append(
            [set_desired(cur, states.SHUTDOWN), new_task(service, slot, now=now, desired=states.READY, start_after=due)]
        )
        p.wake(due)
        return True
    if cur.desired_state == states.READY:
        due = seconds(cur.start_after)
        if due > now:
            p.wake(due)
        elif not any(slots.may_be_alive(t, nodes) for t in slot_tasks if t is not cur):
            p.groups.append([set_desired(cur, states.RUNNING)])
        return True
    return False


def plan_orphans(tasks: Sequence[objects_pb2.Task]) -> Plan:
    """Tasks of a deleted service: every one is to be removed."""
    return Plan(groups=[[set_desired(t, states.REMOVE)] for t in tasks if t.desired_state < states.REMOVE])


class ReplicatedOrchestrator:
    """The loop: re-plan the services that changes touch, write the plans."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._timers: dict[str, float] = {}

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = set(self._cache.services) | set(self._cache.tasks_by_service)
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            dirty |= {sid for sid, at in self._timers.items() if at <= now}
            if dirty:
                await self._reconcile(dirty)
                dirty = set()
            wake_at = min(self._timers.values(), default=None)
            loop_wake = None if wake_at is None else loop.time() + (wake_at - time.time())
            for batch in await loops.gather(sub, self._settings, loop_wake):
                for change in batch.changes:
                    dirty |= self._affected(change)

    def _affected(self, change: Change) -> set[str]:
        if change.kind is Kind.TASK:
            return {change.obj.service_id}  # type: ignore[attr-defined]
        if change.kind is Kind.SERVICE:
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
                return {t.service_id for t in self._cache.tasks_of_node(change.obj.id)}  # type: ignore[attr-defined]
        return set()

    async def _reconcile(self, service_ids: set[str]) -> None:
        start = time.perf_counter()
        now = time.time()
        groups: list[list[w.Op]] = []
        for sid in service_ids:
            self._timers.pop(sid, None)
            service = self._cache.services.get(sid)
            tasks = self._cache.tasks_of_service(sid)
            if service is None:
                p = plan_orphans(tasks)
            elif service.spec.WhichOneof("mode") == "replicated":
                p = plan(service, tasks, self._cache.nodes, now)
            else:
                continue
            groups.extend(p.groups)
            if p.wake_at is not None:
                self._timers[sid] = p.wake_at
        metrics.LOOP_DURATION.labels("orchestrator").observe(time.perf_counter() - start)
        if groups:
            landed = await self._writer.commit_groups(groups)
            log.debug("orchestrator wrote %d of %d groups", sum(landed), len(groups))
