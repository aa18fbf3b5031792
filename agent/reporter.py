"""The status reporter: the latest observed status of every task, sent in batches through the session.

Runners push statuses in (`update`, synchronous and cheap); a status whose
state is not above the one already kept is dropped. `run(send)` lives as long
as one session: it first queues the latest status of every task it knows (the
controller may have missed them while the agent was away), then sends pending
statuses in batches of at most `batch_size`, waiting `flush_interval` to
gather more before each batch that is not full; a step on a task's way up to
RUNNING that came in within that interval waits for the next batch. A failed
batch goes back in the queue and is retried with backoff, except a refused one
(the controller says a task is not ours), which is dropped so that it cannot
wedge the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import grpc

from shoal import backoff, states
from shoal.agent import metrics
from shoal.agent.reports import Refused
from shoal.v1 import dispatcher_pb2, types_pb2

log = logging.getLogger(__name__)

#: Sends one batch through the current session; raises Refused if the controller will not take it, and
#: grpc.aio.AioRpcError or TimeoutError when it may not have arrived.
Send = Callable[[Sequence[dispatcher_pb2.TaskStatusUpdate]], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class ReporterSettings:
    """Batching and retry tunables (see AgentSettings for their meaning)."""

    batch_size: int = 100
    flush_interval: float = 0.05
    retry_base: float = 0.1
    retry_cap: float = 8.0


class Reporter:
    """Keeps the latest status per task and sends what the controller has not seen yet."""

    def __init__(self, settings: ReporterSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._latest: dict[str, types_pb2.TaskStatus] = {}
        #: When each task's latest status came in (clock time).
        self._changed_at: dict[str, float] = {}
        # Task IDs whose latest status is still to be sent, oldest first (a dict is an ordered set).
        self._pending: dict[str, None] = {}
        self._wakeup = asyncio.Event()
        self._denied_logged = False

    def update(self, task_id: str, status: types_pb2.TaskStatus) -> None:
        """Keep `status` if it moves the task forward, and queue it for sending."""
        known = self._latest.get(task_id)
        if known is not None and not states.may_advance(known.state, status.state):
            return
        self._latest[task_id] = status
        self._changed_at[task_id] = self._clock()
        self._pending[task_id] = None
        self._wakeup.set()

    def forget(self, task_id: str) -> None:
        """Drop a task that left this node; its status will not be sent again."""
        self._latest.pop(task_id, None)
        self._changed_at.pop(task_id, None)
        self._pending.pop(task_id, None)

    def latest(self, task_id: str) -> types_pb2.TaskStatus | None:
        """The latest status kept for `task_id`."""
        return self._latest.get(task_id)

    @property
    def pending(self) -> int:
        """How many tasks have a status waiting to be sent."""
        return len(self._pending)

    async def run(self, send: Send) -> NoReturn:
        """Send statuses through one session, starting with everything known; runs until cancelled."""
        for task_id in self._latest:
            self._pending.setdefault(task_id, None)
        retry = backoff.Backoff(base=self._settings.retry_base, cap=self._settings.retry_cap)
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            if len(self._pending) < self._settings.batch_size:
                # Also between batches of a steady flow: answers on the Report stream come back within
                # milliseconds, and sending on each one would carry a status or two per message.
                await asyncio.sleep(self._settings.flush_interval)
            batch = self._take_batch()
            if not batch:
                # Every pending status is a step on a task's way up that came in just now: its next
                # step is likely on its way too, and one report of both saves a write.
                await asyncio.sleep(self._settings.flush_interval)
                continue
            try:
                await send(batch)
            except Refused as exc:
                self._drop(batch, exc)
                continue
            except (grpc.aio.AioRpcError, TimeoutError) as exc:
                self._requeue(batch)
                delay = retry.next()
                why = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else "no answer"
                log.warning("status report failed (%s); retrying in %.1fs", why, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self._requeue(batch)
                raise
            retry.reset()
            metrics.STATUS_REPORTS.inc(len(batch))
            metrics.STATUS_BATCH.observe(len(batch))
            log.debug("reported %d task statuses", len(batch))

    def _take_batch(self) -> list[dispatcher_pb2.TaskStatusUpdate]:
        """Up to `batch_size` pending statuses, oldest first, but for the steps up to RUNNING that came in
        within the last `flush_interval`: they wait for the next batch, by which the task has often
        moved on (a hollow node's tasks reached RUNNING in two reports one time in seven)."""
        batch: list[dispatcher_pb2.TaskStatusUpdate] = []
        recent = self._clock() - self._settings.flush_interval
        for task_id in list(self._pending):
            if len(batch) == self._settings.batch_size:
                break
            status = self._latest[task_id]
            if states.ASSIGNED < status.state < states.RUNNING and self._changed_at[task_id] > recent:
                continue
            del self._pending[task_id]
            batch.append(dispatcher_pb2.TaskStatusUpdate(task_id=task_id, status=status))
        return batch

    def _requeue(self, batch: Sequence[dispatcher_pb2.TaskStatusUpdate]) -> None:
        """Put a failed batch back at the front, unless a task was forgotten meanwhile."""
        requeued = {u.task_id: None for u in batch if u.task_id in self._latest}
        self._pending = requeued | {k: None for k in self._pending if k not in requeued}

    def _drop(self, batch: Sequence[dispatcher_pb2.TaskStatusUpdate], exc: Refused) -> None:
        """The controller refuses these statuses: give up on them, and say so once per process."""
        if not self._denied_logged:
            log.warning(
                "controller refused %d task statuses (%s); dropping them (logged once)",
                len(batch),
                exc,
            )
            self._denied_logged = True
        else:
            log.debug("controller refused %d task statuses; dropped", len(batch))
