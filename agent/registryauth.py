"""Registry credentials on the node: held in memory only, while a task assigned here needs them.

The controller sends a node the credentials a task's spec names (like a
secret) only while the node runs a task of that spec, and withdraws them after
the last one. They are never written anywhere, and used for one thing: the
X-Registry-Auth header of that task's image pull.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shoal.v1 import dispatcher_pb2, types_pb2

REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


class AuthStore:
    """The registry credentials assigned to this node, by ID (a worker FileSink)."""

    def __init__(self) -> None:
        self._auths: dict[str, types_pb2.RegistryAuth] = {}

    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        """Take the credentials of a COMPLETE assignment set; anything not in it is forgotten."""
        self._auths.clear()
        self.apply(changes)

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        """Take the credential changes of an assignment message (other items are not ours)."""
        for change in changes:
            if change.WhichOneof("item") != "registry_auth":
                continue
            if change.action == REMOVE:
                self._auths.pop(change.registry_auth.id, None)
            else:
                self._auths[change.registry_auth.id] = change.registry_auth.auth

    def get(self, auth_id: str) -> types_pb2.RegistryAuth | None:
        """The credentials of that ID, if this node holds them."""
        return self._auths.get(auth_id)


class Sink(Protocol):
    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None: ...

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None: ...


class Sinks:
    """Hands every assignment change to several stores (files and credentials)."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self._sinks = tuple(sinks)

    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        for sink in self._sinks:
            sink.replace(changes)

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        for sink in self._sinks:
            sink.apply(changes)

