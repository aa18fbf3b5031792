"""The replicated orchestrator: N slots per replicated service, each with one up-to-date task.

`plan` is pure: given a service, its tasks and the nodes, it returns groups of
writes (each group atomic: a stopped task and its replacement land together or
not at all) and when it wants to be woken for a delayed start. The loop
re-plans every service touched by a change, debounced, and writes all groups
in bounded transactions. A plan that lost a race is simply re-planned when the
change that beat it arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics, rollout
from shoal.controller.orchestrator import moves, rebalance, restart, slots, update
from shoal.controller.orchestrator.tasks import new_task, set_desired
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.units import from_timestamp as seconds
from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2

log = logging.getLogger(__name__)

Origin = objects_pb2.Task.Origin
UpdateStatus = types_pb2.UpdateStatus


@dataclasses.dataclass
class Plan:
    """Writes for one service, and the wall-clock time it wants another look (None: no timer)."""

    groups: list[list[w.Op]] = dataclasses.field(default_factory=list)
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def plan(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
    cluster: objects_pb2.Cluster | None = None,
) -> Plan:
    """What to write so that `service`'s slots converge on its spec (and its rollout moves on)."""
    p = Plan()
    by_slot = slots.group(tasks)
    current: dict[int, objects_pb2.Task] = {}
    keepers: dict[int, objects_pb2.Task | None] = {}
    views = {}
    for slot, slot_tasks in by_slot.items():
        v = moves.view(service, slot_tasks, nodes, now)
        if v is not None:
            views[slot] = v
            current[slot], keepers[slot] = v.current, v.keeper

    replicas = max(0, service.spec.replicated.replicas)
    if len(current) > replicas:
        for slot in slots.scale_down_victims(current, len(current) - replicas):
            p.groups.append([set_desired(t, states.REMOVE) for t in by_slot[slot]])
            del current[slot], views[slot]
    for v in views.values():
        p.groups.extend([set_desired(t, states.SHUTDOWN)] for t in v.stop)
        if v.wake_at is not None:
            p.wake(v.wake_at)

    touched = set()
    for slot, cur in current.items():
        if _replace_or_restart(p, service, slot, cur, keepers.get(slot), by_slot[slot], nodes, now):
            touched.add(slot)

    missing = replicas - len(current)
    if missing > 0:
        p.groups.extend([new_task(service, n, now=now)] for n in slots.free_slots(current, missing))

    _rollout(p, service, current, keepers, tasks, nodes, cluster, touched, now)
    p.groups = _one_write_per_object(p.groups)
    return p


def _one_write_per_object(groups: list[list[w.Op]]) -> list[list[w.Op]]:
    """Drop groups that write an object an earlier group writes: a transaction may not name a key twice."""
    seen: set[str] = set()
    out = []
    for group in groups:
        ids = {op.obj.id if isinstance(op, w.Put) else getattr(op, "obj_id", "") for op in group}  # type: ignore[attr-defined]
        if ids & seen:
            continue
        seen |= ids
        out.append(group)
    return out


def _rollout(
    p: Plan,
    service: objects_pb2.Service,
    current: dict[int, objects_pb2.Task],
    keepers: dict[int, objects_pb2.Task | None],
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    cluster: objects_pb2.Cluster | None,
    touched: set[int],
    now: float,
) -> None:
    """The update, rollback or rebalance in progress: replacements, moves, and one write of the service."""
    by_slot = slots.group(tasks)
    handing_over = {
        slot
        for slot, cur in current.items()
        if any(t is not cur and slots.may_be_alive(t, nodes) for t in by_slot.get(slot, ()))
    }
    d = update.decide(service, current, tasks, now, handing_over)
    new_service: objects_pb2.Service | None = None
    if d.rollback:
        new_service = rollout.rolled_back(service, now=now, message=d.rollback)
    elif d.status is not None:
        new_service = _with_status(service, d.status)
    for slot, start_first in d.replace.items():
        if slot in touched:
            continue
        cur = current[slot]
        if start_first:
            p.groups.append([new_task(service, slot, now=now, origin=Origin.UPDATE)])
        else:
            ops = [set_desired(cur, states.SHUTDOWN)]
            ops.append(new_task(service, slot, now=now, desired=states.READY, start_after=now, origin=Origin.UPDATE))
            p.groups.append(ops)
    if d.wake_at is not None:
        p.wake(d.wake_at)
    state = service.update_status.state
    if new_service is None and state == UpdateStatus.REBALANCE_STARTED:
        r = rebalance.decide(service, current, keepers, tasks, nodes, now, handing_over)
        for slot in r.replace:
            if slot not in touched:
                p.groups.append([new_task(service, slot, now=now, origin=Origin.MOVE)])
        if r.status is not None:
            new_service = _with_status(service, r.status)
        if r.wake_at is not None:
            p.wake(r.wake_at)
    elif new_service is None:
        why = rebalance.auto_start(service, current, keepers, nodes, cluster)
        if why:
            new_service = _with_status(service, rollout.status(UpdateStatus.REBALANCE_STARTED, now, why))
            new_service.rebalanced_at.CopyFrom(to_timestamp(now))
    if new_service is not None:
        p.groups.append([w.put(new_service)])


def _with_status(service: objects_pb2.Service, status: types_pb2.UpdateStatus) -> objects_pb2.Service:
    new = objects_pb2.Service()
    new.CopyFrom(service)
    new.update_status.CopyFrom(status)
    return new


def _replace_or_restart(
    p: Plan,
    service: objects_pb2.Service,
    slot: int,
    cur: objects_pb2.Task,
    keeper: objects_pb2.Task | None,
    slot_tasks: list[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> bool:
    """Handle a lost or drained node, an ended task or a due delayed start; True if the slot was acted on."""
    state = cur.status.state
    if cur.node_id and states.ASSIGNED <= state < states.COMPLETE:
        node = nodes.get(cur.node_id)
        if node is None or node.status.state == slots.DOWN:
            # The node is lost: nothing to keep running, replace at once.
            p.groups.append([set_desired(cur, states.SHUTDOWN), new_task(service, slot, now=now)])
            return True
        if node.spec.availability == slots.DRAIN:
            if state == states.RUNNING:
                # Start the replacement elsewhere first; `moves` stops this one once it runs.
                p.groups.append([new_task(service, slot, now=now, origin=Origin.MOVE)])
            else:
                p.groups.append([set_desired(cur, states.SHUTDOWN), new_task(service, slot, now=now)])
            return True
    if state >= states.COMPLETE:
        if not restart.should_restart(cur, slot_tasks, now, since=_rollout_start(service)):
            return False
        due = now + restart.delay(cur)
        new = new_task(service, slot, now=now, desired=states.READY, start_after=due, origin=Origin.RESTART)
        p.groups.append([set_desired(cur, states.SHUTDOWN), new])
        p.wake(due)
        return True
    if cur.desired_state == states.READY:
        due = seconds(cur.start_after)
        if due > now:
            p.wake(due)
        elif not any(slots.may_be_alive(t, nodes) for t in slot_tasks if t is not cur and t is not keeper):
            p.groups.append([set_desired(cur, states.RUNNING, start_after=now)])
        return True
    return False


def _rollout_start(service: objects_pb2.Service) -> float:
    """When the service's spec version became current, if an update or rollback recorded it (else 0)."""
    status = service.update_status
    if status.state in rollout.UPDATE_IN_PROGRESS + rollout.UPDATE_PAUSED + (
        UpdateStatus.COMPLETED,
        UpdateStatus.ROLLBACK_COMPLETED,
    ):
        return seconds(status.started_at)
    return 0.0


def plan_orphans(tasks: Sequence[objects_pb2.Task]) -> Plan:
    """Tasks of a deleted service: every one is to be removed."""
    return Plan(groups=[[set_desired(t, states.REMOVE)] for t in tasks if t.desired_state < states.REMOVE])


class ReplicatedOrchestrator:
    """The loop: re-plan the services that changes touch, write the plans."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._timers: dict[str, float] = {}

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = set(self._cache.services) | set(self._cache.tasks_by_service)
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            dirty |= {sid for sid, at in self._timers.items() if at <= now}
            if dirty:
                await self._reconcile(dirty)
                dirty = set()
            wake_at = min(self._timers.values(), default=None)
            loop_wake = None if wake_at is None else loop.time() + (wake_at - time.time())
            for batch in await loops.gather(sub, self._settings, loop_wake):
                for change in batch.changes:
                    dirty |= self._affected(change)

    def _affected(self, change: Change) -> set[str]:
        if change.kind is Kind.TASK:
            return {change.obj.service_id}  # type: ignore[attr-defined]
        if change.kind is Kind.SERVICE:
            return {change.obj.id}  # type: ignore[attr-defined]
        if change.kind is Kind.NODE:
            old, new = change.old, change.new
            if (
                new is None
                or old is None
                or (
                    (old.status.state, old.spec.availability) != (new.status.state, new.spec.availability)  # type: ignore[attr-defined]
                )
            ):
                on_node = {t.service_id for t in self._cache.tasks_of_node(change.obj.id)}  # type: ignore[attr-defined]
                return on_node | self._to_rebalance(new)  # type: ignore[arg-type]
        if change.kind is Kind.CLUSTER:
            old_auto = change.old is not None and change.old.auto_rebalance  # type: ignore[attr-defined]
            if change.new is not None and change.new.auto_rebalance and not old_auto:  # type: ignore[attr-defined]
                return set(self._cache.services)
        return set()

    def _to_rebalance(self, node: objects_pb2.Node | None) -> set[str]:
        """Every service, when a node became ready or active and the cluster rebalances automatically."""
        cluster = self._cache.cluster
        if node is None or cluster is None or not cluster.auto_rebalance:
            return set()
        if node.status.state != slots.READY or node.spec.availability != types_pb2.NodeSpec.ACTIVE:
            return set()
        return set(self._cache.services)

    async def _reconcile(self, service_ids: set[str]) -> None:
        start = time.perf_counter()
        now = time.time()
        groups: list[list[w.Op]] = []
        for sid in service_ids:
            self._timers.pop(sid, None)
            service = self._cache.services.get(sid)
            tasks = self._cache.tasks_of_service(sid)
            if service is None:
                p = plan_orphans(tasks)
            elif service.spec.WhichOneof("mode") == "replicated":
                p = plan(service, tasks, self._cache.nodes, now, self._cache.cluster)
            else:
                continue
            groups.extend(p.groups)
            if p.wake_at is not None:
                self._timers[sid] = p.wake_at
        metrics.LOOP_DURATION.labels("orchestrator").observe(time.perf_counter() - start)
        if groups:
            landed = await self._writer.commit_groups(groups)
            log.debug("orchestrator wrote %d of %d groups", sum(landed), len(groups))
