"""What to write so that a replicated service's slots converge on its spec: N slots, each with one
up-to-date task, and its rollout (update, rollback, rebalance) moving on.

`plan` is pure: given a service, its tasks and the nodes, it returns groups of
writes (each group atomic: a stopped task and its replacement land together or
not at all) and when it wants to be woken for a delayed start. `plan_slots`
does the same for some slots of a steady service. The loop that calls them is
replicated.py.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence

from shoal import states
from shoal.controller import rollout
from shoal.controller.orchestrator import moves, rebalance, restart, slots, update
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.orchestrator.tasks import new_task, set_desired
from shoal.controller.store import writer as w
from shoal.units import from_timestamp as seconds
from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2

Origin = objects_pb2.Task.Origin
UpdateStatus = types_pb2.UpdateStatus


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
