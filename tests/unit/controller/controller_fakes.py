"""Builders of plain protobuf objects and small fakes of the controller's own interfaces.

Everything here is in memory: no etcd, no network. Times are fixed wall-clock
seconds (`NOW`) so that plans are computed at a known instant.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

from shoal import states, units
from shoal.controller.store import writer as w
from shoal.v1 import objects_pb2, types_pb2

NOW = 1_700_000_000.0
SERVICE_ID = "svc1"

READY = types_pb2.NodeStatus.READY
DOWN = types_pb2.NodeStatus.DOWN
ACTIVE = types_pb2.NodeSpec.ACTIVE
PAUSE = types_pb2.NodeSpec.PAUSE
DRAIN = types_pb2.NodeSpec.DRAIN
ANY = types_pb2.RestartPolicy.ANY
ON_FAILURE = types_pb2.RestartPolicy.ON_FAILURE
NONE = types_pb2.RestartPolicy.NONE
UPDATING = types_pb2.UpdateStatus.UPDATING
COMPLETED = types_pb2.UpdateStatus.COMPLETED

GIB = 1 << 30
MIB = 1 << 20

_ids = itertools.count(1)


def make_node(
    node_id: str,
    *,
    state: int = READY,
    availability: int = ACTIVE,
    labels: dict[str, str] | None = None,
    hostname: str = "",
    cpus: int = 0,
    memory: int = 0,
) -> objects_pb2.Node:
    """A node; `cpus` in nano-CPUs, `memory` in bytes."""
    node = objects_pb2.Node(id=node_id, name=hostname or node_id)
    node.meta.version = 5
    node.status.state = state  # type: ignore[assignment]
    node.spec.availability = availability  # type: ignore[assignment]
    node.spec.labels.update(labels or {})
    node.description.hostname = hostname or node_id
    node.description.resources.nano_cpus = cpus
    node.description.resources.memory_bytes = memory
    return node


def nodes_by_id(*nodes: objects_pb2.Node) -> dict[str, objects_pb2.Node]:
    return {n.id: n for n in nodes}


def make_service(
    *,
    replicas: int = 3,
    version: int = 1,
    restart: int = ANY,
    restart_delay: float = 5.0,
    parallelism: int = 1,
    update_delay: float = 0.0,
    previous: bool = False,
    update_state: int = types_pb2.UpdateStatus.UNKNOWN,
    memory: int = 0,
    constraints: Iterable[str] = (),
) -> objects_pb2.Service:
    """A replicated service at `spec_version` `version`; `previous` gives it a previous_spec."""
    svc = objects_pb2.Service(id=SERVICE_ID, spec_version=version)
    svc.meta.version = 7
    spec = svc.spec
    spec.name = "web"
    spec.replicated.replicas = replicas
    spec.task.container.image = f"busybox:{version}"
    spec.task.restart.condition = restart  # type: ignore[assignment]
    spec.task.restart.delay.CopyFrom(units.to_duration(restart_delay))
    spec.task.resources.reservations.memory_bytes = memory
    spec.task.placement.constraints.extend(constraints)
    spec.update.parallelism = parallelism
    spec.update.delay.CopyFrom(units.to_duration(update_delay))
    if previous:
        svc.previous_spec.CopyFrom(spec)
        svc.previous_spec.task.container.image = f"busybox:{version - 1}"
    svc.update_status.state = update_state  # type: ignore[assignment]
    return svc


def make_task(
    service: objects_pb2.Service,
    slot: int,
    *,
    node: str = "n1",
    state: int = states.RUNNING,
    desired: int = states.RUNNING,
    version: int | None = None,
    created: float = NOW - 100,
    status_at: float | None = None,
    start_after: float | None = None,
    task_id: str | None = None,
    service_id: str | None = None,
) -> objects_pb2.Task:
    """A task of `service` in `slot`, on `node` ("" for none), at the service's version unless given."""
    task = objects_pb2.Task(
        id=task_id or f"t{next(_ids)}",
        service_id=service_id or service.id,
        service_name=service.spec.name,
        slot=slot,
        node_id=node,
        spec=service.spec.task,
        spec_version=service.spec_version if version is None else version,
        desired_state=desired,  # type: ignore[arg-type]
    )
    task.meta.version = 11
    task.meta.created_at.CopyFrom(units.to_timestamp(created))
    task.status.state = state  # type: ignore[assignment]
    task.status.timestamp.CopyFrom(units.to_timestamp(created if status_at is None else status_at))
    if start_after is not None:
        task.start_after.CopyFrom(units.to_timestamp(start_after))
    return task


# ---- inspecting writer ops -------------------------------------------------------


def is_creation(op: w.Op) -> bool:
    return isinstance(op, w.Put) and op.expect == 0


def created_tasks(groups: Iterable[Iterable[w.Op]]) -> list[objects_pb2.Task]:
    """The tasks created by any group, in order."""
    return [op.obj for g in groups for op in g if is_creation(op)]  # type: ignore[union-attr,misc]


def desired_changes(groups: Iterable[Iterable[w.Op]]) -> dict[str, int]:
    """Task ID -> new desired state, for every update of an existing task."""
    return {
        op.obj.id: op.obj.desired_state  # type: ignore[attr-defined]
        for g in groups
        for op in g
        if isinstance(op, w.Put) and op.expect != 0 and isinstance(op.obj, objects_pb2.Task)
    }


def service_puts(groups: Iterable[Iterable[w.Op]]) -> list[objects_pb2.Service]:
    return [op.obj for g in groups for op in g if isinstance(op, w.Put) and isinstance(op.obj, objects_pb2.Service)]


# ---- fakes of the cache's read interface and of the writer -------------------------


class IdleSubscription:
    """A subscription on which no change ever arrives."""

    def drain(self) -> list[object]:
        return []

    async def get(self) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FakeCache:
    """The part of the cache a scheduler reads: nodes, tasks, tasks by node, a subscription."""

    def __init__(self, nodes: Iterable[objects_pb2.Node], tasks: Iterable[objects_pb2.Task]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.tasks = {t.id: t for t in tasks}

    def tasks_of_node(self, node_id: str) -> list[objects_pb2.Task]:
        return [t for t in self.tasks.values() if t.node_id == node_id]

    def subscribe(self) -> IdleSubscription:
        return IdleSubscription()


class RecordingWriter:
    """Records the first batch of ops written, reports them landed, then blocks (so a loop stops there)."""

    def __init__(self) -> None:
        self.batches: list[list[w.Op]] = []
        self.written = asyncio.Event()

    async def commit_each(self, ops: list[w.Op]) -> list[bool]:
        self.batches.append(list(ops))
        self.written.set()
        await asyncio.Event().wait()
        return [True] * len(ops)
