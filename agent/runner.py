"""One task runner per task: advance the observed state one step at a time toward the desired state.

The worker creates a runner for every task assigned to this node and feeds it
newer versions of the task (`update`). The runner calls its executor
controller and pushes every new status into a `StatusSink` (the reporter).
`plan` and `advance` are SwarmKit's `exec.Do` (reference/swarmkit.md section 2):

    ASSIGNED -> ACCEPTED -> PREPARING -prepare-> READY -> STARTING -start-> RUNNING -wait-> COMPLETE | FAILED
    desired >= SHUTDOWN: shutdown (if not terminal) -> SHUTDOWN

A container with a health check (its own or its image's) stays STARTING,
with health HEALTH_STARTING, until the check first passes; it is FAILED
with health UNHEALTHY (after the container is stopped) when the engine finds
it unhealthy, before or after it reached RUNNING.

The pause points (ASSIGNED, ACCEPTED, READY) only advance while the observed
state is below the desired one, which is how desired=READY prepares a task
without starting it. PREPARING, STARTING and RUNNING always go on. Temporary
errors retry with backoff and leave the state alone; other errors end the
task: REJECTED before STARTING, FAILED at or after it. States never go back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Protocol

from shoal import backoff, logs, states, units
from shoal.agent import metrics
from shoal.agent.executor import base
from shoal.v1 import objects_pb2, types_pb2

log = logging.getLogger(__name__)

Health = types_pb2.TaskStatus.Health

#: Steps of `plan`, named for what they do.
ACCEPT, BEGIN_PREPARE, PREPARE, BEGIN_START, START, WAIT, SHUTDOWN = (
    "accept",
    "begin-prepare",
    "prepare",
    "begin-start",
    "start",
    "wait",
    "shutdown",
)
#: The pseudo-step that inspects an existing container after an agent restart.
ADOPT = "adopt"
#: Steps that only change the status (no executor call), run without a task of their own.
_INSTANT = frozenset({ACCEPT, BEGIN_PREPARE})


class StatusSink(Protocol):
    """Where runners send the statuses they observe (the reporter)."""

    def update(self, task_id: str, status: types_pb2.TaskStatus) -> None:
        """Remember `status` as `task_id`'s latest and send it soon."""
        ...


def plan(observed: int, desired: int) -> str | None:
    """The next step for a task at `observed` wanting `desired`, or None when there is nothing to do."""
    if desired >= states.SHUTDOWN:
        return None if states.is_terminal(observed) else SHUTDOWN
    if observed > desired:
        return None
    if observed < states.ACCEPTED:
        return ACCEPT if observed < desired else None
    if observed == states.ACCEPTED:
        return BEGIN_PREPARE if observed < desired else None
    if observed == states.PREPARING:
        return PREPARE
    if observed == states.READY:
        return BEGIN_START if observed < desired else None
    if observed == states.STARTING:
        return START
    if observed == states.RUNNING:
        return WAIT
    return None


def next_status(
    current: types_pb2.TaskStatus, state: int, message: str, *, err: str = "", **container: int | str
) -> types_pb2.TaskStatus:
    """A copy of `current` moved to `state`, stamped now; `container` sets ContainerStatus fields."""
    status = types_pb2.TaskStatus()
    status.CopyFrom(current)
    status.state = state  # type: ignore[assignment]
    status.message = message
    status.err = err
    units.stamp_now(status.timestamp)
    for key, value in container.items():
        setattr(status.container, key, value)
    return status


_CHECKS_HEALTH: dict[type, bool] = {}


def checks_health(ctlr: base.Controller) -> bool:
    """True if the controller implements `base.ControllerHealth`, known per class.

    An isinstance check against a runtime-checkable protocol looks up each of
    its members every time: 1.6 % of a hollow process's CPU in a 100,000-task run.
    """
    kind = type(ctlr)
    known = _CHECKS_HEALTH.get(kind)
    if known is None:
        known = _CHECKS_HEALTH[kind] = isinstance(ctlr, base.ControllerHealth)
    return known


async def advance(step: str, status: types_pb2.TaskStatus, ctlr: base.Controller) -> types_pb2.TaskStatus:
    """Run `step` (from `plan`) and return the resulting status; executor errors propagate."""
    if step == ACCEPT:
        return next_status(status, states.ACCEPTED, "accepted")
    if step == BEGIN_PREPARE:
        return next_status(status, states.PREPARING, "preparing")
    if step == PREPARE:
        container_id = await ctlr.prepare()
        return next_status(status, states.READY, "prepared", container_id=container_id)
    if step == BEGIN_START:
        checked = checks_health(ctlr) and await ctlr.has_healthcheck()  # type: ignore[attr-defined]
        started = next_status(status, states.STARTING, "starting")
        started.health = Health.HEALTH_STARTING if checked else Health.HEALTH_NONE
        return started
    if step == START:
        await ctlr.start()
        if status.health == Health.HEALTH_STARTING and checks_health(ctlr):
            ended = await ctlr.wait_healthy()  # type: ignore[attr-defined]
            if ended is not None:
                return exited(status, ended)
            return running(status, "started and healthy", Health.HEALTHY)
        return running(status, "started")
    if step == WAIT:
        return exited(status, await ctlr.wait())
    if step == SHUTDOWN:
        await ctlr.shutdown()
        return next_status(status, states.SHUTDOWN, "shutdown")
    raise ValueError(f"unknown step {step!r}")


def running(status: types_pb2.TaskStatus, message: str, health: int | None = None) -> types_pb2.TaskStatus:
    """RUNNING, stamped with the time it started (what the update monitor window counts from)."""
    new = next_status(status, states.RUNNING, message)
    new.started_at.CopyFrom(new.timestamp)
    if health is not None:
        new.health = health  # type: ignore[assignment]
    return new


def exited(status: types_pb2.TaskStatus, result: base.ExitStatus) -> types_pb2.TaskStatus:
    """COMPLETE for exit code 0, else FAILED with the code in the error."""
    if result.exit_code == 0:
        return next_status(status, states.COMPLETE, "finished", exit_code=0)
    err = f"task: non-zero exit ({result.exit_code})" + (f": {result.error}" if result.error else "")
    return next_status(status, states.FAILED, "failed", err=err, exit_code=result.exit_code)


def failed(status: types_pb2.TaskStatus, err: str) -> types_pb2.TaskStatus:
    """REJECTED before STARTING, FAILED at or after it."""
    state = states.FAILED if status.state >= states.STARTING else states.REJECTED
    return next_status(status, state, "rejected" if state == states.REJECTED else "failed", err=err)


def unhealthy(status: types_pb2.TaskStatus, err: str) -> types_pb2.TaskStatus:
    """FAILED because the health check failed (the container was stopped)."""
    new = next_status(status, states.FAILED, "unhealthy", err=err)
    new.health = Health.UNHEALTHY
    return new


def adopted(
    status: types_pb2.TaskStatus, desired: int, found: base.ContainerState | None
) -> types_pb2.TaskStatus | None:
    """What an existing container (or its absence) says about a task after an agent restart; None: no news."""
    if found is None:
        if status.state < states.STARTING:
            return None
        if desired >= states.SHUTDOWN:
            return next_status(status, states.SHUTDOWN, "shutdown")
        return failed(status, "container disappeared")
    ids = {"container_id": found.container_id}
    if found.running:
        if status.state >= states.RUNNING or status.health == Health.HEALTH_STARTING:
            return None  # running, or still to pass its health check: the START step waits for it
        adopted_status = next_status(status, states.RUNNING, "adopted", pid=found.pid, **ids)
        adopted_status.started_at.CopyFrom(adopted_status.timestamp)
        return adopted_status
    if found.started:
        return exited(status, base.ExitStatus(found.exit_code, found.error))
    if status.state >= states.RUNNING:
        return failed(status, "container is not running")
    return None  # created, never started: the normal steps go on from here


@dataclasses.dataclass(frozen=True)
class RunnerTimings:
    """Retry backoff bounds for temporary executor errors."""

    retry_base: float
    retry_cap: float


class Runner:
    """Drives one task; `run()` is its asyncio task, `update()` feeds it newer versions of the task."""

    def __init__(
        self,
        *,
        task: objects_pb2.Task,
        executor: base.Executor,
        sink: StatusSink,
        timings: RunnerTimings,
        adopt: bool,
    ) -> None:
        self._task = objects_pb2.Task()
        self._task.CopyFrom(task)
        self._status = types_pb2.TaskStatus()
        self._status.CopyFrom(task.status)
        self._executor = executor
        self._sink = sink
        self._timings = timings
        self._adopt = adopt and not states.is_terminal(self._status.state)
        self._changed = asyncio.Event()
        self._step: asyncio.Task[types_pb2.TaskStatus] | None = None
        self._step_name = ""
        self.controller: base.Controller | None = None

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def task(self) -> objects_pb2.Task:
        """The newest version of the task this runner accepted (read-only)."""
        return self._task

    @property
    def status(self) -> types_pb2.TaskStatus:
        """The latest observed status (read-only)."""
        return self._status

    @property
    def desired_state(self) -> int:
        return self._task.desired_state

    def update(self, task: objects_pb2.Task) -> bool:
        """Take a newer version of the task; the desired state only ever rises. False if ignored."""
        desired = max(self._task.desired_state, task.desired_state)
        newer = task.meta.version > self._task.meta.version
        if not newer and desired == self._task.desired_state:
            return False
        raised = desired > self._task.desired_state
        if newer:
            self._task.CopyFrom(task)
        self._task.desired_state = desired
        if raised:
            self._changed.set()
            # A long step (waiting for the container, pulling) must not delay a shutdown.
            step = self._step
            if desired >= states.SHUTDOWN and step is not None and self._step_name != SHUTDOWN:
                step.cancel()
        return True

    async def run(self) -> None:
        """Advance the task until it is terminal; cancel to abandon it (the container is left alone)."""
        logs.bind(task_id=self._task.id, service_id=self._task.service_id)
        retry = backoff.Backoff(base=self._timings.retry_base, cap=self._timings.retry_cap)
        try:
            self.controller = self._executor.controller(self._task)
        except base.ExecutorError as exc:
            self._set(failed(self._status, str(exc)))
            return
        while not states.is_terminal(self._status.state):
            self._changed.clear()
            step = ADOPT if self._adopt else plan(self._status.state, self._task.desired_state)
            if step is None:
                await self._changed.wait()
                continue
            try:
                result = await self._run_step(step)
            except base.TemporaryError as exc:
                delay = retry.next()
                log.warning("%s: %s; retrying in %.1fs", step, exc, delay)
                await asyncio.sleep(delay)
                continue
            except base.UnhealthyError as exc:
                log.warning("%s: %s", step, exc)
                self._set(unhealthy(self._status, str(exc)))
                continue
            except Exception as exc:  # any other failure ends the task, as in SwarmKit's Do
                log.error("%s failed: %s", step, exc, exc_info=not isinstance(exc, base.ExecutorError))
                self._set(failed(self._status, str(exc)))
                continue
            retry.reset()
            if step == ADOPT:
                self._adopt = False
            if result is not None:
                self._set(result)

    async def _run_step(self, step: str) -> types_pb2.TaskStatus | None:
        """One step as its own task, so that `update` can interrupt it; None if it was interrupted."""
        assert self.controller is not None
        if step == ADOPT:
            return adopted(self._status, self._task.desired_state, await self.controller.inspect())
        if step in _INSTANT:
            return await advance(step, self._status, self.controller)  # nothing to interrupt: no task of its own
        self._step = asyncio.ensure_future(advance(step, self._status, self.controller))
        self._step_name = step
        try:
            return await self._step
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the runner itself is being cancelled
            log.info("%s interrupted: desired state is now %s", step, states.name(self._task.desired_state))
            return None
        finally:
            self._step = None

    def _set(self, status: types_pb2.TaskStatus) -> None:
        """Record and report a new status; a status that would move backwards is dropped."""
        if not states.may_advance(self._status.state, status.state):
            return
        if log.isEnabledFor(logging.INFO):  # the names alone were 3 % of a hollow process at warning level
            log.info(
                "%s->%s%s",
                states.name(self._status.state),
                states.name(status.state),
                f" err={status.err!r}" if status.err else "",
            )
        self._status = status
        self._sink.update(self._task.id, status)
        if status.state in (states.COMPLETE, states.FAILED) and status.container.container_id:
            # Its container ended without being asked to (a stop leads to SHUTDOWN): a restart follows.
            metrics.record_exit(self._task.service_name, self._task.slot)
