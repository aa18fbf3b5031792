"""Restart policy: whether and when a task that ended is replaced.

A replacement takes the same slot. After the task's own exit it waits the
restart delay (created with desired READY, so the node can pull and create
it meanwhile); after its node is lost it starts at once, since nothing ran
wrong with the task itself.
"""

from __future__ import annotations

from shoal import states, units
from shoal.v1 import objects_pb2, types_pb2

ANY = types_pb2.RestartPolicy.ANY
ON_FAILURE = types_pb2.RestartPolicy.ON_FAILURE


def should_restart(task: objects_pb2.Task) -> bool:
    """True if the task's restart condition asks for a replacement of this ending."""
    condition = task.spec.restart.condition
    if condition == ANY:
        return True
    if condition == ON_FAILURE:
        return task.status.state != states.COMPLETE
    return False


def delay(task: objects_pb2.Task) -> float:
    """Seconds between the task's end and its replacement's start."""
    return units.from_duration(task.spec.restart.delay)
