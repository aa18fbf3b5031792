"""The task runner: one state per step toward the desired state, against a fake executor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from agent_fakes import FakeExecutor, RecordingSink, make_task, settle, wait_until

from shoal import states
from shoal.agent import runner as runner_
from shoal.agent.executor import base
from shoal.v1 import objects_pb2

TIMINGS = runner_.RunnerTimings(retry_base=0.001, retry_cap=0.01)
UP_TO_RUNNING = ["ACCEPTED", "PREPARING", "READY", "STARTING", "RUNNING"]


class Harness:
    def __init__(self) -> None:
        self.executor = FakeExecutor()
        self.sink = RecordingSink()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, task: objects_pb2.Task, *, adopt: bool = False) -> runner_.Runner:
        runner = runner_.Runner(task=task, executor=self.executor, sink=self.sink, timings=TIMINGS, adopt=adopt)
        self.tasks.append(asyncio.create_task(runner.run()))
        return runner

    async def reaches(self, runner: runner_.Runner, state: int) -> None:
        await wait_until(lambda: runner.status.state >= state, what=f"state {states.name(state)}")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    for task in h.tasks:
        task.cancel()
    await asyncio.gather(*h.tasks, return_exceptions=True)


@pytest.mark.parametrize(
    ("observed", "desired", "step"),
    [
        (states.ASSIGNED, states.RUNNING, runner_.ACCEPT),
        (states.ACCEPTED, states.RUNNING, runner_.BEGIN_PREPARE),
        (states.PREPARING, states.RUNNING, runner_.PREPARE),
        (states.READY, states.RUNNING, runner_.BEGIN_START),
        (states.STARTING, states.RUNNING, runner_.START),
        (states.RUNNING, states.RUNNING, runner_.WAIT),
        (states.COMPLETE, states.RUNNING, None),
        (states.FAILED, states.RUNNING, None),
        # desired READY: prepare, then hold
        (states.ASSIGNED, states.READY, runner_.ACCEPT),
        (states.PREPARING, states.READY, runner_.PREPARE),
        (states.READY, states.READY, None),
        # desired SHUTDOWN or REMOVE: stop unless already terminal
        (states.RUNNING, states.SHUTDOWN, runner_.SHUTDOWN),
        (states.ASSIGNED, states.REMOVE, runner_.SHUTDOWN),
        (states.COMPLETE, states.SHUTDOWN, None),
        (states.SHUTDOWN, states.REMOVE, None),
    ],
)
def test_plan(observed: int, desired: int, step: str | None) -> None:
    assert runner_.plan(observed, desired) == step


async def test_advances_one_state_at_a_time_to_complete(harness: Harness) -> None:
    task = make_task()
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    harness.executor.exit(task.id, 0)
    await harness.reaches(runner, states.COMPLETE)

    assert harness.sink.states(task.id) == [*UP_TO_RUNNING, "COMPLETE"]
    assert harness.executor.ops(task.id) == ["prepare", "start", "wait"]
    last = harness.sink.last(task.id)
    assert last is not None
    assert last.container.container_id == f"c-{task.id}"
    assert last.container.exit_code == 0
    assert all(s.timestamp.seconds > 0 for s in harness.sink.statuses[task.id])


async def test_non_zero_exit_fails_with_exit_code(harness: Harness) -> None:
    task = make_task()
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    harness.executor.exit(task.id, 3)
    await harness.reaches(runner, states.FAILED)

    last = harness.sink.last(task.id)
    assert last is not None
    assert last.state == states.FAILED
    assert last.container.exit_code == 3
    assert "non-zero exit (3)" in last.err


async def test_desired_ready_prepares_but_does_not_start(harness: Harness) -> None:
    task = make_task(desired=states.READY)
    runner = harness.start(task)
    await harness.reaches(runner, states.READY)
    await settle()  # give a wrong runner the chance to go on
    assert runner.status.state == states.READY
    assert "start" not in harness.executor.ops(task.id)

    assert runner.update(make_task(task.id, desired=states.RUNNING, version=2))
    await harness.reaches(runner, states.RUNNING)
    assert harness.sink.states(task.id) == UP_TO_RUNNING


async def test_shutdown_interrupts_wait_and_keeps_the_container(harness: Harness) -> None:
    task = make_task()
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    await wait_until(lambda: "wait" in harness.executor.ops(task.id), what="wait")

    runner.update(make_task(task.id, desired=states.SHUTDOWN, version=2))
    await harness.reaches(runner, states.SHUTDOWN)

    assert harness.sink.states(task.id) == [*UP_TO_RUNNING, "SHUTDOWN"]
    assert "shutdown" in harness.executor.ops(task.id)
    assert "remove" not in harness.executor.ops(task.id)
    assert task.id in harness.executor.containers


async def test_shutdown_interrupts_a_slow_prepare(harness: Harness) -> None:
    task = make_task()
    gate = harness.executor.hold("prepare", task.id)
    runner = harness.start(task)
    await harness.reaches(runner, states.PREPARING)
    await wait_until(lambda: "prepare" in harness.executor.ops(task.id), what="prepare")

    runner.update(make_task(task.id, desired=states.REMOVE, version=2))
    await harness.reaches(runner, states.SHUTDOWN)
    gate.set()
    assert harness.sink.states(task.id) == ["ACCEPTED", "PREPARING", "SHUTDOWN"]


async def test_desired_shutdown_before_start_never_starts(harness: Harness) -> None:
    task = make_task(desired=states.SHUTDOWN)
    runner = harness.start(task)
    await harness.reaches(runner, states.SHUTDOWN)
    assert harness.sink.states(task.id) == ["SHUTDOWN"]
    assert "start" not in harness.executor.ops(task.id)


async def test_permanent_error_before_starting_rejects(harness: Harness) -> None:
    task = make_task()
    harness.executor.fail("prepare", task.id, base.PermanentError("exec: pull 127.0.0.1:5000/nope: not found"))
    runner = harness.start(task)
    await harness.reaches(runner, states.REJECTED)
    last = harness.sink.last(task.id)
    assert last is not None
    assert last.state == states.REJECTED
    assert "not found" in last.err


async def test_permanent_error_at_start_fails(harness: Harness) -> None:
    task = make_task()
    harness.executor.fail("start", task.id, base.PermanentError("exec: start container: no such binary"))
    runner = harness.start(task)
    await harness.reaches(runner, states.FAILED)
    assert harness.sink.states(task.id) == ["ACCEPTED", "PREPARING", "READY", "STARTING", "FAILED"]


async def test_unresolvable_controller_rejects(harness: Harness) -> None:
    task = make_task(image="invalid")
    runner = harness.start(task)
    await harness.reaches(runner, states.REJECTED)
    assert harness.sink.states(task.id) == ["REJECTED"]


async def test_temporary_errors_retry_without_changing_state(harness: Harness) -> None:
    task = make_task()
    unreachable = base.TemporaryError("exec: create container: engine unreachable")
    harness.executor.fail("prepare", task.id, unreachable, unreachable, unreachable)
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    assert harness.executor.ops(task.id).count("prepare") == 4
    assert harness.sink.states(task.id) == UP_TO_RUNNING


async def test_update_never_lowers_desired_state_or_takes_older_versions(harness: Harness) -> None:
    task = make_task(desired=states.SHUTDOWN, version=5)
    runner = harness.start(task)
    await harness.reaches(runner, states.SHUTDOWN)

    assert not runner.update(make_task(task.id, desired=states.RUNNING, version=4))
    assert runner.update(make_task(task.id, desired=states.RUNNING, version=6))
    assert runner.desired_state == states.SHUTDOWN
    assert runner.task.meta.version == 6
    await settle()
    assert harness.sink.states(task.id) == ["SHUTDOWN"]


async def test_reported_states_only_increase(harness: Harness) -> None:
    task = make_task()
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    runner.update(make_task(task.id, desired=states.SHUTDOWN, version=2))
    await harness.reaches(runner, states.SHUTDOWN)
    reported = [s.state for s in harness.sink.statuses[task.id]]
    assert reported == sorted(set(reported))


async def test_adopts_a_running_container(harness: Harness) -> None:
    task = make_task(state=states.RUNNING, container_id="c-old")
    container_id = harness.executor.add_container(task, running=True)
    runner = harness.start(task, adopt=True)
    await wait_until(lambda: "wait" in harness.executor.ops(task.id), what="wait")
    assert harness.sink.states(task.id) == []  # still RUNNING: nothing new to say
    harness.executor.exit(task.id, 0)
    await harness.reaches(runner, states.COMPLETE)

    assert harness.executor.ops(task.id) == ["inspect", "wait"]
    assert harness.executor.containers[task.id].container_id == container_id


async def test_adopts_a_starting_task_whose_container_runs(harness: Harness) -> None:
    task = make_task(state=states.STARTING)
    harness.executor.add_container(task, running=True)
    runner = harness.start(task, adopt=True)
    await harness.reaches(runner, states.RUNNING)
    assert harness.sink.states(task.id) == ["RUNNING"]
    assert "start" not in harness.executor.ops(task.id)


@pytest.mark.parametrize(("code", "state"), [(0, states.COMPLETE), (2, states.FAILED)])
async def test_adopts_an_exited_container(harness: Harness, code: int, state: int) -> None:
    task = make_task(state=states.RUNNING)
    harness.executor.add_container(task, exit_code=code)
    runner = harness.start(task, adopt=True)
    await harness.reaches(runner, state)
    last = harness.sink.last(task.id)
    assert last is not None
    assert last.state == state
    assert last.container.exit_code == code
    assert "start" not in harness.executor.ops(task.id)


async def test_adoption_of_a_vanished_container_fails(harness: Harness) -> None:
    task = make_task(state=states.RUNNING)
    runner = harness.start(task, adopt=True)
    await harness.reaches(runner, states.FAILED)
    last = harness.sink.last(task.id)
    assert last is not None
    assert last.err == "container disappeared"


async def test_adoption_of_an_early_task_reuses_its_container(harness: Harness) -> None:
    """A container made before the agent restarted (state still PREPARING) is reused, not duplicated."""
    task = make_task(state=states.PREPARING)
    container_id = harness.executor.add_container(task)
    runner = harness.start(task, adopt=True)
    await harness.reaches(runner, states.RUNNING)
    last = harness.sink.last(task.id)
    assert last is not None
    assert last.container.container_id == container_id
    assert len(harness.executor.containers) == 1


async def test_adoption_never_restarts_a_finished_one_shot_task(harness: Harness) -> None:
    """The agent died after the container ran but before it reported anything past ACCEPTED."""
    task = make_task(state=states.ACCEPTED)
    harness.executor.add_container(task, exit_code=0)
    runner = harness.start(task, adopt=True)
    await harness.reaches(runner, states.COMPLETE)
    assert harness.sink.states(task.id) == ["COMPLETE"]
    assert "start" not in harness.executor.ops(task.id)


async def test_cancelling_the_runner_leaves_the_container_alone(harness: Harness) -> None:
    task = make_task()
    runner = harness.start(task)
    await harness.reaches(runner, states.RUNNING)
    harness.tasks[0].cancel()
    await asyncio.gather(harness.tasks[0], return_exceptions=True)
    assert harness.executor.containers[task.id].running
    assert "shutdown" not in harness.executor.ops(task.id)
