"""The task reaper: deletes tasks that are no longer needed.

Deleting a task from the store is what makes its node remove the container,
so this loop decides when containers disappear:
- tasks to be removed (scale-down, deleted service) once they have stopped,
  never started, or sit on a node that is DOWN or gone (the agent removes the
  container when it comes back and finds the task gone);
- finished tasks beyond the cluster's task history limit per slot, oldest first.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.keys import Kind
from shoal.units import from_timestamp
from shoal.v1 import objects_pb2, types_pb2


def finished(task: objects_pb2.Task) -> bool:
    """True if the task will never run (again): it ended, or was stopped before it was assigned."""
    return task.status.state >= states.COMPLETE or (
        task.desired_state > states.RUNNING and task.status.state < states.ASSIGNED
    )


def node_lost(node: objects_pb2.Node | None) -> bool:
    """True if the node is gone or DOWN: its tasks to be removed need not wait for it to stop them."""
    return node is None or node.status.state == types_pb2.NodeStatus.DOWN


def reapable(
    tasks: Iterable[objects_pb2.Task], nodes: dict[str, objects_pb2.Node], history: int
) -> list[objects_pb2.Task]:
    """The tasks of one service to delete now."""
    out = []
    by_slot: dict[tuple[int, str], list[objects_pb2.Task]] = collections.defaultdict(list)
    for t in tasks:
        if t.desired_state >= states.REMOVE:
            if finished(t) or node_lost(nodes.get(t.node_id)):
                out.append(t)
        elif t.desired_state > states.RUNNING and finished(t):
            by_slot[(t.slot, t.node_id if t.slot == 0 else "")].append(t)
    if history >= 0:
        for old in by_slot.values():
            # Keep enough to count restart attempts after a failover (max_attempts + 1).
            attempts = max(t.spec.restart.max_attempts for t in old)
            keep = max(history, attempts + 1 if attempts else 0)
            if len(old) > keep:
                old.sort(key=lambda t: from_timestamp(t.status.timestamp))
                out.extend(old[: len(old) - keep])
    return out


def concerns_reaper(task: objects_pb2.Task) -> bool:
    """True if `reapable` may pick the task: it is to stop or be removed, or has finished.

    A task meant to run and not finished is never reaped, so the flood of its
    progress reports need not make the reaper look at its service again.
    """
    return task.desired_state > states.RUNNING or task.status.state >= states.COMPLETE


class Reaper:
    """The loop: look again at services whose tasks changed; delete what `reapable` says."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings, default_history: int) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._default_history = default_history

    @property
    def history(self) -> int:
        cluster = self._cache.cluster
        return cluster.task_history_limit if cluster is not None else self._default_history

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = set(self._cache.tasks_by_service)
        while True:
            if dirty:
                await self._reap(dirty)
                dirty = set()
            for batch in await loops.gather(sub, self._settings):
                for change in batch.changes:
                    if change.kind is Kind.TASK and not change.deleted:
                        if concerns_reaper(change.new):  # type: ignore[arg-type]
                            dirty.add(change.obj.service_id)  # type: ignore[attr-defined]
                    elif change.kind is Kind.NODE and node_lost(change.new):  # type: ignore[arg-type]
                        # Only a lost node frees tasks for removal (every re-registration rewrites the node).
                        dirty.update(
                            t.service_id
                            for t in self._cache.tasks_of_node(change.obj.id)  # type: ignore[attr-defined]
                            if t.desired_state >= states.REMOVE
                        )
                    elif change.kind is Kind.CLUSTER:
                        dirty.update(self._cache.tasks_by_service)

    async def _reap(self, service_ids: set[str]) -> None:
        start = time.perf_counter()
        doomed = []
        slicer = loops.Slicer()
        for sid in service_ids:
            await slicer.tick()
            doomed.extend(reapable(self._cache.tasks_of_service(sid), self._cache.nodes, self.history))
        metrics.LOOP_DURATION.labels("reaper").observe(time.perf_counter() - start)
        if doomed:
            await self._writer.commit_each([w.delete(t) for t in doomed])
