"""How many transactions the writer keeps in etcd at once, adapted to how fast etcd answers.

etcd applies committed transactions one at a time, and etcd 3.4 refuses a lease
renewal while its apply is more than a second behind its log ("waiting for the
applied index took too long"): a burst of writes can end the leader's lease.
With twelve batched transactions in flight, bench/placement.py lost leadership
in three runs of three on a slow day; with four, not in the run that followed.
No fixed number suits every machine, so the window follows TCP's congestion
control (AIMD): it grows
by one place for every window's worth of answers faster than `target`, and
halves on an answer slower than that, once per burst (answers to transactions
sent before the last cut do not cut again). A transaction that failed leaves the
window as it is. The time measured is the answer as the controller's event loop
sees it, so a controller too busy to read its answers also writes less at once.
Urgent writes (status reports, nodes marked DOWN) take the next free place
before bulk ones, but they count in the window too: etcd applies them all the
same.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from shoal.controller import metrics


class Window:
    """An asyncio gate with a limit that follows the latency of what passes through it."""

    def __init__(
        self,
        *,
        initial: float = 4,
        floor: float = 1,
        ceiling: float = 16,
        target: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._floor = floor
        self._ceiling = ceiling
        self._target = target
        self._clock = clock
        self._limit = float(initial)
        self._inflight = 0
        self._last_cut = float("-inf")
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._bulk: collections.deque[asyncio.Future[None]] = collections.deque()
        metrics.WRITE_WINDOW.set(self._limit)

    @property
    def limit(self) -> int:
        """Transactions that may be in flight now."""
        return int(self._limit)

    @property
    def inflight(self) -> int:
        return self._inflight

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        """Hold a place for one transaction; its time in the block adjusts the window."""
        await self._acquire(urgent)
        sent = self._clock()
        answered = False
        try:
            yield
            answered = True
        finally:
            self._inflight -= 1
            if answered:
                self._adjust(sent, self._clock())
            self._grant()

    async def _acquire(self, urgent: bool) -> None:
        queue = self._urgent if urgent else self._bulk
        if self._inflight < self.limit and not self._urgent and (urgent or not self._bulk):
            self._inflight += 1
            return
        place = asyncio.get_running_loop().create_future()
        queue.append(place)
        try:
            await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                # Granted as we were cancelled: hand the place on.
                self._inflight -= 1
                self._grant()
            else:
                queue.remove(place)
            raise

    def _adjust(self, sent: float, answered: float) -> None:
        if answered - sent <= self._target:
            self._limit = min(self._ceiling, self._limit + 1 / self._limit)
        elif sent >= self._last_cut:
            self._limit = max(self._floor, self._limit / 2)
            self._last_cut = answered
            metrics.WRITE_WINDOW_CUTS.inc()
        metrics.WRITE_WINDOW.set(self._limit)

    def _grant(self) -> None:
        while self._inflight < self.limit:
            queue = self._urgent or self._bulk
            if not queue:
                return
            place = queue.popleft()
            if place.done():
                continue
            place.set_result(None)
            self._inflight += 1
