"""A node's assignment set, and the stream that keeps an agent's copy of it current.

A task belongs to a node's set from the moment it is ASSIGNED there until it
is deleted from the store (the reaper deletes finished tasks; that is what
makes the agent remove the container). The first message of a stream is the
whole set (COMPLETE); after that, changes are coalesced per task (latest
wins) and flushed after a short quiet gap or when many are pending
(INCREMENTAL). Status-only changes are not sent back: the agent made them.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterable

from shoal import states
from shoal.controller import metrics
from shoal.controller.settings import DispatcherSettings
from shoal.v1 import dispatcher_pb2, objects_pb2

UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


#: Looks up a secret, config or registry credentials for delivery: (kind, id) -> the item, or None if it is gone.
FileSource = Callable[[str, str], dispatcher_pb2.AssignedFile | dispatcher_pb2.AssignedRegistryAuth | None]


def file_refs(task: objects_pb2.Task) -> list[tuple[str, str]]:
    """The (kind, id) of every secret and config the task mounts, and of its registry credentials."""
    container = task.spec.container
    if not container.secrets and not container.configs and not container.registry_auth_id:
        return []  # most tasks: asked for every task a node is given
    refs = [("secret", r.id) for r in container.secrets] + [("config", r.id) for r in container.configs]
    if container.registry_auth_id:  # issue 18: delivered like a secret
        refs.append(("registry_auth", container.registry_auth_id))
    return refs


def _file_change(
    action: dispatcher_pb2.AssignmentChange.Action.ValueType,
    kind: str,
    file: dispatcher_pb2.AssignedFile | dispatcher_pb2.AssignedRegistryAuth,
) -> dispatcher_pb2.AssignmentChange:
    """The change that delivers or withdraws a secret, config or registry credentials (`kind` names its field)."""
    if isinstance(file, dispatcher_pb2.AssignedRegistryAuth):
        return dispatcher_pb2.AssignmentChange(action=action, registry_auth=file)
    if kind == "secret":
        return dispatcher_pb2.AssignmentChange(action=action, secret=file)
    return dispatcher_pb2.AssignmentChange(action=action, config=file)


def in_set(task: objects_pb2.Task | None, node_id: str) -> bool:
    """True if the task is part of `node_id`'s assignment set."""
    return task is not None and task.node_id == node_id and states.ASSIGNED <= task.status.state < states.ORPHANED


def agent_visible_change(old: objects_pb2.Task, new: objects_pb2.Task) -> bool:
    """True if the agent must hear of this change (anything but its own status reports)."""
    return (
        old.desired_state != new.desired_state
        or old.spec_version != new.spec_version
        or old.node_id != new.node_id
        or old.status.state < states.ASSIGNED <= new.status.state
    )


class AssignmentStream:
    """One agent's open Assignments stream."""

    def __init__(self, node_id: str, settings: DispatcherSettings, files: FileSource | None = None) -> None:
        self.node_id = node_id
        self._settings = settings
        self._files = files
        # How many tasks of the set use each file: a node holds a secret only
        # while a task assigned to it needs it.
        self._file_users: collections.Counter[tuple[str, str]] = collections.Counter()
        self._pending: dict[str, dispatcher_pb2.AssignmentChange] = {}
        self._wake = asyncio.Event()
        self._closed: BaseException | None = None
        self._seq = 0

    def change(self, old: objects_pb2.Task | None, new: objects_pb2.Task | None) -> None:
        """Queue what a task change means for this node (nothing, UPDATE or REMOVE)."""
        was, now = in_set(old, self.node_id), in_set(new, self.node_id)
        if now and (not was or agent_visible_change(old, new)):  # type: ignore[arg-type]
            if not was:
                self._use_files(new, +1)  # type: ignore[arg-type]
            self._pending[new.id] = dispatcher_pb2.AssignmentChange(action=UPDATE, task=new)  # type: ignore[union-attr]
        elif was and not now:
            self._pending[old.id] = dispatcher_pb2.AssignmentChange(action=REMOVE, task=old)  # type: ignore[union-attr]
            self._use_files(old, -1)  # type: ignore[arg-type]
        else:
            return
        self._wake.set()

    def _use_files(self, task: objects_pb2.Task, delta: int) -> None:
        """Count the task's files in or out; send a file on its first user, withdraw it after its last."""
        for kind, file_id in file_refs(task):
            key = (kind, file_id)
            self._file_users[key] += delta
            if delta > 0 and self._file_users[key] == 1:
                found = self._files(kind, file_id) if self._files else None
                if found is not None:
                    self._pending[f"{kind}/{file_id}"] = _file_change(UPDATE, kind, found)
            elif self._file_users[key] <= 0:
                del self._file_users[key]
                gone = _withdrawn(kind, file_id)
                self._pending[f"{kind}/{file_id}"] = _file_change(REMOVE, kind, gone)

    def network(self, network_id: str, item: dispatcher_pb2.NetworkAssignment | None) -> None:
        """Queue a network's item (None: the node is no longer on it); a newer one replaces it."""
        if item is None:
            gone = dispatcher_pb2.NetworkAssignment(id=network_id)
            change = dispatcher_pb2.AssignmentChange(action=REMOVE, network=gone)
        else:
            change = dispatcher_pb2.AssignmentChange(action=UPDATE, network=item)
        self._pending[f"network/{network_id}"] = change
        self._wake.set()

    def close(self, exc: BaseException) -> None:
        """End the stream with `exc` (session replaced, node removed, leadership lost)."""
        self._closed = exc
        self._wake.set()

    async def messages(
        self,
        initial: Iterable[objects_pb2.Task],
        networks: Iterable[dispatcher_pb2.NetworkAssignment] = (),
    ) -> AsyncIterator[dispatcher_pb2.AssignmentsMessage]:
        """The COMPLETE message, then INCREMENTAL ones as changes arrive."""
        self._seq += 1
        tasks = [t for t in initial if in_set(t, self.node_id)]
        for t in tasks:
            self._use_files(t, +1)
        for item in networks:
            # An item routed here since the stream opened is newer: it stays.
            self._pending.setdefault(
                f"network/{item.id}", dispatcher_pb2.AssignmentChange(action=UPDATE, network=item)
            )
        # Files and networks first, so that the agent has them before it prepares the tasks that use them.
        files = [c for c in self._pending.values() if c.action == UPDATE]
        self._pending = {}
        changes = files + [dispatcher_pb2.AssignmentChange(action=UPDATE, task=t) for t in tasks]
        metrics.ASSIGNMENT_BATCH.observe(len(changes))
        yield dispatcher_pb2.AssignmentsMessage(
            type=dispatcher_pb2.AssignmentsMessage.COMPLETE, applies_to=0, results_in=self._seq, changes=changes
        )
        while True:
            await self._wake.wait()
            if self._closed is not None:
                raise self._closed
            await self._settle()
            self._wake.clear()
            if self._closed is not None:
                raise self._closed
            pending, self._pending = self._pending, {}
            if not pending:
                continue
            # Files first (new tasks need them); a withdrawn file after the tasks that used it are gone.
            ordered = sorted(pending.values(), key=_delivery_order)
            metrics.ASSIGNMENT_BATCH.observe(len(ordered))
            self._seq += 1
            yield dispatcher_pb2.AssignmentsMessage(
                type=dispatcher_pb2.AssignmentsMessage.INCREMENTAL,
                applies_to=self._seq - 1,
                results_in=self._seq,
                changes=ordered,
            )

    async def _settle(self) -> None:
        """Wait for a short quiet gap so a burst of changes goes out as one message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.assignments_debounce * 10
        while len(self._pending) < self._settings.assignments_batch_max and loop.time() < deadline:
            self._wake.clear()
            try:
                async with asyncio.timeout(self._settings.assignments_debounce):
                    await self._wake.wait()
            except TimeoutError:
                return


def _withdrawn(kind: str, item_id: str) -> dispatcher_pb2.AssignedFile | dispatcher_pb2.AssignedRegistryAuth:
    """What a REMOVE of a file (or of registry credentials) carries: the ID alone."""
    if kind == "registry_auth":
        return dispatcher_pb2.AssignedRegistryAuth(id=item_id)
    return dispatcher_pb2.AssignedFile(id=item_id)


def _delivery_order(change: dispatcher_pb2.AssignmentChange) -> int:
    is_file = change.WhichOneof("item") != "task"
    if is_file:
        return 0 if change.action == UPDATE else 2
    return 1
