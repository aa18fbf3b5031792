"""What the API servicers need from the current leadership term.

While this controller leads, `Leadership.current` holds the term's cache and
writer; otherwise handlers raise NotLeader with the leader's address, which
clients follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from shoal import errors
from shoal.controller.leader import Election
from shoal.controller.settings import ControllerSettings
from shoal.controller.store.cache import Cache
from shoal.controller.store.etcd import Etcd
from shoal.controller.store.writer import Writer


@dataclasses.dataclass(frozen=True)
class Term:
    """One leadership term's store access."""

    cache: Cache
    writer: Writer


class Leadership:
    """The current term, if this controller leads."""

    def __init__(self, election: Election, settings: ControllerSettings, etcd: Etcd | None = None) -> None:
        self.election = election
        self.settings = settings
        #: The process's etcd connection (cluster information, health).
        self.etcd = etcd
        self._current: Term | None = None
        self._published = asyncio.Event()
        #: Every live controller's address, leader first, as last read from etcd.
        self.controllers: list[str] = [settings.advertise_addr]

    @property
    def current(self) -> Term | None:
        """The term while this controller leads and its cache is loaded."""
        return self._current

    @current.setter
    def current(self, term: Term | None) -> None:
        self._current = term
        if term is None:
            self._published.clear()
        else:
            self._published.set()

    async def starting(self, timeout: float) -> None:
        """Return once a term is published, or at once if this controller is not starting one.

        Between winning an election and having its cache loaded (seconds, with 100,000 tasks), a
        controller would otherwise refuse every agent, and a whole fleet would keep retrying on
        the cores the load needs.
        """
        if self._current is None and self.election.is_leader:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._published.wait()

    def require(self) -> Term:
        """The current term, or NotLeader naming the leader."""
        term = self.current
        if term is None:
            leader = self.election.leader
            addr = leader.addr if leader and leader.addr != self.settings.advertise_addr else ""
            raise errors.NotLeader(
                f"this controller is not the leader{f' (the leader is {addr})' if addr else ''}", leader=addr
            )
        return term
