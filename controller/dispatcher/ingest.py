"""Task status reports from agents, coalesced by task and written in batches.

Reports land in a dict keyed by task ID (the latest wins) and are flushed
when the batch is full or its interval has passed. Each write compares the
task's version; a report that lost a race (the orchestrator changed the task
meanwhile) is re-applied to the fresh copy on the next flush. States only
move forward: a report at or below the stored state is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics
from shoal.controller.settings import DispatcherSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.v1 import objects_pb2, types_pb2

log = logging.getLogger(__name__)


class StatusIngest:
    """The buffer between agents' status reports and the store."""

    def __init__(self, cache: Cache, writer: w.Writer, settings: DispatcherSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._pending: dict[str, types_pb2.TaskStatus] = {}
        self._wake = asyncio.Event()

    def add(self, task_id: str, status: types_pb2.TaskStatus) -> None:
        """Queue a report; an older or equal state than what is known is dropped."""
        known = self._pending.get(task_id)
        task = self._cache.tasks.get(task_id)
        current = max(known.state if known else 0, task.status.state if task else 0)
        if task is None or not states.may_advance(current, status.state):
            return
        self._pending[task_id] = status
        metrics.STATUS_UPDATES.inc()
        self._wake.set()

    async def run(self) -> NoReturn:
        """Flush forever: when the batch is full, or `status_batch_interval` after the first report."""
        while True:
            await self._wake.wait()
            if len(self._pending) < self._settings.status_batch_max:
                await asyncio.sleep(self._settings.status_batch_interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every queued report once; the stale ones stay queued for the next pass."""
        pending, self._pending = self._pending, {}
        ops, reports = [], []
        slicer = loops.Slicer()
        for task_id, status in pending.items():
            await slicer.tick()
            task = self._cache.tasks.get(task_id)
            if task is None or not states.may_advance(task.status.state, status.state):
                continue
            new = objects_pb2.Task()
            new.CopyFrom(task)
            new.status.CopyFrom(status)
            ops.append(w.put(new))
            reports.append((task_id, status))
        if not ops:
            return
        landed = await self._writer.commit_each(ops, urgent=True)
        for ok, (task_id, status) in zip(landed, reports, strict=True):
            if not ok and task_id not in self._pending:
                self._pending[task_id] = status
                self._wake.set()
