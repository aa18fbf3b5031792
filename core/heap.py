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

import gc

#: Allocations between young collections (CPython: 700), and the next generations' multipliers (10, 10).
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Collect less often: at the start of the controller process."""
    gc.set_threshold(*THRESHOLDS)


def settle() -> None:
    """After a big load (the cache's listing): collect once, then stop scanning what survived."""
    gc.collect()
    gc.freeze()
