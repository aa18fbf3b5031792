"""What the API servicers need from the current leadership term.

While this controller leads, `Leadership.current` holds the term's cache and
writer; otherwise handlers raise NotLeader with the leader's address, which
clients follow.
"""

from __future__ import annotations

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
        self.current: Term | None = None
        #: Every live controller's address, leader first, as last read from etcd.
        self.controllers: list[str] = [settings.advertise_addr]

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
