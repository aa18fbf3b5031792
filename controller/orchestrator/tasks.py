"""Making tasks and changing their desired state: the orchestrator's only writes to tasks."""

from __future__ import annotations

from shoal import ids, states
from shoal.controller import networking
from shoal.controller.store import writer as w
from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2


def new_task(
    service: objects_pb2.Service,
    slot: int,
    *,
    now: float,
    desired: int = states.RUNNING,
    start_after: float | None = None,
    origin: int = objects_pb2.Task.SLOT,
) -> w.Put:
    """A creation of a task for `slot` with the service's current task spec.

    A task that needs network addresses is born NEW, and the allocator makes
    it PENDING once it has them; with none to allocate, tasks are born
    PENDING and go straight to the scheduler.
    """
    task = objects_pb2.Task(
        id=ids.new_id(),
        service_id=service.id,
        service_name=service.spec.name,
        slot=slot,
        spec=service.spec.task,
        spec_version=service.spec_version,
        desired_state=desired,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        status=_born(service, now),
    )
    if start_after is not None:
        task.start_after.CopyFrom(to_timestamp(start_after))
    return w.create(task)


def set_desired(task: objects_pb2.Task, desired: int, *, start_after: float | None = None) -> w.Put:
    """An update of the task's desired state (the controller's half of a task).

    Starting a staged task records when it was told to run in `start_after`:
    the update monitor window counts from there.
    """
    new = objects_pb2.Task()
    new.CopyFrom(task)
    new.desired_state = desired  # type: ignore[assignment]
    if start_after is not None:
        new.start_after.CopyFrom(to_timestamp(start_after))
    return w.put(new)


def _born(service: objects_pb2.Service, now: float) -> types_pb2.TaskStatus:
    if networking.needs_allocation(service):
        return types_pb2.TaskStatus(
            state=states.NEW, timestamp=to_timestamp(now), message="allocating network addresses"
        )
    return types_pb2.TaskStatus(
        state=states.PENDING, timestamp=to_timestamp(now), message="pending task scheduling"
    )
