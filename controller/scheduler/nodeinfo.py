"""What a node has taken on: its active tasks, per service, and their reservations.

A task counts against a node from assignment until it has finished (its
container may run until then, whatever its desired state), and counts toward
spreading while it is also meant to run.
"""

from __future__ import annotations

import collections
import dataclasses

from shoal import states
from shoal.v1 import objects_pb2, types_pb2


def holds_resources(task: objects_pb2.Task) -> bool:
    """True while a task may occupy its node's resources."""
    return bool(task.node_id) and states.ASSIGNED <= task.status.state < states.COMPLETE


def counts_for_spread(task: objects_pb2.Task) -> bool:
    """True while a task counts toward its service's presence on the node."""
    return holds_resources(task) and task.desired_state <= states.RUNNING


def published(spec: types_pb2.TaskSpec) -> list[tuple[int, str]]:
    """The host ports a task spec publishes, as (port, protocol)."""
    return [(p.published or p.target, p.protocol or "tcp") for p in spec.container.ports]


@dataclasses.dataclass
class NodeInfo:
    """One node, and the load placed on it."""

    node: objects_pb2.Node
    tasks: int = 0
    by_service: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    reserved_cpu: int = 0
    reserved_memory: int = 0
    #: Host ports ((port, protocol)) published by the tasks on this node.
    ports: collections.Counter[tuple[int, str]] = dataclasses.field(default_factory=collections.Counter)
    #: Read from `node` once: a pass asks them of every node, and a protobuf field read is not free.
    id: str = dataclasses.field(init=False)
    ready: bool = dataclasses.field(init=False)
    active: bool = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.set_node(self.node)

    def set_node(self, node: objects_pb2.Node) -> None:
        """Take a newer copy of the node (its load stays)."""
        self.node = node
        self.id = node.id
        self.ready = node.status.state == types_pb2.NodeStatus.READY
        self.active = node.spec.availability == types_pb2.NodeSpec.ACTIVE

    @property
    def free_cpu(self) -> int:
        return self.node.description.resources.nano_cpus - self.reserved_cpu

    @property
    def free_memory(self) -> int:
        return self.node.description.resources.memory_bytes - self.reserved_memory

    def add(self, task: objects_pb2.Task, sign: int = 1) -> None:
        """Count a task on this node (sign -1 to take it away again)."""
        # holds_resources and counts_for_spread, inlined: the scheduler calls this twice per placement.
        if not task.node_id or not states.ASSIGNED <= task.status.state < states.COMPLETE:
            return
        spec = task.spec
        res = spec.resources.reservations
        self.reserved_cpu += sign * res.nano_cpus
        self.reserved_memory += sign * res.memory_bytes
        if spec.container.ports:
            for port in published(spec):
                self.ports[port] += sign
                if self.ports[port] <= 0:
                    del self.ports[port]
        if task.desired_state <= states.RUNNING:
            self.tasks += sign
            by_service = self.by_service
            by_service[task.service_id] += sign
            if by_service[task.service_id] <= 0:
                del by_service[task.service_id]

    def remove(self, task: objects_pb2.Task) -> None:
        """Stop counting a task on this node."""
        self.add(task, -1)
