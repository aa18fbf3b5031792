"""Garbage collection for a heap of long-lived messages (the controller; a process of hollow nodes).

The leader's cache holds every node, service and task as a protobuf message
for as long as it leads: at 100,000 tasks, CPython's default thresholds (a
young collection every 700 allocations, and full collections as the heap
grows) spend about half of a scheduling pass walking objects that never die
(bench/scheduler.py: 17,700 decisions/s with the defaults, 30,000 without
the walks). The control loops allocate in bursts (a pass builds thousands of
messages) and make few reference cycles, so the controller collects less
often, and moves what the cache loaded out of the collector's sight
(`gc.freeze`), as long-lived servers do.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import time
from collections.abc import Callable
from typing import NoReturn

import prometheus_client

log = logging.getLogger(__name__)

#: Allocations between young collections (CPython: 700), and the next generations' multipliers (10, 10).
THRESHOLDS = (50_000, 20, 100)


#: Pauses of the whole process, 1 ms to 5 s: each collection, each heap trim.
PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

GC_PAUSE = prometheus_client.Histogram(
    "shoal_gc_pause_seconds",
    "Time of each garbage collection, by generation: the whole process (every thread) waits it out.",
    ["generation"],
    buckets=PAUSE_BUCKETS,
)
TRIM_DURATION = prometheus_client.Histogram(
    "shoal_heap_trim_seconds",
    "Time the event loop waited for each heap trim (a collection of what is new, if one is due; "
    "malloc_trim runs beside the loop).",
    buckets=PAUSE_BUCKETS,
)
_collecting: list[float] = []


def _time_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collecting.append(time.perf_counter())
    elif _collecting:
        GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _collecting.pop())


def tune() -> None:
    """Collect less often, and time every collection: at the start of the controller process."""
    gc.set_threshold(*THRESHOLDS)
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def settle() -> None:
    """After a big load (the cache's listing): collect once, then stop scanning what survived."""
    gc.collect()
    gc.freeze()


def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def collect(full: bool = False) -> None:
    """Collect what is new since the last freeze, and freeze the survivors; `full` first unfreezes.

    Protobuf messages are tracked by the collector, so a full collection walks every
    cached task: a few hundred ms at 50,000 tasks and 5,000 sessions, a stall every RPC
    waited out (bench/api.py). Survivors are frozen instead, and a collection walks only
    what appeared since the last one; `full` finds cycles among old objects too.
    Even so it holds the loop 0.2-0.8 s at 5,000 nodes, so it is rare (`keep_trimmed`).
    """
    if full:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def release() -> None:
    """Hand malloc's free pages back to the OS (glibc `malloc_trim`; nothing elsewhere).

    A burst (100,000 tasks written four times each) leaves the heap's high-water mark
    far above what the cache holds once it is over (1.6 GiB against 0.8 GiB after a
    restart, bench/coldstart.py): freed messages sit in malloc's free lists. The call
    needs no interpreter state, and ctypes lets go of the GIL for it, so it runs in a
    thread beside the event loop.
    """
    if _TRIM is not None:
        _TRIM(0)


def rss_bytes() -> int:
    """This process's resident set size (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


async def keep_trimmed(
    changes: Callable[[], int],
    interval: float = 10.0,
    after: int = 1000,
    grown: int = 256 * 2**20,
    collect_every: float = 600.0,
    full_every: float = 3600.0,
    rss: Callable[[], int] = rss_bytes,
    burst: int = 500,
) -> NoReturn:
    """Every `interval` seconds, once `after` changes (store revisions) have gone by, hand malloc's free
    pages back to the OS from a thread (`release`, no stall), with a collection first when one is due.

    A collection (`collect`) holds the loop, 0.2-0.8 s at 5,000 nodes: run on
    every trim, it came every 10-20 s under 20 mutations a second and was in an
    API call's P99 (bench/api.py). So one joins a trim only once the process has
    grown by `grown` bytes since the last (a burst: its survivors are frozen, and
    later collections do not walk them) or `collect_every` seconds have passed;
    every `full_every` seconds a full one runs, whatever else: frozen objects that
    became unreachable cycles are freed then.

    The collection after growth waits for the burst to end (fewer than `burst` revisions in the last
    `interval`), and then runs however few changes follow: in the middle of one it stalled every write
    in flight, twice in each placement run (bench/placement.py writes about 120 revisions a second), and
    after it, it walks every survivor once.
    """
    trimmed_at, size_at = changes(), rss()
    seen = trimmed_at
    collected_at = full_at = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        revision = changes()
        busy, seen = revision - seen >= burst, revision
        full = now - full_at >= full_every
        trim = full or revision - trimmed_at >= after
        due = full or (trim and now - collected_at >= collect_every) or (not busy and rss() - size_at >= grown)
        if not (trim or due):
            continue
        trimmed_at = revision
        start = time.perf_counter()
        if due:
            collected_at = now
            if full:
                full_at = now
            collect(full)
            size_at = rss()
        collected = time.perf_counter() - start
        await asyncio.to_thread(release)
        size_at = min(size_at, rss())
        TRIM_DURATION.observe(collected)
        log.log(
            logging.INFO if collected > 0.5 else logging.DEBUG,
            "heap trimmed%s: collection %.3fs, pages released in %.3fs",
            " (full collection)" if full else "", collected, time.perf_counter() - start - collected,
        )
