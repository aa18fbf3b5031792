"""The reporter: latest status per task, batches, retries, and re-sending after a reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from agent_fakes import wait_until

from shoal import states
from shoal.agent import reporter as reporter_
from shoal.agent.reports import Refused
from shoal.v1 import dispatcher_pb2, types_pb2

SETTINGS = reporter_.ReporterSettings(batch_size=3, flush_interval=0.001, retry_base=0.001, retry_cap=0.01)


def status(state: int, message: str = "") -> types_pb2.TaskStatus:
    return types_pb2.TaskStatus(state=state, message=message)  # type: ignore[arg-type]


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name.lower())


class Controller:
    """Records batches; fails the next calls with queued errors."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.errors: list[Exception] = []
        self.gate: asyncio.Event | None = None

    async def send(self, updates: Sequence[dispatcher_pb2.TaskStatusUpdate]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.batches.append([(u.task_id, u.status.state) for u in updates])

    def sent(self) -> list[tuple[str, int]]:
        return [item for batch in self.batches for item in batch]


class Session:
    """Runs reporter.run for as long as the context is open, like one session."""

    def __init__(self, reporter: reporter_.Reporter, controller: Controller) -> None:
        self._reporter = reporter
        self._controller = controller
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Controller:
        self._task = asyncio.create_task(self._reporter.run(self._controller.send))
        return self._controller

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def reporter() -> AsyncIterator[reporter_.Reporter]:
    yield reporter_.Reporter(SETTINGS)


async def test_keeps_only_the_latest_forward_status(reporter: reporter_.Reporter) -> None:
    reporter.update("t1", status(states.ACCEPTED))
    reporter.update("t1", status(states.PREPARING))
    reporter.update("t1", status(states.READY))
    reporter.update("t1", status(states.PREPARING))  # lower: dropped
    reporter.update("t1", status(states.READY, "again"))  # identical state: dropped
    assert reporter.pending == 1
    latest = reporter.latest("t1")
    assert latest is not None
    assert latest.state == states.READY
    assert latest.message == ""

    async with Session(reporter, Controller()) as controller:
        await wait_until(lambda: controller.sent(), what="a batch")
    assert controller.sent() == [("t1", states.READY)]


async def test_sends_in_bounded_batches(reporter: reporter_.Reporter) -> None:
    for i in range(7):
        reporter.update(f"t{i}", status(states.RUNNING))
    async with Session(reporter, Controller()) as controller:
        await wait_until(lambda: len(controller.sent()) == 7, what="all statuses")
    assert all(len(batch) <= SETTINGS.batch_size for batch in controller.batches)
    assert reporter.pending == 0


async def test_resends_everything_after_a_new_session(reporter: reporter_.Reporter) -> None:
    reporter.update("t1", status(states.RUNNING))
    reporter.update("t2", status(states.COMPLETE))
    async with Session(reporter, Controller()) as first:
        await wait_until(lambda: len(first.sent()) == 2, what="first session's report")
        reporter.update("t1", status(states.FAILED))
        await wait_until(lambda: len(first.sent()) == 3, what="the change")

    async with Session(reporter, Controller()) as second:
        await wait_until(lambda: len(second.sent()) == 2, what="re-sent statuses")
    assert sorted(second.sent()) == [("t1", states.FAILED), ("t2", states.COMPLETE)]


async def test_updates_while_disconnected_wait_for_the_next_session(reporter: reporter_.Reporter) -> None:
    reporter.update("t1", status(states.ACCEPTED))
    reporter.update("t1", status(states.RUNNING))
    async with Session(reporter, Controller()) as controller:
        await wait_until(lambda: controller.sent(), what="a batch")
    assert controller.sent() == [("t1", states.RUNNING)]


async def test_failed_batches_are_retried(reporter: reporter_.Reporter) -> None:
    controller = Controller()
    # A broken stream, and an answer that did not come in time.
    controller.errors = [rpc_error(grpc.StatusCode.UNAVAILABLE), TimeoutError()]
    reporter.update("t1", status(states.RUNNING))
    async with Session(reporter, controller):
        await wait_until(lambda: controller.sent(), what="a batch after retries")
    assert controller.sent() == [("t1", states.RUNNING)]
    assert not controller.errors


async def test_a_newer_status_replaces_one_in_a_failed_batch(reporter: reporter_.Reporter) -> None:
    controller = Controller()
    controller.gate = asyncio.Event()
    controller.errors = [rpc_error(grpc.StatusCode.UNAVAILABLE)]
    reporter.update("t1", status(states.RUNNING))
    async with Session(reporter, controller):
        await wait_until(lambda: reporter.pending == 0, what="the first batch in flight")
        reporter.update("t1", status(states.COMPLETE))
        controller.gate.set()
        await wait_until(lambda: controller.sent(), what="a batch")
    assert controller.sent() == [("t1", states.COMPLETE)]


async def test_a_refused_batch_is_dropped_without_wedging(reporter: reporter_.Reporter) -> None:
    controller = Controller()
    controller.errors = [Refused("cannot update task theirs: it is not assigned to this node")]
    reporter.update("theirs", status(states.RUNNING))
    async with Session(reporter, controller):
        await wait_until(lambda: not controller.errors, what="the refused batch")
        reporter.update("ours", status(states.RUNNING))
        await wait_until(lambda: controller.sent(), what="the next batch")
    assert controller.sent() == [("ours", states.RUNNING)]


async def test_forgotten_tasks_are_not_sent(reporter: reporter_.Reporter) -> None:
    reporter.update("gone", status(states.RUNNING))
    reporter.update("kept", status(states.RUNNING))
    reporter.forget("gone")
    async with Session(reporter, Controller()) as controller:
        await wait_until(lambda: controller.sent(), what="a batch")
    assert controller.sent() == [("kept", states.RUNNING)]


def test_a_step_up_that_just_came_in_waits_for_the_next_batch() -> None:
    """ACCEPTED..STARTING reported a moment ago waits one interval (its task is likely about to move on);
    RUNNING and final states go at once, and a step that has lasted the interval goes too."""
    now = [0.0]
    reporter = reporter_.Reporter(reporter_.ReporterSettings(batch_size=10, flush_interval=0.25), clock=lambda: now[0])
    reporter.update("starting", status(states.PREPARING))
    reporter.update("up", status(states.RUNNING))
    reporter.update("failed", status(states.FAILED))
    now[0] = 0.1
    assert [u.task_id for u in reporter._take_batch()] == ["up", "failed"]
    reporter.update("starting", status(states.STARTING))  # moved on: a new moment
    now[0] = 0.3
    assert reporter._take_batch() == []
    now[0] = 0.36
    assert [(u.task_id, u.status.state) for u in reporter._take_batch()] == [("starting", states.STARTING)]
    assert reporter.pending == 0


async def test_a_step_up_that_lasts_is_sent() -> None:
    """With nothing but a fresh step pending, the reporter looks again after an interval and sends it."""
    reporter = reporter_.Reporter(reporter_.ReporterSettings(batch_size=10, flush_interval=0.05))
    reporter.update("t1", status(states.PREPARING))
    async with Session(reporter, Controller()) as controller:
        await wait_until(lambda: controller.sent(), what="the step, once it has lasted an interval")
    assert controller.sent() == [("t1", states.PREPARING)]
