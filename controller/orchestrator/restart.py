"""Restart policy: whether and when a task that ended is replaced.

A replacement takes the same slot. After the task's own exit it waits the
restart delay (created with desired READY, so the node can pull and create
it meanwhile); after its node is lost it starts at once, since nothing ran
wrong with the task itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal import states, units
from shoal.v1 import objects_pb2, types_pb2

ANY = types_pb2.RestartPolicy.ANY
ON_FAILURE = types_pb2.RestartPolicy.ON_FAILURE

#: Endings that count as attempts: the task ended on its own, it was not stopped.
_ATTEMPT_ENDINGS = (states.COMPLETE, states.FAILED, states.REJECTED)


def should_restart(
    task: objects_pb2.Task, slot_tasks: Iterable[objects_pb2.Task], now: float, *, since: float = 0.0
) -> bool:
    """True if the task's restart policy asks for a replacement of this ending.

    With max_attempts, the attempts are counted from the slot's tasks of the
    same spec (kept in etcd by the reaper), within the window if one is set:
    the count survives a controller failover and starts again with a new spec.
    `since` (when the spec version last became current, e.g. by a rollback to
    an earlier one) leaves out older tasks of the same version.
    """
    policy = task.spec.restart
    if policy.condition == ON_FAILURE and task.status.state == states.COMPLETE:
        return False
    if policy.condition not in (ANY, ON_FAILURE):
        return False
    if policy.max_attempts:
        window = units.from_duration(policy.window)
        attempts = sum(
            1
            for t in slot_tasks
            if t.spec_version == task.spec_version
            and t.status.state in _ATTEMPT_ENDINGS
            and (t is task or units.from_timestamp(t.meta.created_at) >= since)
            and (not window or units.from_timestamp(t.status.timestamp) >= now - window)
        )
        return attempts <= policy.max_attempts
    return True


def delay(task: objects_pb2.Task) -> float:
    """Seconds between the task's end and its replacement's start."""
    return units.from_duration(task.spec.restart.delay)
