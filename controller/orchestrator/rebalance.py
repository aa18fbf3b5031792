"""Rebalancing: move a replicated service's tasks towards an even spread over its nodes.

Swarm never moves a running task, so a node that comes back after
maintenance stays empty (moby/swarmkit#310). A rebalance (`swarmctl service
rebalance`, or automatically when a node becomes ready or active and the
cluster's `auto_rebalance` is on) moves tasks from the nodes that hold the
most of the service to those that hold the fewest, until no two eligible
nodes differ by more than one task. It uses the update settings: at most
`parallelism` moves at a time, `delay` apart, each watched for `monitor`.
A move is start-first (`moves`): the new task is scheduled (the scheduler
puts it on the emptiest node) and the old one stops once it runs; a move
whose task fails is undone, and the failure action decides whether the
rebalance goes on. Each slot moves at most once per rebalance, so a
rebalance always ends, even when the scheduler cannot place tasks evenly.

Eligible nodes are READY, ACTIVE and match the service's constraints; paused
and drained nodes are left out (a paused node keeps its tasks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

from shoal import errors, states, units
from shoal.controller import constraint, rollout
from shoal.controller.orchestrator import update
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2, types_pb2

UpdateStatus = types_pb2.UpdateStatus
Origin = objects_pb2.Task.Origin
READY = types_pb2.NodeStatus.READY
ACTIVE = types_pb2.NodeSpec.ACTIVE


def eligible_nodes(
    service: objects_pb2.Service, nodes: Mapping[str, objects_pb2.Node]
) -> list[objects_pb2.Node]:
    """The nodes the service's tasks may be spread over: READY, ACTIVE, constraints met."""
    try:
        rules = constraint.parse_all(list(service.spec.task.placement.constraints))
    except errors.InvalidArgument:
        return []
    return [
        n
        for n in nodes.values()
        if n.status.state == READY and n.spec.availability == ACTIVE and all(c.matches(n) for c in rules)
    ]


def _counts(
    current: Mapping[int, objects_pb2.Task], eligible: Sequence[objects_pb2.Node]
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Tasks of the service per eligible node, and the slots that may move off each."""
    counts = {n.id: 0 for n in eligible}
    movable: dict[str, list[int]] = {n.id: [] for n in eligible}
    for slot, cur in current.items():
        if cur.node_id in counts and states.ASSIGNED <= cur.status.state <= states.RUNNING:
            counts[cur.node_id] += 1
            if cur.status.state == states.RUNNING:
                movable[cur.node_id].append(slot)
    return counts, movable


def choose(
    current: Mapping[int, objects_pb2.Task],
    keepers: Mapping[int, objects_pb2.Task | None],
    eligible: Sequence[objects_pb2.Node],
    moved: set[int],
    budget: int,
) -> list[int]:
    """Up to `budget` slots to move, each from the fullest node towards the emptiest."""
    counts, movable = _counts(current, eligible)
    for node_id, slots in movable.items():
        movable[node_id] = sorted(s for s in slots if s not in moved and keepers.get(s) is None)
    out: list[int] = []
    while len(out) < budget and len(counts) > 1:
        high = max(counts, key=lambda n: (counts[n], n))
        low = min(counts, key=lambda n: (counts[n], n))
        if counts[high] - counts[low] <= 1:
            break
        if not movable[high]:
            del counts[high]  # nothing of it may move: balance the others
            continue
        out.append(movable[high].pop())
        counts[high] -= 1
        counts[low] += 1
    return out


def decide(
    service: objects_pb2.Service,
    current: Mapping[int, objects_pb2.Task],
    keepers: Mapping[int, objects_pb2.Task | None],
    all_tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
    handing_over: Set[int] = frozenset(),
) -> update.Decision:
    """The moves to start now, and the rebalance's status; for a service in REBALANCE_STARTED.

    A move is in flight until its old task has stopped (`handing_over`), as in an update.
    """
    d = update.Decision()
    cfg = service.spec.update
    monitor = update.monitor_of(cfg) or update.DEFAULT_MONITOR
    mine = update.ours(all_tasks, service, Origin.MOVE)
    status = service.update_status
    failed = update.new_failures(mine, status, monitor, now)
    if failed:
        status = update.record(status, failed)
        d.status = status
        if update.too_many(status, cfg, service.spec.replicated.replicas) and (
            cfg.failure_action != types_pb2.UpdateConfig.CONTINUE
        ):
            d.status = _ended(status, UpdateStatus.REBALANCE_PAUSED, f"rebalance paused: {failed[-1][1]}", now)
            return d
    current_ids = {t.id for t in current.values()}
    in_flight, last_done, settle_at = 0, 0.0, 0.0
    for t in mine:
        if update.failure(t, monitor, now) is not None:
            last_done = max(last_done, update.failed_at(t, monitor))
        elif t.status.state >= states.RUNNING:
            last_done = max(last_done, update.ran_at(t))
            if t.status.state == states.RUNNING:
                settle_at = max(settle_at, update.ran_at(t) + monitor)
                in_flight += t.id in current_ids and t.slot in handing_over
        elif t.id in current_ids and t.desired_state <= states.RUNNING:
            in_flight += 1
            if not update.waits_for_health(t):
                d.wake(update.told_at(t) + monitor)
    eligible = eligible_nodes(service, nodes)
    moved = {t.slot for t in mine}
    wanted = choose(current, keepers, eligible, moved, len(current))
    delay = units.from_duration(cfg.delay)
    not_before = last_done + delay if delay and last_done else 0.0
    if wanted:
        if now < not_before:
            d.wake(not_before)
            return d
        budget = len(wanted) if cfg.parallelism == 0 else int(cfg.parallelism) - in_flight
        d.replace = {slot: True for slot in choose(current, keepers, eligible, moved, max(0, budget))}
    elif in_flight == 0:
        if now < settle_at:
            d.wake(settle_at)
        else:
            n = len({t.slot for t in mine if update.failure(t, monitor, now) is None})
            d.status = _ended(status, UpdateStatus.REBALANCE_COMPLETED, f"rebalance completed: {_tasks(n)} moved", now)
    return d


def auto_start(
    service: objects_pb2.Service,
    current: Mapping[int, objects_pb2.Task],
    keepers: Mapping[int, objects_pb2.Task | None],
    nodes: Mapping[str, objects_pb2.Node],
    cluster: objects_pb2.Cluster | None,
) -> str:
    """Why an automatic rebalance starts now (the status message), or "" if it does not."""
    state = service.update_status.state
    if (
        cluster is None
        or not cluster.auto_rebalance
        or service.spec.WhichOneof("mode") != "replicated"
        or state in rollout.UPDATE_IN_PROGRESS
        or state in rollout.UPDATE_PAUSED
        or state == UpdateStatus.REBALANCE_STARTED
    ):
        return ""
    mark = max(seconds(service.rebalanced_at), seconds(service.meta.created_at))
    eligible = eligible_nodes(service, nodes)
    fresh = sorted((n for n in eligible if seconds(n.meta.updated_at) > mark), key=lambda n: n.name)
    if not fresh or not choose(current, keepers, eligible, set(), 1):
        return ""
    return f"rebalance started: node {fresh[0].name} became ready"


def _tasks(n: int) -> str:
    return f"{n} task{'s' if n != 1 else ''}"


def _ended(status: types_pb2.UpdateStatus, state: int, message: str, now: float) -> types_pb2.UpdateStatus:
    new = UpdateStatus()
    new.CopyFrom(status)
    new.state = state  # type: ignore[assignment]
    new.message = message
    new.completed_at.CopyFrom(units.to_timestamp(now))
    return new
