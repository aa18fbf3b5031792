"""Heartbeat deadlines for every node, checked by one loop (not a timer per node).

With thousands of nodes, one dict of deadlines scanned a few times a second
is cheaper than thousands of timers, and it makes "give everyone a longer
grace after failover" a single pass.
"""

from __future__ import annotations

import collections
import random
import time

from shoal.controller import metrics

#: Below this many watched nodes every missed deadline counts: a small cluster's silence is no sign of our own fault.
ARRIVAL_CHECK_MIN_NODES = 10

#: The share of expected heartbeats that must have reached us over the last grace for deadlines to count.
ARRIVAL_QUORUM = 0.5


class Heartbeats:
    """When each node's heartbeat is due, at the latest."""

    def __init__(self, period: float, grace: float, max_rate: float = 0.0) -> None:
        #: The configured period and grace: the smallest a node is given.
        self.base_period = period
        self.multiplier = grace / period
        self._max_rate = max_rate
        self._deadline: dict[str, float] = {}
        #: When each node was told to send its next heartbeat (for the lateness histogram).
        self._due: dict[str, float] = {}
        #: When heartbeats arrived, over the last grace: how many reach us, against how many should.
        self._arrivals: collections.deque[float] = collections.deque()
        self._since = time.monotonic()

    @property
    def period(self) -> float:
        """The period nodes are told now: the configured one, longer once the fleet would exceed the rate."""
        if self._max_rate <= 0:
            return self.base_period
        return max(self.base_period, len(self._deadline) / self._max_rate)

    @property
    def grace(self) -> float:
        """Seconds without a heartbeat before a node is DOWN, at the current period."""
        return self.period * self.multiplier

    def watch(self, node_ids: list[str], graces: float) -> None:
        """Give each node `graces` times the grace (at the period their number calls for) to beat first."""
        for node_id in node_ids:
            self._deadline[node_id] = 0.0
        grace = self.grace * graces
        for node_id in node_ids:
            self.beat(node_id, grace)

    def beat(self, node_id: str, grace: float | None = None) -> None:
        """A heartbeat (or registration) arrived: the node is alive for another grace period.

        A `grace` of our own choosing (failover, retry) is not an arrival, so it measures no lateness.
        """
        now = time.monotonic()
        due = self._due.pop(node_id, None)
        if grace is None:
            self._arrivals.append(now)
            if due is not None:
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

    def arriving(self) -> bool:
        """False when fewer than half the heartbeats expected over the last grace reached us.

        Then the fault is more likely ours (an overloaded event loop that reads requests
        late, or our own network) than that of half the fleet at once; Kubernetes' node
        lifecycle controller stops evicting in such a "full disruption" for the same reason.
        """
        now = time.monotonic()
        window = self.grace
        while self._arrivals and self._arrivals[0] < now - window:
            self._arrivals.popleft()
        nodes = len(self._deadline)
        if nodes < ARRIVAL_CHECK_MIN_NODES or now - self._since < window:
            return True
        expected = nodes * self.multiplier  # each node beats `multiplier` times per grace
        return len(self._arrivals) >= ARRIVAL_QUORUM * expected

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
