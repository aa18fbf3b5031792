"""Slots of a replicated service: grouping tasks, node usability, scale-down choice."""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable, Mapping

from shoal import states
from shoal.v1 import objects_pb2, types_pb2

READY = types_pb2.NodeStatus.READY
DOWN = types_pb2.NodeStatus.DOWN
DRAIN = types_pb2.NodeSpec.DRAIN


def group(tasks: Iterable[objects_pb2.Task]) -> dict[int, list[objects_pb2.Task]]:
    """Tasks by slot, leaving out those already on their way to removal."""
    by_slot: dict[int, list[objects_pb2.Task]] = collections.defaultdict(list)
    for t in tasks:
        if t.desired_state < states.REMOVE:
            by_slot[t.slot].append(t)
    return by_slot


def node_usable(node: objects_pb2.Node | None) -> bool:
    """False when a node's tasks must be replaced elsewhere: it is gone, DOWN or drained."""
    return node is not None and node.status.state != DOWN and node.spec.availability != DRAIN


def may_be_alive(task: objects_pb2.Task, nodes: Mapping[str, objects_pb2.Node]) -> bool:
    """True if the task may still run a container: assigned, not finished, on a node we still hear from.

    A drained node's tasks count: they run until they are stopped.
    """
    node = nodes.get(task.node_id) if task.node_id else None
    return states.ASSIGNED <= task.status.state < states.COMPLETE and node is not None and node.status.state != DOWN


def scale_down_victims(current: Mapping[int, objects_pb2.Task], count: int) -> list[int]:
    """The `count` slots to remove: non-running tasks first, then from the nodes with most tasks."""
    if count >= len(current):
        return list(current)
    not_running = sorted((slot for slot, t in current.items() if t.status.state != states.RUNNING), key=lambda s: -s)
    victims = not_running[:count]
    if len(victims) == count:
        return victims
    per_node: dict[str, list[int]] = collections.defaultdict(list)
    for slot, t in current.items():
        if t.status.state == states.RUNNING:
            per_node[t.node_id].append(slot)
    for slots in per_node.values():
        slots.sort()
    heap = [(-len(slots), node_id) for node_id, slots in per_node.items()]
    heapq.heapify(heap)
    while len(victims) < count and heap:
        neg, node_id = heapq.heappop(heap)
        victims.append(per_node[node_id].pop())
        if per_node[node_id]:
            heapq.heappush(heap, (neg + 1, node_id))
    return victims


def free_slots(used: Iterable[int], count: int) -> list[int]:
    """The `count` smallest slot numbers (from 1) not in `used`."""
    taken = set(used)
    out: list[int] = []
    n = 1
    while len(out) < count:
        if n not in taken:
            out.append(n)
        n += 1
    return out
