"""Rolling updates and rollbacks: which out-of-date slots to replace now, and the service's update state.

A slot is out of date ("dirty") when its current task runs another spec
version than the service. Slots are replaced `parallelism` at a time (0: all
at once), `delay` apart, in the configured order:

- stop-first: the old task is told to stop and its replacement is created
  with desired READY, so the node pulls and creates it meanwhile; the
  orchestrator starts it once the old task has stopped.
- start-first: the replacement is created with desired RUNNING and the old
  task keeps running until the new one runs (see `moves`).

Every replacement the updater makes is marked `Task.UPDATE` and watched: it
fails if it ends (or is rejected) before it has run for the `monitor`
window, or if it is not RUNNING `monitor` after it was told to run (a task
still waiting for its first passing health check is given the time the
engine needs to decide). So an update never waits forever: it moves on,
pauses, or rolls back (`failure_action`) once more than `max_failure_ratio`
of the slots failed, with the reason in the status. A rollback uses the
rollback settings and is never rolled back: it pauses. Everything is
recomputed from the store on each pass (the failed task IDs are kept in the
update status), so a new leader resumes an update where the old one left it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence, Set

from shoal import states, units
from shoal.controller import rollout
from shoal.units import from_timestamp as seconds
from shoal.units import to_timestamp as timestamp
from shoal.v1 import objects_pb2, types_pb2

UpdateStatus = types_pb2.UpdateStatus
UpdateConfig = types_pb2.UpdateConfig
Health = types_pb2.TaskStatus.Health
Origin = objects_pb2.Task.Origin

#: Docker Swarm's monitor window, for specs written before it was filled in by default.
DEFAULT_MONITOR = 5.0
#: Endings a task reaches on its own (SHUTDOWN is only ever asked for).
_ENDED_ON_ITS_OWN = (states.COMPLETE, states.FAILED, states.REJECTED)


def monitor_of(cfg: types_pb2.UpdateConfig) -> float:
    """The monitor window in seconds (0: no window)."""
    return units.from_duration(cfg.monitor) if cfg.HasField("monitor") else DEFAULT_MONITOR


def told_at(task: objects_pb2.Task) -> float:
    """When the task was told to run: its start time once promoted, else its creation."""
    return seconds(task.start_after) if task.HasField("start_after") else seconds(task.meta.created_at)


def waits_for_health(task: objects_pb2.Task) -> bool:
    """True while a started task waits for its first passing health check (the engine decides in bounded time)."""
    return task.status.state == states.STARTING and task.status.health == Health.HEALTH_STARTING


def failure(task: objects_pb2.Task, monitor: float, now: float) -> str | None:
    """Why a new task counts as failed, or None: it ended within the window, or did not run in time."""
    status = task.status
    if status.state in _ENDED_ON_ITS_OWN:
        ran = status.HasField("started_at")
        if ran and (not monitor or seconds(status.timestamp) - seconds(status.started_at) > monitor):
            return None
        return f"task {rollout.short_id(task.id)} {_ending(status)}"
    if (
        monitor
        and task.desired_state == states.RUNNING
        and status.state < states.RUNNING
        and not waits_for_health(task)
        and now >= told_at(task) + monitor
    ):
        why = f" ({status.err})" if status.err else ""
        return (
            f"task {rollout.short_id(task.id)} did not reach RUNNING within the "
            f"{units.format_duration(monitor)} monitor window{why}"
        )
    return None


def _ending(status: types_pb2.TaskStatus) -> str:
    err = status.err.removeprefix("task: ")
    if status.state == states.FAILED:
        return f"failed: {err}" if err else "failed"
    if status.state == states.REJECTED:
        return f"was rejected: {err}" if err else "was rejected"
    return "exited (0) within the monitor window"


def failed_at(task: objects_pb2.Task, monitor: float) -> float:
    """When a failed task's failure became known: its end, or the end of its window."""
    if task.status.state in _ENDED_ON_ITS_OWN:
        return seconds(task.status.timestamp)
    return told_at(task) + monitor


def ran_at(task: objects_pb2.Task) -> float:
    """When a task reached RUNNING (its status time if the node did not say)."""
    status = task.status
    return seconds(status.started_at) if status.HasField("started_at") else seconds(status.timestamp)


@dataclasses.dataclass
class Decision:
    """What the updater wants this pass."""

    #: Slots to replace now, and how: True for start-first.
    replace: dict[int, bool] = dataclasses.field(default_factory=dict)
    #: The service's new update status, or None to leave it.
    status: types_pb2.UpdateStatus | None = None
    #: Roll back: write the previous spec back (the status is then ROLLBACK_STARTED with this message).
    rollback: str = ""
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def ours(
    tasks: Iterable[objects_pb2.Task], service: objects_pb2.Service, origin: int = Origin.UPDATE
) -> list[objects_pb2.Task]:
    """The tasks the current rollout made: of `origin`, the service's spec version, created since it started."""
    started = seconds(service.update_status.started_at)
    version = service.spec_version if origin == Origin.UPDATE else None
    return [
        t
        for t in tasks
        if t.origin == origin
        and (version is None or t.spec_version == version)
        and seconds(t.meta.created_at) >= started
    ]


def new_failures(
    tasks: Sequence[objects_pb2.Task], status: types_pb2.UpdateStatus, monitor: float, now: float
) -> list[tuple[objects_pb2.Task, str]]:
    """Failures among `tasks` not yet recorded in `status`, oldest first."""
    recorded = set(status.failed_tasks)
    found = [(t, why) for t in tasks if t.id not in recorded and (why := failure(t, monitor, now)) is not None]
    found.sort(key=lambda pair: failed_at(pair[0], monitor))
    return found


def record(status: types_pb2.UpdateStatus, failed: Sequence[tuple[objects_pb2.Task, str]]) -> types_pb2.UpdateStatus:
    """A copy of `status` with the failed task IDs added (up to the cap)."""
    new = UpdateStatus()
    new.CopyFrom(status)
    room = max(0, rollout.MAX_FAILED_TASKS - len(new.failed_tasks))
    new.failed_tasks.extend(t.id for t, _ in failed[:room])
    return new


def too_many(status: types_pb2.UpdateStatus, cfg: types_pb2.UpdateConfig, total: int) -> bool:
    """True once the failures recorded in `status` exceed the allowed ratio of `total` slots."""
    return len(status.failed_tasks) / max(1, total) > cfg.max_failure_ratio + 1e-9


def decide(
    service: objects_pb2.Service,
    current: Mapping[int, objects_pb2.Task],
    all_tasks: Sequence[objects_pb2.Task],
    now: float,
    handing_over: Set[int] = frozenset(),
) -> Decision:
    """The updater's decision for a replicated service whose slots' current tasks are `current`.

    `handing_over` are the slots where an older task may still run beside
    the current one (start-first, until it has stopped): they count as in
    flight, so that no more than `parallelism` extra containers ever run.
    """
    d = Decision()
    state = service.update_status.state
    version = service.spec_version
    dirty = sorted(slot for slot, t in current.items() if t.spec_version != version)
    if state not in rollout.UPDATE_IN_PROGRESS:
        if dirty and state not in rollout.UPDATE_PAUSED:
            # Out-of-date slots with no update recorded (a spec written by an older controller): start one.
            d.status = rollout.status(UpdateStatus.UPDATING, now, "update in progress")
        return d
    cfg = rollout.effective_config(service)
    monitor = monitor_of(cfg)
    mine = ours(all_tasks, service)
    failed = new_failures(mine, service.update_status, monitor, now)
    status = service.update_status
    if failed:
        status = record(status, failed)
        d.status = status
        if too_many(status, cfg, service.spec.replicated.replicas) and cfg.failure_action != UpdateConfig.CONTINUE:
            reason = failed[-1][1]
            if state == UpdateStatus.ROLLBACK_STARTED:
                d.status = _ended(status, UpdateStatus.ROLLBACK_PAUSED, f"rollback paused: {reason}", now)
            elif cfg.failure_action == UpdateConfig.ROLLBACK:
                d.rollback = f"rollback started: {reason}"
            else:
                d.status = _ended(status, UpdateStatus.PAUSED, f"update paused: {reason}", now)
            return d
    current_ids = {t.id for t in current.values()}
    in_flight, last_done, settle_at = 0, 0.0, 0.0
    for t in mine:
        if failure(t, monitor, now) is not None:
            last_done = max(last_done, failed_at(t, monitor))
        elif t.status.state >= states.RUNNING:
            last_done = max(last_done, ran_at(t))
            if t.status.state == states.RUNNING:
                settle_at = max(settle_at, ran_at(t) + monitor)
                in_flight += t.id in current_ids and t.slot in handing_over
        elif t.id in current_ids and t.desired_state <= states.RUNNING:
            in_flight += 1
            if t.desired_state == states.RUNNING and monitor and not waits_for_health(t):
                d.wake(told_at(t) + monitor)
    delay = units.from_duration(cfg.delay)
    not_before = last_done + delay if delay and last_done else 0.0
    if dirty:
        if now < not_before:
            d.wake(not_before)
        else:
            budget = len(dirty) if cfg.parallelism == 0 else int(cfg.parallelism) - in_flight
            start_first = cfg.order == UpdateConfig.START_FIRST
            for slot in _order(dirty, current)[: max(0, budget)]:
                d.replace[slot] = start_first and current[slot].status.state == states.RUNNING
    elif in_flight == 0:
        if now < settle_at:
            d.wake(settle_at)
        else:
            d.status = _completed(status, state, now)
    return d


def _order(dirty: list[int], current: Mapping[int, objects_pb2.Task]) -> list[int]:
    """Slots whose task does not run go first: replacing them costs no capacity."""
    return sorted(dirty, key=lambda s: (current[s].status.state == states.RUNNING, s))


def _ended(status: types_pb2.UpdateStatus, state: int, message: str, now: float) -> types_pb2.UpdateStatus:
    new = UpdateStatus()
    new.CopyFrom(status)
    new.state = state  # type: ignore[assignment]
    new.message = message
    new.completed_at.CopyFrom(timestamp(now))
    return new


def _completed(status: types_pb2.UpdateStatus, state: int, now: float) -> types_pb2.UpdateStatus:
    failures = len(status.failed_tasks)
    if state == UpdateStatus.ROLLBACK_STARTED:
        reason = status.message.removeprefix("rollback started")
        message = "rollback completed" + (reason if reason.startswith(":") else "")
        return _ended(status, UpdateStatus.ROLLBACK_COMPLETED, message, now)
    note = f" ({failures} task{'s' if failures != 1 else ''} failed)" if failures else ""
    return _ended(status, UpdateStatus.COMPLETED, f"update completed{note}", now)
