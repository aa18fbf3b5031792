"""The waiting part of every control loop (STYLE H2): debounce a burst of changes.

A loop reacts to the first batch of changes, then keeps gathering until the
store has been quiet for `debounce` or `max_latency` has passed since the
first one, so a burst of a thousand writes costs one pass, not a thousand.
A loop with timers (restart delays) also wakes when its earliest timer is due.

A long pass gives the event loop a turn every few milliseconds (`Slicer`).
"""

from __future__ import annotations

import asyncio
import time

from shoal.controller.settings import LoopSettings
from shoal.controller.store.cache import Subscription
from shoal.controller.store.events import Batch


async def gather(sub: Subscription, settings: LoopSettings, wake_at: float | None = None) -> list[Batch]:
    """The next burst of batches; empty if `wake_at` (loop time) came first."""
    loop = asyncio.get_running_loop()
    batches = sub.drain()
    if not batches:
        timeout = None if wake_at is None else max(0.0, wake_at - loop.time())
        try:
            async with asyncio.timeout(timeout):
                batches.append(await sub.get())
        except TimeoutError:
            return []
    deadline = loop.time() + settings.max_latency
    while loop.time() < deadline:
        try:
            async with asyncio.timeout(min(settings.debounce, max(0.0, deadline - loop.time()))):
                batches.append(await sub.get())
        except TimeoutError:
            break
        batches.extend(sub.drain())
    return batches


#: Longest stretch of work a pass does without giving the event loop a turn.
SLICE = 0.002


class Slicer:
    """Give the event loop a turn once a slice of work has gone by: call `tick()` between items.

    gRPC's asyncio server takes in one new call per turn or two of the event
    loop, so a callback that runs for 50 ms caps it at a few dozen calls per
    second: a burst made heartbeats wait 20 s and a thousand agents register
    again (bench/placement.py).
    """

    def __init__(self, budget: float = SLICE) -> None:
        self._budget = budget
        self._since = time.perf_counter()

    async def tick(self) -> None:
        if time.perf_counter() - self._since >= self._budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
