"""What the global and job orchestrators share: plans, node eligibility, the delayed-start gate.

A global service (or a global job) runs on every node that is READY, ACTIVE
and meets its constraints; a node keeps its task while it is neither DOWN nor
drained and still meets them (a paused node keeps its tasks but takes no new
ones, a node that is only disconnected keeps them until it is declared DOWN).
A task whose node was removed from the cluster is removed with it.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from shoal import states
from shoal.controller import constraint
from shoal.controller.orchestrator.plan import Plan
from shoal.controller.orchestrator.tasks import set_desired
from shoal.controller.store import writer as w
from shoal.units import from_timestamp as seconds
from shoal.v1 import objects_pb2, types_pb2

READY = types_pb2.NodeStatus.READY
DOWN = types_pb2.NodeStatus.DOWN
ACTIVE = types_pb2.NodeSpec.ACTIVE
DRAIN = types_pb2.NodeSpec.DRAIN


class Eligibility:
    """A service's constraints, parsed once per plan, and what they say about nodes."""

    def __init__(self, spec: types_pb2.TaskSpec) -> None:
        self._constraints = constraint.parse_all(list(spec.placement.constraints))

    def matches(self, node: objects_pb2.Node) -> bool:
        return all(c.matches(node) for c in self._constraints)

    def takes_new(self, node: objects_pb2.Node) -> bool:
        """True if a new task of the service may be made for this node."""
        return node.status.state == READY and node.spec.availability == ACTIVE and self.matches(node)

    def keeps(self, node: objects_pb2.Node | None) -> bool:
        """True if the node's task of the service may go on running there."""
        return node is not None and node.status.state != DOWN and node.spec.availability != DRAIN and self.matches(node)


def by_node(tasks: Iterable[objects_pb2.Task]) -> dict[str, list[objects_pb2.Task]]:
    """Tasks by node, oldest first, leaving out those already on their way to removal."""
    out: dict[str, list[objects_pb2.Task]] = collections.defaultdict(list)
    for t in sorted(tasks, key=lambda t: seconds(t.meta.created_at)):
        if t.desired_state < states.REMOVE:
            out[t.node_id].append(t)
    return out


def remove_all(tasks: Iterable[objects_pb2.Task]) -> list[list[w.Op]]:
    """Groups that mark every task for removal (their node left the cluster)."""
    return [[set_desired(t, states.REMOVE)] for t in tasks]


def alive(task: objects_pb2.Task) -> bool:
    """True if the task may still have a running container (its node is judged by the caller)."""
    return states.ASSIGNED <= task.status.state < states.COMPLETE


def start_gate(
    p: Plan, cur: objects_pb2.Task, others: Sequence[objects_pb2.Task], node_usable: bool, now: float
) -> None:
    """Move a delayed task (desired READY) to RUNNING once its time has come and nothing else runs in its place.

    Only a node that still answers can run the older task; one that is DOWN
    or gone cannot, so it does not hold the new task back.
    """
    due = seconds(cur.start_after)
    if due > now:
        p.wake(due)
    elif not (node_usable and any(alive(t) for t in others if t is not cur)):
        p.groups.append([set_desired(cur, states.RUNNING)])
