"""What the planners of every mode return: atomic groups of writes and when to look again."""

from __future__ import annotations

import dataclasses

from shoal.controller.store import writer as w


@dataclasses.dataclass
class Plan:
    """Writes for one service (each group atomic), and the wall-clock time it wants another look (None: no timer)."""

    groups: list[list[w.Op]] = dataclasses.field(default_factory=list)
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)
