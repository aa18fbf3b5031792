"""How late a process's event loop runs its timers: every request it serves waits out the same stall."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import NoReturn

import prometheus_client

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def histogram(prefix: str, process: str) -> prometheus_client.Histogram:
    """`<prefix>_event_loop_lag_seconds`, for the process named in its help text."""
    return prometheus_client.Histogram(
        f"{prefix}_event_loop_lag_seconds",
        f"How late a 100 ms timer on the {process}'s event loop fired: every RPC and loop waits as long.",
        buckets=BUCKETS,
    )


async def watch(lag: prometheus_client.Histogram, interval: float = 0.1) -> NoReturn:
    """Observe how late each timer fires, forever."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        lag.observe(max(0.0, time.perf_counter() - start - interval))


@contextlib.contextmanager
def watching(lag: prometheus_client.Histogram) -> Iterator[None]:
    """`watch` in the background for as long as the block runs (one per process: it measures the loop)."""
    task = asyncio.create_task(watch(lag), name="event-loop-lag")
    try:
        yield
    finally:
        task.cancel()
