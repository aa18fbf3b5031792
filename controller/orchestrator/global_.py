"""The global orchestrator's plan: one task of the service on every eligible node.

`plan` is pure, like the replicated one: given a service, its tasks and every
node, it returns groups of writes. Tasks are created with their node already
set (slot 0); the scheduler only checks that the node fits (resources) and
assigns them. Per node:

- no task and the node takes new tasks (READY, ACTIVE, constraints met): create one;
- the node is DOWN, drained, no longer meets the constraints: its task is shut
  down (it comes back when the node does); the node left the cluster: its
  tasks are removed;
- the task ended: the restart policy decides, as for a replicated slot, and the
  replacement starts on the same node after the restart delay;
- the task runs an older spec: rolling update, `update.parallelism` nodes at a
  time (0: all), `update.delay` apart (the `rollback` settings during a
  rollback), stop-first (the old task stops before the new one starts, so a
  node never runs two). Paused and not-ready nodes are updated once they take
  tasks again, so they never hold an update back. The update's monitor window
  and failure action apply to replicated services only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoal import states, units
from shoal.controller import rollout
from shoal.controller.orchestrator import restart
from shoal.controller.orchestrator.per_node import Eligibility, alive, by_node, remove_all, start_gate
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.orchestrator.tasks import new_task, set_desired
from shoal.controller.store import writer as w
from shoal.units import from_timestamp as seconds
from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2

UpdateState = types_pb2.UpdateStatus


def new_task_on(service: objects_pb2.Service, node_id: str, **kw: object) -> w.Put:
    """A creation of a task of `service` made for one node (slot 0)."""
    put = new_task(service, 0, **kw)  # type: ignore[arg-type]
    put.obj.node_id = node_id  # type: ignore[attr-defined]
    return put


def plan(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> Plan:
    """What to write so that every eligible node runs one up-to-date task of `service`."""
    p = Plan()
    rules = Eligibility(service.spec.task)
    current: dict[str, objects_pb2.Task] = {}
    grouped = by_node(tasks)
    for node_id, node_tasks in grouped.items():
        if node_id not in nodes:
            p.groups.extend(remove_all(node_tasks))
            continue
        runnable = [t for t in node_tasks if t.desired_state <= states.RUNNING]
        if runnable:
            current[node_id] = runnable[-1]
            # Two runnable tasks on a node should not happen; keep the newest.
            p.groups.extend([set_desired(t, states.SHUTDOWN)] for t in runnable[:-1])

    acted: set[str] = set()
    for node in nodes.values():
        cur = current.get(node.id)
        if not rules.keeps(node):
            if cur is not None and cur.status.state < states.COMPLETE:
                p.groups.append([set_desired(cur, states.SHUTDOWN)])
            current.pop(node.id, None)
        elif cur is None:
            if rules.takes_new(node):
                p.groups.append([fresh_task_on(service, node.id, grouped.get(node.id, []), now)])
        elif _restart_or_start(p, service, cur, grouped[node.id], rules.takes_new(node), now):
            acted.add(node.id)

    _rolling_update(p, service, current, grouped, nodes, rules, acted, now)
    return p


def fresh_task_on(service: objects_pb2.Service, node_id: str, history: Sequence[objects_pb2.Task], now: float) -> w.Put:
    """A new task for a node; staged (desired READY) while an older one may still run there.

    A node that comes back after being DOWN still runs the task that was shut
    down meanwhile until its agent hears of it: the new task starts only once
    that one has stopped, so a node never runs two.
    """
    if any(alive(t) for t in history):
        return new_task_on(service, node_id, now=now, desired=states.READY, start_after=now)
    return new_task_on(service, node_id, now=now)


def _restart_or_start(
    p: Plan,
    service: objects_pb2.Service,
    cur: objects_pb2.Task,
    node_tasks: list[objects_pb2.Task],
    takes_new: bool,
    now: float,
) -> bool:
    """Replace an ended task per its restart policy, or start a delayed one; True if the node was acted on."""
    if cur.status.state >= states.COMPLETE:
        if not takes_new or not restart.should_restart(cur, node_tasks, now):
            return False
        due = now + restart.delay(cur)
        p.groups.append(
            [
                set_desired(cur, states.SHUTDOWN),
                new_task_on(service, cur.node_id, now=now, desired=states.READY, start_after=due),
            ]
        )
        p.wake(due)
        return True
    if cur.desired_state == states.READY:
        start_gate(p, cur, node_tasks, True, now)
        return True
    return False


def _rolling_update(
    p: Plan,
    service: objects_pb2.Service,
    current: Mapping[str, objects_pb2.Task],
    grouped: Mapping[str, list[objects_pb2.Task]],
    nodes: Mapping[str, objects_pb2.Node],
    rules: Eligibility,
    acted: set[str],
    now: float,
) -> None:
    """Replace out-of-date tasks, a few nodes at a time, and keep the service's update status."""
    version = service.spec_version
    dirty = sorted(n for n, t in current.items() if t.spec_version != version and rules.takes_new(nodes[n]))
    in_flight, last_done = 0, 0.0
    for node_id, cur in current.items():
        older = [t for t in grouped[node_id] if t is not cur and t.spec_version != version]
        if cur.spec_version != version or not older:
            continue
        if cur.status.state < states.RUNNING:
            in_flight += 1
        elif cur.status.state == states.RUNNING:
            last_done = max(last_done, seconds(cur.status.timestamp))
    config = rollout.effective_config(service)
    delay = units.from_duration(config.delay)
    not_before = last_done + delay if delay and last_done else 0.0
    if dirty and now < not_before:
        p.wake(not_before)
    elif dirty:
        parallelism = config.parallelism
        budget = len(dirty) if parallelism == 0 else int(parallelism) - in_flight
        for node_id in [n for n in dirty if n not in acted][: max(0, budget)]:
            cur = current[node_id]
            p.groups.append(
                [
                    set_desired(cur, states.SHUTDOWN),
                    new_task_on(service, node_id, now=now, desired=states.READY, start_after=now),
                ]
            )
    status = _status_change(service, bool(dirty) or in_flight > 0, now)
    if status is not None:
        new = objects_pb2.Service()
        new.CopyFrom(service)
        new.update_status.CopyFrom(status)
        p.groups.append([w.put(new)])


#: In-progress update states, and the state each ends in.
_FINISHES = {
    UpdateState.UPDATING: (UpdateState.COMPLETED, "update completed"),
    UpdateState.ROLLBACK_STARTED: (UpdateState.ROLLBACK_COMPLETED, "rollback completed"),
}


def _status_change(service: objects_pb2.Service, busy: bool, now: float) -> types_pb2.UpdateStatus | None:
    """UPDATING when an update of a changed spec starts, COMPLETED when it is done; None if unchanged.

    A rollback (the previous spec written back) runs the same way and ends ROLLBACK_COMPLETED.
    """
    state = service.update_status.state
    if busy and state not in _FINISHES and service.HasField("previous_spec"):
        return UpdateState(state=UpdateState.UPDATING, started_at=to_timestamp(now), message="update in progress")
    if not busy and state in _FINISHES:
        status = UpdateState()
        status.CopyFrom(service.update_status)
        status.state, status.message = _FINISHES[state]
        status.completed_at.CopyFrom(to_timestamp(now))
        return status
    return None
