"""Start-first hand-offs inside a slot: the new task starts while the old one keeps running.

Three things replace a running task this way:
- a start-first update (`--update-order start-first`),
- a drained node: its tasks' replacements start elsewhere first, so a drain
  costs no capacity (Swarm stops them at once: docker/docs#9917),
- a rebalance move (`rebalance`).

A slot then holds two runnable tasks: the newest is the slot's *current*
task, the older one still running is its *keeper*. The keeper is told to
stop once the current task runs. If the new task does not make it, what
happens depends on why it was made: an update follows its failure action (a
rollback gets the keeper back as the slot's task, so nothing restarts), a
drain stops the keeper anyway after the monitor window (the node must empty),
a rebalance move is undone (the keeper stays, the new task is stopped).
`view` decides all of this from the slot's tasks alone, on every pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from shoal import states
from shoal.controller import rollout
from shoal.controller.orchestrator import update
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2, types_pb2

Origin = objects_pb2.Task.Origin
DRAIN = types_pb2.NodeSpec.DRAIN
DOWN = types_pb2.NodeStatus.DOWN


@dataclasses.dataclass
class SlotView:
    """A slot's tasks as the orchestrator treats them this pass."""

    current: objects_pb2.Task
    #: An older task kept running until `current` runs.
    keeper: objects_pb2.Task | None = None
    #: Runnable tasks to tell to stop (duplicates, a keeper no longer needed, a move undone).
    stop: list[objects_pb2.Task] = dataclasses.field(default_factory=list)
    wake_at: float | None = None


def created(task: objects_pb2.Task) -> float:
    return seconds(task.meta.created_at)


def alive_on(task: objects_pb2.Task, nodes: Mapping[str, objects_pb2.Node]) -> bool:
    """True if the task runs on a node that still reports (not DOWN, not gone)."""
    node = nodes.get(task.node_id)
    return task.status.state == states.RUNNING and node is not None and node.status.state != DOWN


def on_drained_node(task: objects_pb2.Task, nodes: Mapping[str, objects_pb2.Node]) -> bool:
    node = nodes.get(task.node_id)
    return node is not None and node.spec.availability == DRAIN


def view(
    service: objects_pb2.Service,
    slot_tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> SlotView | None:
    """The slot's current task, its keeper if one is kept, and the runnable tasks to stop; None if none runnable."""
    runnable = sorted((t for t in slot_tasks if t.desired_state <= states.RUNNING), key=created)
    if not runnable:
        return None
    current, older = runnable[-1], runnable[:-1]
    candidate = next((t for t in reversed(older) if alive_on(t, nodes)), None)
    v = SlotView(current=current)
    if candidate is not None and not _handed_off(current):
        chain = [t for t in slot_tasks if created(t) > created(candidate)]
        if _undo(service, candidate, current, chain, nodes, now):
            v.current = candidate
            v.stop = [t for t in runnable if t is not candidate]
            return v
        keep, until = _keep(service, candidate, current, chain, nodes, now)
        if until is not None:
            v.wake_at = until
        if keep:
            v.keeper = candidate
    v.stop = [t for t in older if t is not v.keeper]
    return v


def _handed_off(current: objects_pb2.Task) -> bool:
    """True once the new task runs: the keeper may go."""
    return current.status.state == states.RUNNING


def _first(chain: Sequence[objects_pb2.Task]) -> objects_pb2.Task:
    return min(chain, key=created)


def _keep(
    service: objects_pb2.Service,
    keeper: objects_pb2.Task,
    current: objects_pb2.Task,
    chain: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> tuple[bool, float | None]:
    """Whether the older running task stays for now, and when to look again."""
    if not chain:
        return False, None
    first = _first(chain)
    cfg = rollout.effective_config(service)
    monitor = update.monitor_of(cfg) or update.DEFAULT_MONITOR
    if on_drained_node(keeper, nodes):
        # The node must empty: wait for the replacement at most one monitor window
        # (longer while its health check decides).
        if any(update.waits_for_health(t) for t in chain):
            return True, None
        until = update.told_at(first) + monitor
        return now < until, until if now < until else None
    if first.origin == Origin.MOVE:
        return True, None  # a rebalance move: `_undo` takes it back if it fails
    if (
        first.origin == Origin.UPDATE
        and keeper.spec_version != current.spec_version
        and cfg.order == types_pb2.UpdateConfig.START_FIRST
    ):
        if cfg.failure_action == types_pb2.UpdateConfig.CONTINUE and any(
            update.failure(t, update.monitor_of(cfg), now) for t in chain if t.origin == Origin.UPDATE
        ):
            return False, None  # the update goes on without this slot's old task
        return True, None
    return False, None


def _undo(
    service: objects_pb2.Service,
    keeper: objects_pb2.Task,
    current: objects_pb2.Task,
    chain: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> bool:
    """True if the hand-off is to be undone: the older task is again what the slot should run."""
    if not chain or on_drained_node(keeper, nodes):
        return False
    if keeper.spec_version == service.spec_version != current.spec_version:
        return True  # rolled back while the new task was starting
    first = _first(chain)
    if first.origin == Origin.MOVE and keeper.spec_version == service.spec_version:
        monitor = update.monitor_of(rollout.effective_config(service)) or update.DEFAULT_MONITOR
        return any(update.failure(t, monitor, now) for t in chain if t.origin == Origin.MOVE)
    return False
