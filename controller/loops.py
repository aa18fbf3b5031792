"""The waiting part of every control loop (STYLE H2): debounce a burst of changes.

A loop reacts to the first batch of changes, then keeps gathering until the
store has been quiet for `debounce` or `max_latency` has passed since the
first one, so a burst of a thousand writes costs one pass, not a thousand.
A loop with timers (restart delays) also wakes when its earliest timer is due.
"""

from __future__ import annotations

import asyncio

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
