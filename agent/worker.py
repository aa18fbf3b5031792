"""The worker: reconciles the node's assignment set into one runner per task.

The session feeds it the controller's assignment messages: `assign` takes a
COMPLETE set, `update` an INCREMENTAL list of changes. Both are synchronous
and cheap: they create, update or cancel runners and start background jobs.

- A COMPLETE set starts or updates a runner for every task in it, removes the
  container of every task that is not, and sweeps the engine for containers
  labelled with this node whose task is not in the set (tasks replaced or
  deleted while the agent was away).
- An INCREMENTAL UPDATE creates or updates a runner; REMOVE cancels the runner
  and removes the task's container.
- Nothing is removed before the first COMPLETE set of the process: until the
  agent has heard the whole set, it cannot tell a stale container from a live one.

On the first COMPLETE set (and for any task whose last known state is
STARTING or later) the runner adopts the existing container instead of making
a new one. Leaving the worker (its `async with`) cancels the runners but never
stops a container: a restarted agent adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Protocol

from shoal import backoff, logs, states
from shoal.agent import runner as runner_
from shoal.agent.executor import base
from shoal.v1 import dispatcher_pb2, objects_pb2

log = logging.getLogger(__name__)


class StatusStore(runner_.StatusSink, Protocol):
    """The reporter as the worker sees it: runners report into it; removed tasks are forgotten."""

    def forget(self, task_id: str) -> None:
        """Stop reporting `task_id`."""
        ...


class FileSink(Protocol):
    """Where the secrets and configs of the assignment set go (files.FileStore)."""

    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None: ...

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None: ...


class Worker:
    """Runners of the tasks assigned to this node; use as `async with Worker(...) as worker`."""

    def __init__(
        self,
        *,
        node_id: str,
        executor: base.Executor,
        reporter: StatusStore,
        timings: runner_.RunnerTimings,
        files: FileSink | None = None,
        networks: FileSink | None = None,
    ) -> None:
        self._node_id = node_id
        self._files = files
        self._networks = networks
        self._executor = executor
        self._reporter = reporter
        self._timings = timings
        self._runners: dict[str, runner_.Runner] = {}
        self._runner_tasks: dict[str, asyncio.Task[None]] = {}
        self._removals: dict[str, asyncio.Task[None]] = {}
        self._sweep: asyncio.Task[None] | None = None
        self._synced = False
        self._open = False

    async def __aenter__(self) -> Worker:
        if self._open:
            raise RuntimeError("a Worker cannot be opened more than once")
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Cancel every runner and background job; containers keep running."""
        jobs = [*self._runner_tasks.values(), *self._removals.values()]
        if self._sweep is not None:
            jobs.append(self._sweep)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self._runner_tasks.clear()
        self._removals.clear()

    @property
    def synced(self) -> bool:
        """True once the first COMPLETE assignment set has arrived."""
        return self._synced

    def runner(self, task_id: str) -> runner_.Runner | None:
        """The runner of an assigned task, if this node has one."""
        return self._runners.get(task_id)

    def runners(self) -> list[runner_.Runner]:
        """Every runner, in no particular order."""
        return list(self._runners.values())

    def observed_states(self) -> Iterable[int]:
        """The observed state of every assigned task (for the metrics collector)."""
        return [r.status.state for r in self._runners.values()]

    @property
    def busy(self) -> bool:
        """True while removals or a sweep are still running (tests poll this)."""
        return bool(self._removals) or (self._sweep is not None and not self._sweep.done())

    def assign(
        self, tasks: Sequence[objects_pb2.Task], files: Sequence[dispatcher_pb2.AssignmentChange] = ()
    ) -> None:
        """Apply a COMPLETE assignment set: the secrets, configs and networks first, then the tasks."""
        if self._files is not None:
            self._files.replace(list(files))
        if self._networks is not None:
            self._networks.replace(list(files))
        first = not self._synced
        assigned = {t.id for t in tasks}
        for task in tasks:
            self._upsert(task, adopt=first)
        for task_id in [t for t in self._runners if t not in assigned]:
            self._remove(self._runners[task_id].task)
        self._synced = True
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = asyncio.create_task(self._sweep_stale(), name="worker-sweep")
        log.info("assignment set: %d tasks", len(tasks))

    def update(self, changes: Sequence[dispatcher_pb2.AssignmentChange]) -> None:
        """Apply an INCREMENTAL list of assignment changes (files and networks, which come first, and tasks)."""
        if self._files is not None:
            self._files.apply(list(changes))
        if self._networks is not None:
            self._networks.apply(list(changes))
        for change in changes:
            if change.WhichOneof("item") != "task":
                continue
            if change.action == dispatcher_pb2.AssignmentChange.REMOVE:
                if not self._synced:
                    log.warning("ignoring removal of task %s before the first complete set", change.task.id)
                    continue
                self._remove(change.task)
            else:
                self._upsert(change.task, adopt=not self._synced)

    def _upsert(self, task: objects_pb2.Task, *, adopt: bool) -> None:
        existing = self._runners.get(task.id)
        if existing is not None:
            existing.update(task)
            return
        if task.id in self._removals:
            log.warning("task %s is being removed; not starting it again", task.id)
            return
        runner = runner_.Runner(
            task=task,
            executor=self._executor,
            sink=self._reporter,
            timings=self._timings,
            adopt=adopt or task.status.state >= states.STARTING,
        )
        self._runners[task.id] = runner
        self._runner_tasks[task.id] = asyncio.create_task(runner.run(), name=f"runner-{task.id}")
        self._runner_tasks[task.id].add_done_callback(_log_crash)

    def _remove(self, task: objects_pb2.Task) -> None:
        """Cancel the task's runner, then stop and remove its container in the background."""
        if task.id in self._removals:
            return
        runner = self._runners.pop(task.id, None)
        runner_task = self._runner_tasks.pop(task.id, None)
        if runner_task is not None:
            runner_task.cancel()
        ctlr = runner.controller if runner is not None and runner.controller is not None else None
        job = asyncio.create_task(self._remove_container(task, runner_task, ctlr), name=f"remove-{task.id}")
        self._removals[task.id] = job
        job.add_done_callback(lambda _: self._removals.pop(task.id, None))

    async def _remove_container(
        self,
        task: objects_pb2.Task,
        runner_task: asyncio.Task[None] | None,
        ctlr: base.Controller | None,
    ) -> None:
        logs.bind(task_id=task.id, service_id=task.service_id)
        if runner_task is not None:
            # Let the runner finish its cancellation so it cannot start the container behind our back.
            await asyncio.gather(runner_task, return_exceptions=True)
        retry = backoff.Backoff(base=self._timings.retry_base, cap=self._timings.retry_cap)
        while True:
            try:
                ctlr = ctlr or self._executor.controller(task)
                await ctlr.shutdown()
                await ctlr.remove()
                break
            except base.TemporaryError as exc:
                delay = retry.next()
                log.warning("removing container: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            except base.ExecutorError as exc:
                log.error("removing container failed: %s", exc)
                break
        self._reporter.forget(task.id)
        log.info("task removed from this node")

    async def _sweep_stale(self) -> None:
        """Remove containers of this node whose task is not assigned (retrying while the engine is away)."""
        retry = backoff.Backoff(base=self._timings.retry_base, cap=self._timings.retry_cap)
        while True:
            try:
                found = await self._executor.list_containers(self._node_id)
                break
            except base.TemporaryError as exc:
                delay = retry.next()
                log.warning("listing containers: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            except base.ExecutorError as exc:
                log.error("listing containers failed: %s", exc)
                return
        for summary in found:
            # Compared with the runners now, not when the sweep began: a task assigned since stays.
            if summary.task_id not in self._runners and summary.task_id not in self._removals:
                log.info("removing stale container %s of task %s", summary.container_id[:12], summary.task_id)
                self._remove(summary.task)


def _log_crash(task: asyncio.Task[None]) -> None:
    """A runner never raises; if one does, it is a bug worth a traceback."""
    with contextlib.suppress(asyncio.CancelledError):
        exc = task.exception()
        if exc is not None:
            log.error("runner %s crashed", task.get_name(), exc_info=exc)
