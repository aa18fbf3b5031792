"""A service's rollouts: spec versions, rollback, and the update states, shared by the Control API and the orchestrator.

An update, a rollback and a rebalance are each recorded in the service's
`update_status` in the same write that starts them, so that `swarmctl` can
follow them from the first reply and a new leader resumes them from etcd.
The API starts them (`service update`, `rollback`, `rebalance`); the
orchestrator moves them on, and starts a rollback itself when an update's
failure action says so. `rolled_back` is the one place a spec is swapped back.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2

UpdateStatus = types_pb2.UpdateStatus

#: States in which tasks are being replaced or moved; a rebalance is refused during the first four.
UPDATE_IN_PROGRESS = (UpdateStatus.UPDATING, UpdateStatus.ROLLBACK_STARTED)
UPDATE_PAUSED = (UpdateStatus.PAUSED, UpdateStatus.ROLLBACK_PAUSED)
ROLLBACK_STATES = (UpdateStatus.ROLLBACK_STARTED, UpdateStatus.ROLLBACK_PAUSED, UpdateStatus.ROLLBACK_COMPLETED)
REBALANCE_STATES = (UpdateStatus.REBALANCE_STARTED, UpdateStatus.REBALANCE_PAUSED, UpdateStatus.REBALANCE_COMPLETED)

#: Modes whose tasks are replaced by rolling updates (jobs run again instead).
ROLLING_MODES = ("replicated", "global")

#: At most this many failed task IDs are kept in an update status (the count stops growing there).
MAX_FAILED_TASKS = 1000


def status(state: int, now: float, message: str) -> types_pb2.UpdateStatus:
    """A fresh update status that starts now."""
    return UpdateStatus(state=state, started_at=to_timestamp(now), message=message)  # type: ignore[arg-type]


def effective_config(service: objects_pb2.Service) -> types_pb2.UpdateConfig:
    """The settings the current rollout uses: the rollback ones during a rollback, else the update ones."""
    if service.update_status.state in ROLLBACK_STATES:
        return service.spec.rollback
    return service.spec.update


def next_spec_version(service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task]) -> int:
    """A spec_version never used by this service: above the current, the previous and every task's."""
    used = [service.spec_version, service.previous_spec_version, *(t.spec_version for t in tasks)]
    return max(used) + 1


def rolled_back(service: objects_pb2.Service, *, now: float, message: str) -> objects_pb2.Service:
    """A copy of `service` with its previous spec (and spec version) restored, ROLLBACK_STARTED.

    The update and rollback settings are the current ones, not the restored
    spec's: they say how to roll out, and were most likely set with the change
    being undone. The spec being replaced becomes the previous one, so a
    second rollback goes forward again.
    """
    new = objects_pb2.Service()
    new.CopyFrom(service)
    restored = types_pb2.ServiceSpec()
    restored.CopyFrom(service.previous_spec)
    restored.update.CopyFrom(service.spec.update)
    restored.rollback.CopyFrom(service.spec.rollback)
    new.previous_spec.CopyFrom(service.spec)
    new.spec.CopyFrom(restored)
    version = service.previous_spec_version
    if not version:  # written before previous versions were kept
        version = service.spec_version + (restored.task != service.spec.task)
    new.previous_spec_version = service.spec_version
    new.spec_version = version
    new.update_status.CopyFrom(status(UpdateStatus.ROLLBACK_STARTED, now, message))
    return new


def short_id(task_id: str) -> str:
    """The first 12 characters of an ID, as tables show it."""
    return task_id[:12]
