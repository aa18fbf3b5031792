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
from collections.abc import Generator, Mapping, Sequence
from typing import NoReturn, cast

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
    steps = planning(service, tasks, nodes, now, cluster)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


#: Slots `planning` looks at between two of its pauses.
SLOTS_PER_STEP = 100


def planning(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
    cluster: objects_pb2.Cluster | None = None,
) -> Generator[None, None, Plan]:
    """`plan`, pausing (yielding) every `SLOTS_PER_STEP` slots; its return value is the plan.

    The orchestrator gives the event loop a turn at the pauses: a service of a
    thousand tasks took 4 ms to plan on an idle machine, 15-30 ms on a busy one,
    and every API call waited it out. `tasks` and `service` are the caller's
    snapshot; if a node changes during a pause, the slots planned before it saw
    the older node, the node's change makes the service planned again, and the
    writes compare versions, so a decision made on the older view cannot land
    over a newer task.
    """
    p = Plan()
    by_slot = slots.group(tasks)
    current: dict[int, objects_pb2.Task] = {}
    keepers: dict[int, objects_pb2.Task | None] = {}
    views = {}
    for n, (slot, slot_tasks) in enumerate(by_slot.items(), 1):
        if n % SLOTS_PER_STEP == 0:
            yield
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
    for n, (slot, cur) in enumerate(current.items(), 1):
        if n % SLOTS_PER_STEP == 0:
            yield
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
            ops: list[w.Op] = [set_desired(cur, states.SHUTDOWN)]
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


def _band(state: int) -> int:
    """States `plan` cannot tell apart: waiting for a node; assigned but not yet starting; any other on its own."""
    if state == states.PENDING:
        return -1
    if states.ASSIGNED <= state < states.STARTING:
        return -2
    return state


def status_progress(old: objects_pb2.Task | None, new: objects_pb2.Task | None) -> bool:
    """True for a change `plan` cannot see: an agent's report (or a scheduler's note) that moves the
    task within a band of states that every rule treats alike, with nothing else changed that it reads.

    Every rule of `plan` and of the rollout compares a task's state with PENDING, ASSIGNED, STARTING,
    RUNNING or a final state, never with the steps in between (ACCEPTED, PREPARING, READY), so at a
    thousand tasks a service, the reports of tasks on their way to STARTING need not re-plan it: the
    pass that the next real change (or a timer) brings reads them from the cache anyway.
    """
    if old is None or new is None:
        return False
    return (
        old.desired_state == new.desired_state
        and old.node_id == new.node_id
        and old.spec_version == new.spec_version
        and _band(old.status.state) == _band(new.status.state)
    )


class ReplicatedOrchestrator:
    """The loop: re-plan the services that changes touch, write the plans.

    A service is planned whole (`plan`) when it, a node under it or a timer
    changed, or when one of its tasks was created or deleted, or was told to
    run or stop. The changes the agents and the scheduler make to tasks of a
    *settled* service (its last whole plan landed in full, and no rollout or
    automatic rebalance is under way) only concern their own slots, and only
    those are planned again (`plan_slots`): at a thousand tasks a service,
    that is the difference between planning one slot and planning a thousand
    for every report.
    """

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._timers: dict[str, float] = {}
        #: Services whose last whole plan landed in full: their slots may be planned alone.
        self._settled: set[str] = set()

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        dirty = set(self._cache.services) | set(self._cache.tasks_by_service)
        dirty_slots: dict[str, set[int]] = {}
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            dirty |= {sid for sid, at in self._timers.items() if at <= now}
            if dirty or dirty_slots:
                await self._reconcile(dirty, dirty_slots)
                dirty, dirty_slots = set(), {}
            wake_at = min(self._timers.values(), default=None)
            loop_wake = None if wake_at is None else loop.time() + (wake_at - time.time())
            for batch in await loops.gather(sub, self._settings, loop_wake):
                for change in batch.changes:
                    slot = self._slot_only(change)
                    if slot is not None and self._nothing_to_plan(change.new):  # type: ignore[arg-type]
                        continue
                    if slot is not None:
                        dirty_slots.setdefault(change.obj.service_id, set()).add(slot)  # type: ignore[attr-defined]
                    else:
                        dirty |= self._affected(change)

    def _slot_only(self, change: Change) -> int | None:
        """The slot, if this task change concerns only its slot of a settled service; else None.

        A task of a settled service is created by this orchestrator's own plans (the
        leadership fence keeps out anyone else's), in the slot that plan meant it for.
        """
        if change.kind is not Kind.TASK or change.new is None:
            return None
        old, new = cast(objects_pb2.Task | None, change.old), cast(objects_pb2.Task, change.new)
        if (
            not new.slot
            or new.service_id not in self._settled
            or (old is not None and old.desired_state != new.desired_state)
        ):
            return None
        return new.slot

    def _nothing_to_plan(self, task: objects_pb2.Task) -> bool:
        """True if planning this task's slot could only find it on its way: the slot's only task, of the
        service's spec version, meant to run, and either waiting for a node or placed (not ended) on a
        node that is up and not drained.

        `plan_slots` would write nothing for it (`_replace_or_restart` acts on an ended task, a lost or
        drained node or a delayed start; `moves.view` on older tasks in the slot), nor send the service
        back to `plan`. Anything that would change that (a node going down or drained, a task added to
        the slot, the task ending, a new spec) is a change of its own, and plans the slot or the service
        then. The creations and status reports of a thousand tasks a second do not each plan a slot.
        """
        state = task.status.state
        if task.desired_state != states.RUNNING or not states.PENDING <= state < states.COMPLETE:
            return False
        if len(self._cache.tasks_by_slot.get((task.service_id, task.slot), ())) != 1:
            return False
        service = self._cache.services.get(task.service_id)
        if service is None or task.spec_version != service.spec_version:
            return False
        return state == states.PENDING or slots.node_usable(self._cache.nodes.get(task.node_id))

    def _affected(self, change: Change) -> set[str]:
        if change.kind is Kind.TASK:
            if status_progress(change.old, change.new):  # type: ignore[arg-type]
                return set()
            return {change.obj.service_id}  # type: ignore[attr-defined]
        if change.kind is Kind.SERVICE:
            new = change.new
            # steady() first: it is a few field reads, labels_only copies both services.
            if new is not None and steady(new, self._cache.cluster) and labels_only(change.old, new):  # type: ignore[arg-type]
                return set()
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

    async def _reconcile(self, service_ids: set[str], dirty_slots: Mapping[str, set[int]]) -> None:
        start = time.perf_counter()
        now = time.time()
        cluster = self._cache.cluster
        batch = _Batch()
        writes: list[asyncio.Task[set[str]]] = []
        wholes = set(service_ids)
        todo: list[tuple[str, set[int] | None]] = [(sid, None) for sid in service_ids]
        todo += [(sid, slot_set) for sid, slot_set in dirty_slots.items() if sid not in service_ids]
        slicer = loops.Slicer()
        try:
            for sid, slot_set in todo:
                await slicer.tick()
                p = None
                if slot_set is None:
                    self._timers.pop(sid, None)
                else:
                    service = self._cache.services.get(sid)
                    if service is not None and sid in self._settled and steady(service, cluster):
                        by_slot = {n: self._cache.tasks_of_slot(sid, n) for n in slot_set}
                        p = plan_slots(service, by_slot, self._cache.nodes, now)
                if p is None:
                    self._settled.discard(sid)
                    wholes.add(sid)
                    p = await self._plan_whole(sid, now, slicer)
                if p is not None:
                    batch.add(sid, p.groups)
                    self._wake(sid, p)
                if batch.ops >= WRITE_AHEAD:
                    # Write while planning the rest: the scheduler starts on the first services'
                    # tasks, and the event loop (leader lease, heartbeats) gets a turn.
                    writes.append(asyncio.create_task(self._write(batch)))
                    batch = _Batch()
                    await asyncio.sleep(0)
            metrics.LOOP_DURATION.labels("orchestrator").observe(time.perf_counter() - start)
            writes.append(asyncio.create_task(self._write(batch)))
            lost = set().union(*await asyncio.gather(*writes))
        finally:
            for job in writes:
                job.cancel()
        self._settled -= lost
        # A whole plan that landed in full leaves the service as its spec says: settled.
        self._settled |= {sid for sid in wholes if sid not in lost and sid in self._cache.services}

    async def _write(self, batch: _Batch) -> set[str]:
        """Write a batch of groups; the services of the groups that did not land."""
        if not batch.groups:
            return set()
        landed = await self._writer.commit_groups(batch.groups)
        log.debug("orchestrator wrote %d of %d groups", sum(landed), len(batch.groups))
        return {sid for ok, sid in zip(landed, batch.owners, strict=True) if not ok}

    def _wake(self, sid: str, p: Plan) -> None:
        if p.wake_at is not None:
            known = self._timers.get(sid)
            self._timers[sid] = p.wake_at if known is None else min(known, p.wake_at)

    async def _plan_whole(self, sid: str, now: float, slicer: loops.Slicer) -> Plan | None:
        service = self._cache.services.get(sid)
        tasks = self._cache.tasks_of_service(sid)
        if service is None:
            return plan_orphans(tasks)
        if service.spec.WhichOneof("mode") != "replicated":
            return None
        steps = planning(service, tasks, self._cache.nodes, now, self._cache.cluster)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await slicer.tick()



#: Operations written while a pass goes on, once this many are planned.
WRITE_AHEAD = 2000


@dataclasses.dataclass
class _Batch:
    """Groups of writes and the service each belongs to."""

    groups: list[list[w.Op]] = dataclasses.field(default_factory=list)
    owners: list[str] = dataclasses.field(default_factory=list)
    ops: int = 0

    def add(self, sid: str, groups: list[list[w.Op]]) -> None:
        self.groups.extend(groups)
        self.owners.extend(sid for _ in groups)
        self.ops += sum(len(g) for g in groups)


def labels_only(old: objects_pb2.Service | None, new: objects_pb2.Service | None) -> bool:
    """True if `new` differs from `old` in the service's labels only, besides what every update
    writes (its version, and the spec it replaced kept for a rollback).

    No plan reads those while the service is steady, so such an update need
    not re-plan it (Kubernetes' controllers skip metadata-only changes the same
    way): at a thousand tasks a service, a plan costs milliseconds of the
    event loop for every `service update --label-add`.
    """
    if old is None or new is None:
        return False
    a, b = objects_pb2.Service(), objects_pb2.Service()
    a.CopyFrom(old)
    b.CopyFrom(new)
    for service in (a, b):
        service.ClearField("meta")
        service.spec.ClearField("labels")
        service.ClearField("previous_spec")
        service.ClearField("previous_spec_version")
    return a == b


def steady(service: objects_pb2.Service, cluster: objects_pb2.Cluster | None) -> bool:
    """True if a task's own changes concern only its slot: no rollout or rebalance under way, none automatic."""
    state = service.update_status.state
    return (
        service.spec.WhichOneof("mode") == "replicated"
        and state not in rollout.UPDATE_IN_PROGRESS
        and state != UpdateStatus.REBALANCE_STARTED
        and not (cluster is not None and cluster.auto_rebalance)
    )


def plan_slots(
    service: objects_pb2.Service,
    slot_tasks: Mapping[int, Sequence[objects_pb2.Task]],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> Plan | None:
    """`plan` for some slots of a steady service whose slot count is right; None if the service needs `plan`.

    What `plan` does beyond the slots (scaling, rollouts) depends only on
    which slots hold a runnable task and on their spec versions: a slot whose
    current task is out of date, or that holds no runnable task, sends the
    service back to `plan`.
    """
    p = Plan()
    for slot, tasks in slot_tasks.items():
        live = [t for t in tasks if t.desired_state < states.REMOVE]
        v = moves.view(service, live, nodes, now)
        if v is None or v.current.spec_version != service.spec_version:
            return None
        p.groups.extend([set_desired(t, states.SHUTDOWN)] for t in v.stop)
        if v.wake_at is not None:
            p.wake(v.wake_at)
        _replace_or_restart(p, service, slot, v.current, v.keeper, live, nodes, now)
    p.groups = _one_write_per_object(p.groups)
    return p
