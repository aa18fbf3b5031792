"""Rolling updates: which out-of-date slots to replace now, and the service's update state.

Slots are replaced `parallelism` at a time (0: all), stop-first: the old task
is told to stop and the new one is created with desired READY, so the node
pulls and creates it while the old one stops; the orchestrator starts it once
the old task has stopped. So a slot never holds two running tasks at rest.
The next slots start once the replacements in flight run, plus `delay`.
The whole decision is recomputed from the store each pass, so a new leader
continues an update where the old one left it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from shoal import states, units
from shoal.units import from_timestamp as seconds
from shoal.units import to_timestamp as timestamp
from shoal.v1 import objects_pb2, types_pb2

UpdateState = types_pb2.UpdateStatus


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a service's rolling update stands."""

    dirty: list[int]
    in_flight: int
    #: Wall-clock time before which no new slot may start (update delay); 0 if none.
    not_before: float


def progress(
    service: objects_pb2.Service,
    current: Mapping[int, objects_pb2.Task],
    slots: Mapping[int, list[objects_pb2.Task]],
) -> Progress:
    """Out-of-date slots, replacements still starting, and when the update delay allows the next."""
    version = service.spec_version
    dirty = sorted(slot for slot, t in current.items() if t.spec_version != version)
    in_flight, last_done = 0, 0.0
    for slot, cur in current.items():
        if cur.spec_version != version:
            continue
        # A slot is mid-update when its current task replaced one of an older
        # spec; a restart after the update (same spec) is not.
        earlier = [t for t in slots[slot] if t is not cur]
        previous = max(earlier, key=lambda t: seconds(t.meta.created_at), default=None)
        if previous is None or previous.spec_version == version:
            continue
        if cur.status.state < states.RUNNING:
            in_flight += 1
        elif cur.status.state == states.RUNNING:
            last_done = max(last_done, seconds(cur.status.timestamp))
    delay = units.from_duration(service.spec.update.delay)
    return Progress(dirty, in_flight, last_done + delay if delay and last_done else 0.0)


def slots_to_replace(service: objects_pb2.Service, p: Progress, now: float) -> list[int]:
    """The dirty slots to start replacing now."""
    if not p.dirty or now < p.not_before:
        return []
    parallelism = service.spec.update.parallelism
    budget = len(p.dirty) if parallelism == 0 else int(parallelism) - p.in_flight
    return p.dirty[: max(0, budget)]


def status_change(service: objects_pb2.Service, p: Progress, now: float) -> types_pb2.UpdateStatus | None:
    """The service's new update status, or None if it stays as it is."""
    state = service.update_status.state
    busy = bool(p.dirty) or p.in_flight > 0
    if busy and state != UpdateState.UPDATING and service.HasField("previous_spec"):
        return UpdateState(state=UpdateState.UPDATING, started_at=timestamp(now), message="update in progress")
    if not busy and state == UpdateState.UPDATING:
        status = UpdateState()
        status.CopyFrom(service.update_status)
        status.state = UpdateState.COMPLETED
        status.completed_at.CopyFrom(timestamp(now))
        status.message = "update completed"
        return status
    return None
