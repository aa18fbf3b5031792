"""Capped, jittered exponential backoff for reconnects and retries.

The delay grows from `base` by `factor` up to `cap`, and the actual wait is
drawn at random below it ("full jitter"), so that a fleet of agents that lost
their controller at the same moment does not come back at the same moment.
"""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass
class Backoff:
    """The delay before the next attempt; `reset()` after a success."""

    base: float = 0.1
    cap: float = 8.0
    factor: float = 2.0
    _current: float = dataclasses.field(default=0.0, init=False)

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        self._current = min(self.cap, self._current * self.factor + self.base) if self._current else self.base
        return random.uniform(0, self._current)

    def reset(self) -> None:
        """Forget past failures."""
        self._current = 0.0
