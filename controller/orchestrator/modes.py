"""The orchestrator of the other modes: global services, replicated jobs and global jobs.

One loop, shaped like the replicated orchestrator's (STYLE H2): it re-plans
every service of these modes that a change touches, debounced, and writes the
plans' groups in bounded transactions. Node changes touch all of them, since
each of these services depends on the whole set of nodes (a node that joins
gets a task; one that goes DOWN, is drained or relabelled may lose it). Tasks
of deleted services are left to the replicated orchestrator, which removes
them whatever their mode.

"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from shoal.controller import loops, metrics
from shoal.controller.orchestrator import global_, jobs
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.service_modes import mode_of
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2

log = logging.getLogger(__name__)

Planner = Callable[[objects_pb2.Service, Sequence[objects_pb2.Task], Mapping[str, objects_pb2.Node], float], Plan]

#: The plan of each mode this loop runs, by the name of the spec's `mode` field.
PLANNERS: dict[str, Planner] = {
    "global": global_.plan,
    "replicated_job": jobs.plan_replicated,
    "global_job": jobs.plan_global,
}


class ModesOrchestrator:
    """The loop: re-plan the global and job services that changes touch, write the plans."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._timers: dict[str, float] = {}

    def _mine(self) -> set[str]:
        return {sid for sid, s in self._cache.services.items() if mode_of(s) in PLANNERS}

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = self._mine()
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
            return self._mine()
        return set()

    async def _reconcile(self, service_ids: set[str]) -> None:
        start = time.perf_counter()
        now = time.time()
        groups: list[list[w.Op]] = []
        for sid in service_ids:
            self._timers.pop(sid, None)
            service = self._cache.services.get(sid)
            planner = PLANNERS.get(mode_of(service)) if service is not None else None
            if service is None or planner is None:
                continue
            p = planner(service, self._cache.tasks_of_service(sid), self._cache.nodes, now)
            groups.extend(p.groups)
            if p.wake_at is not None:
                self._timers[sid] = p.wake_at
        metrics.LOOP_DURATION.labels("modes").observe(time.perf_counter() - start)
        if groups:
            landed = await self._writer.commit_groups(groups)
            log.debug("modes orchestrator wrote %d of %d groups", sum(landed), len(groups))
