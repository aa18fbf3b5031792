"""How late a process's event loop runs its timers: every request it serves waits out the same stall."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import NoReturn

import prometheus_client

log = logging.getLogger(__name__)

#: Set (milliseconds) to log the stack of whatever holds the event loop longer than that.
STALL_REPORT_ENV = "SHOAL_STALL_REPORT_MS"

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def histogram(prefix: str, process: str) -> prometheus_client.Histogram:
    """`<prefix>_event_loop_lag_seconds`, for the process named in its help text."""
    return prometheus_client.Histogram(
        f"{prefix}_event_loop_lag_seconds",
        f"How late a 100 ms timer on the {process}'s event loop fired: every RPC and loop waits as long.",
        buckets=BUCKETS,
    )


async def watch(lag: prometheus_client.Histogram, interval: float = 0.1) -> NoReturn:
    """Observe how late each timer fires, forever (and report long stalls, when `STALL_REPORT_ENV` asks)."""
    reporter = StallReporter.from_env()
    try:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            lag.observe(max(0.0, time.perf_counter() - start - interval))
    finally:
        if reporter is not None:
            reporter.stop()


class StallReporter:
    """A thread that logs the event loop thread's stack when the loop has not turned for `threshold` seconds.

    The lag histogram says that the loop was held; this says by what. The
    loop stamps a beat a few times per threshold; the thread looks as often,
    and reports a stall once, at the moment it passes the threshold.
    """

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stopped = threading.Event()
        self._handle: asyncio.Handle = self._loop.call_soon(self._stamp)
        threading.Thread(target=self._look, name="stall-reporter", daemon=True).start()

    @classmethod
    def from_env(cls) -> StallReporter | None:
        ms = os.environ.get(STALL_REPORT_ENV, "")
        return cls(float(ms) / 1000) if ms else None

    def _stamp(self) -> None:
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self._threshold / 4, self._stamp)

    def _look(self) -> None:
        reported = 0.0
        while not self._stopped.wait(self._threshold / 4):
            beat = self._beat
            if beat == reported or time.monotonic() - beat < self._threshold:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)[-12:]) if frame is not None else "(no frame)"
            log.warning("event loop held for over %.0f ms, now in:\n%s", self._threshold * 1000, stack)
            reported = beat

    def stop(self) -> None:
        self._stopped.set()
        self._handle.cancel()


@contextlib.contextmanager
def watching(lag: prometheus_client.Histogram) -> Iterator[None]:
    """`watch` in the background for as long as the block runs (one per process: it measures the loop)."""
    task = asyncio.create_task(watch(lag), name="event-loop-lag")
    try:
        yield
    finally:
        task.cancel()
