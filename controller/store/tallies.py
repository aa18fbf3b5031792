"""Task counts the cache keeps as it applies changes, for the metrics a scrape reads.

A scrape that walked every task held the event loop, and with it every RPC,
for 0.7 s at 100,000 tasks (bench/placement.py); tallies make it cost
O(services + nodes). Each count is dropped at zero, so a tally holds only what
exists.
"""

from __future__ import annotations

import collections
from typing import Any

from shoal import states
from shoal.v1 import objects_pb2


def holds_resources(task: objects_pb2.Task) -> bool:
    """True while a task may occupy its node's resources (the scheduler's rule, scheduler/nodeinfo.py;
    not imported from there, because the store sits below the control loops)."""
    return bool(task.node_id) and states.ASSIGNED <= task.status.state < states.COMPLETE


class TaskTallies:
    """Tasks by observed state; by (observed, desired) state per service; reservations held per node."""

    def __init__(self) -> None:
        self.states: collections.Counter[int] = collections.Counter()
        self.by_service: dict[str, collections.Counter[tuple[int, int]]] = {}
        #: Node ID -> [nano CPUs, memory bytes] reserved by the tasks that hold resources there.
        self.reserved: dict[str, list[int]] = {}
        #: Changes of `reserved` so far (the node metrics are rebuilt only after one).
        self.reserved_changes = 0

    def add(self, task: objects_pb2.Task, sign: int = 1) -> None:
        """Count a task in (sign -1: out again, with the fields it was counted with)."""
        state = task.status.state
        _count(self.states, state, sign)
        by_service = self.by_service.get(task.service_id)
        if by_service is None:
            by_service = self.by_service[task.service_id] = collections.Counter()
        _count(by_service, (state, task.desired_state), sign)
        if not by_service:
            del self.by_service[task.service_id]
        if holds_resources(task):
            res = task.spec.resources.reservations
            if res.nano_cpus or res.memory_bytes:
                self.reserved_changes += 1
                held = self.reserved.setdefault(task.node_id, [0, 0])
                held[0] += sign * res.nano_cpus
                held[1] += sign * res.memory_bytes
                if held == [0, 0]:
                    del self.reserved[task.node_id]


    def replace(self, old: objects_pb2.Task, new: objects_pb2.Task) -> None:
        """Count `old` out and `new` in. A task that stays with its service, node and spec (an agent's
        report) moves only its state counts, unless it took or gave up its reservation."""
        if (
            old.service_id != new.service_id
            or old.node_id != new.node_id
            or old.spec_version != new.spec_version
            or holds_resources(old) != holds_resources(new)
        ):
            self.add(old, -1)
            self.add(new, +1)
            return
        before, after = old.status.state, new.status.state
        _count(self.states, before, -1)
        _count(self.states, after, +1)
        by_service = self.by_service[old.service_id]
        _count(by_service, (before, old.desired_state), -1)
        _count(by_service, (after, new.desired_state), +1)


def _count(counter: collections.Counter[Any], key: Any, sign: int) -> None:
    value = counter[key] + sign
    if value:
        counter[key] = value
    else:
        del counter[key]
