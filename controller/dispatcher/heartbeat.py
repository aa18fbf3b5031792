"""Heartbeat deadlines for every node, checked by one loop (not a timer per node).

With thousands of nodes, one dict of deadlines scanned a few times a second
is cheaper than thousands of timers, and it makes "give everyone a longer
grace after failover" a single pass.
"""

from __future__ import annotations

import random
import time

from shoal.controller import metrics


class Heartbeats:
    """When each node's heartbeat is due, at the latest."""

    def __init__(self, period: float, grace: float) -> None:
        self.period = period
        self.grace = grace
        self._deadline: dict[str, float] = {}
        #: When each node was told to send its next heartbeat (for the lateness histogram).
        self._due: dict[str, float] = {}

    def beat(self, node_id: str, grace: float | None = None) -> None:
        """A heartbeat (or registration) arrived: the node is alive for another grace period.

        A `grace` of our own choosing (failover, retry) is not an arrival, so it measures no lateness.
        """
        now = time.monotonic()
        due = self._due.pop(node_id, None)
        if grace is None and due is not None:
            metrics.HEARTBEAT_LATENESS.observe(max(0.0, now - due))
        self._deadline[node_id] = now + (self.grace if grace is None else grace)

    def extend(self, seconds: float) -> None:
        """Move every deadline later (the controller itself was not listening for that long)."""
        for node_id in self._deadline:
            self._deadline[node_id] += seconds

    def forget(self, node_id: str) -> None:
        """Stop watching a node (it is DOWN or gone)."""
        self._deadline.pop(node_id, None)
        self._due.pop(node_id, None)

    def expired(self) -> list[str]:
        """Nodes whose deadline has passed; they are forgotten."""
        now = time.monotonic()
        late = [n for n, d in self._deadline.items() if d < now]
        for n in late:
            del self._deadline[n]
            self._due.pop(n, None)
        return late

    def watched(self, node_id: str) -> bool:
        """True while the node has a deadline."""
        return node_id in self._deadline

    def next_period(self, node_id: str | None = None) -> float:
        """The period to tell an agent, with ±10% jitter so a fleet spreads its heartbeats.

        With `node_id`, the node's next heartbeat is expected after that period.
        """
        period = self.period * random.uniform(0.9, 1.1)
        if node_id is not None:
            self._due[node_id] = time.monotonic() + period
        return period
