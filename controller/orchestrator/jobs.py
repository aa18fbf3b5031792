"""The job orchestrators' plans: tasks that run to completion, once per iteration.

A job's *iteration* is its service's spec_version: `service update --force`
(or any change of the task spec) starts a new one, which runs the job again;
the tasks of older iterations that still run are shut down, and all of them
become history for the reaper. A task that exits 0 is COMPLETE and is never
restarted; one that fails is replaced per the restart policy (`any` acts as
`on-failure`, since a completion is final; `none` leaves the failure as it
is), `max_attempts` counted per slot or node within the iteration.

- replicated-job: slots 1..total_completions; a slot is done once a task in it
  completed; at most max_concurrent slots run at a time, lowest first.
- global-job: one completion on every eligible node, nodes that join later
  included; a DOWN or drained node's unfinished task is shut down, and the
  node runs the job again when it takes tasks again.

`plan_*` are pure, like the other orchestrators' plans.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence

from shoal import states
from shoal.controller.orchestrator import restart
from shoal.controller.orchestrator.global_ import fresh_task_on, new_task_on
from shoal.controller.orchestrator.per_node import Eligibility, by_node, remove_all, start_gate
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.orchestrator.slots import node_usable
from shoal.controller.orchestrator.tasks import new_task, set_desired
from shoal.controller.service_modes import iteration
from shoal.controller.store import writer as w
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2

#: Makes the replacement of a task in the same slot or on the same node: (now, desired, start_after) -> creation.
Make = Callable[..., w.Put]


class Outcome(enum.Enum):
    """Where a slot (or a node) stands in the current iteration."""

    DONE = "done"  # a task completed
    ACTIVE = "active"  # a task is on its way or running, or a replacement is
    FAILED = "failed"  # the last attempt failed and the restart policy allows no other
    STOPPED = "stopped"  # its task was stopped by the controller (node lost or drained): start again


def retire_old(p: Plan, service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task]) -> list[objects_pb2.Task]:
    """Shut down every task of an older iteration that is still meant to run; return the current iteration's."""
    current = []
    for t in tasks:
        if t.spec_version == iteration(service):
            current.append(t)
        elif t.desired_state <= states.RUNNING:
            p.groups.append([set_desired(t, states.SHUTDOWN)])
    return current


def look_after(
    p: Plan, history: Sequence[objects_pb2.Task], make: Make, *, usable: bool, may_restart: bool, now: float
) -> Outcome:
    """Handle the newest task of a slot or node (`history`, oldest first): lost node, delayed start, failure.

    `usable` says whether the task's node still runs it (not DOWN, drained or
    gone); `may_restart` whether a failed task may be replaced now.
    """
    cur = history[-1]
    state = cur.status.state
    if state == states.COMPLETE:
        return Outcome.DONE
    if cur.desired_state > states.RUNNING:
        return Outcome.STOPPED
    if state < states.COMPLETE:
        if cur.node_id and state >= states.ASSIGNED and not usable:
            # Nothing went wrong with the task itself: replace it at once.
            p.groups.append([set_desired(cur, states.SHUTDOWN), make(now=now)])
        elif cur.desired_state == states.READY:
            start_gate(p, cur, history, usable, now)
        return Outcome.ACTIVE
    if not may_restart or not restart.should_restart(cur, history, now):
        return Outcome.FAILED
    due = now + restart.delay(cur)
    p.groups.append([set_desired(cur, states.SHUTDOWN), make(now=now, desired=states.READY, start_after=due)])
    p.wake(due)
    return Outcome.ACTIVE


def _by_slot(tasks: Iterable[objects_pb2.Task]) -> dict[int, list[objects_pb2.Task]]:
    out: dict[int, list[objects_pb2.Task]] = collections.defaultdict(list)
    for t in sorted(tasks, key=lambda t: seconds(t.meta.created_at)):
        if t.desired_state < states.REMOVE:
            out[t.slot].append(t)
    return out


def _unused_slots(used: Mapping[int, object], total: int, count: int) -> list[int]:
    """Up to `count` of the smallest slot numbers in 1..total that have no task yet."""
    out: list[int] = []
    n = 1
    while len(out) < count and n <= total:
        if n not in used:
            out.append(n)
        n += 1
    return out


def plan_replicated(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> Plan:
    """What to write so that `total_completions` slots complete, `max_concurrent` at a time."""
    p = Plan()
    job = service.spec.replicated_job
    total = int(job.total_completions)
    concurrent = min(int(job.max_concurrent or total), total)
    by_slot = _by_slot(retire_old(p, service, tasks))
    running, restart_now = 0, []
    for slot, history in sorted(by_slot.items()):
        if not 1 <= slot <= total:
            # The job wants fewer completions than it had slots for.
            p.groups.append([set_desired(t, states.REMOVE) for t in history])
            continue
        cur = history[-1]
        usable = node_usable(nodes.get(cur.node_id)) if cur.node_id else True

        def make(slot: int = slot, **kw: object) -> w.Put:
            return new_task(service, slot, **kw)  # type: ignore[arg-type]

        outcome = look_after(p, history, make, usable=usable, may_restart=True, now=now)
        if outcome is Outcome.ACTIVE:
            running += 1
        elif outcome is Outcome.STOPPED:
            restart_now.append(slot)
    budget = max(0, concurrent - running)
    starts = sorted(restart_now)[:budget]
    starts += _unused_slots(by_slot, total, budget - len(starts))
    p.groups.extend([new_task(service, slot, now=now)] for slot in starts)
    return p


def plan_global(
    service: objects_pb2.Service,
    tasks: Sequence[objects_pb2.Task],
    nodes: Mapping[str, objects_pb2.Node],
    now: float,
) -> Plan:
    """What to write so that every eligible node completes the job once per iteration."""
    p = Plan()
    rules = Eligibility(service.spec.task)
    grouped = by_node(retire_old(p, service, tasks))
    for node_id, history in grouped.items():
        if node_id not in nodes:
            p.groups.extend(remove_all(history))
    for node in nodes.values():
        history = grouped.get(node.id, [])
        takes_new = rules.takes_new(node)
        if not rules.keeps(node):
            cur = history[-1] if history else None
            if cur is not None and cur.desired_state <= states.RUNNING and cur.status.state < states.COMPLETE:
                p.groups.append([set_desired(cur, states.SHUTDOWN)])
            continue

        def make(node_id: str = node.id, **kw: object) -> w.Put:
            return new_task_on(service, node_id, **kw)

        outcome = (
            look_after(p, history, make, usable=True, may_restart=takes_new, now=now) if history else Outcome.STOPPED
        )
        if outcome is Outcome.STOPPED and takes_new:
            p.groups.append([fresh_task_on(service, node.id, history, now)])
    return p
