"""Task-state rules shared by the controller and the agent.

States only move forward: an update that would lower a task's observed state
is dropped, wherever it comes from.
"""

from __future__ import annotations

from shoal.v1 import types_pb2

TaskState = types_pb2.TaskState

NEW = types_pb2.NEW
PENDING = types_pb2.PENDING
ASSIGNED = types_pb2.ASSIGNED
ACCEPTED = types_pb2.ACCEPTED
PREPARING = types_pb2.PREPARING
READY = types_pb2.READY
STARTING = types_pb2.STARTING
RUNNING = types_pb2.RUNNING
COMPLETE = types_pb2.COMPLETE
SHUTDOWN = types_pb2.SHUTDOWN
FAILED = types_pb2.FAILED
REJECTED = types_pb2.REJECTED
REMOVE = types_pb2.REMOVE
ORPHANED = types_pb2.ORPHANED


def name(state: int) -> str:
    """The state's name, e.g. "RUNNING"."""
    return types_pb2.TaskState.Name(state)  # type: ignore[arg-type]


def is_terminal(state: int) -> bool:
    """True once a task has finished for good (COMPLETE or later)."""
    return state >= COMPLETE


def may_advance(current: int, new: int) -> bool:
    """True if an observed state may move from `current` to `new` (forward only)."""
    return new > current
