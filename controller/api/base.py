"""What every group of Control API handlers shares: the leadership term and the key layout."""

from __future__ import annotations

from shoal import errors
from shoal.controller.context import Leadership
from shoal.controller.secrets import Sealer
from shoal.controller.store.keys import Keys


class Handlers:
    """Base of the Control API's handler groups (nodes, services, tasks, files, cluster)."""

    def __init__(self, leadership: Leadership, keys: Keys, sealer: Sealer) -> None:
        self._leadership = leadership
        self._keys = keys
        self._sealer = sealer


def check_version(kind: str, name: str, given: int, current: int) -> None:
    if given != current:
        raise errors.Conflict(
            f'{kind} "{name}" changed since it was read (version {given}, now {current}); read it again'
        )
