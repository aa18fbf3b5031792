"""Health checks: the runner's STARTING-until-healthy rule, the Engine config, and the real engine's verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import aiodocker
import pytest
from agent_fakes import FakeController, FakeExecutor, RecordingSink, make_task, wait_until

from shoal import ids, states, units
from shoal.agent import runner as runner_
from shoal.agent.executor import base, docker, dockerhealth
from shoal.agent.settings import AgentSettings
from shoal.v1 import objects_pb2, types_pb2
from tests.integration import harness

Health = types_pb2.TaskStatus.Health
TIMINGS = runner_.RunnerTimings(retry_base=0.001, retry_cap=0.01)


# ---- the runner, with a fake engine that has health checks ----------------------------------


class HealthController(FakeController):
    """A fake container with a health check whose verdict the test gives."""

    def __init__(self, executor: FakeExecutor, task: objects_pb2.Task, verdicts: asyncio.Queue[str]) -> None:
        super().__init__(executor, task)
        self.verdicts = verdicts

    async def has_healthcheck(self) -> bool:
        return True

    async def wait_healthy(self) -> base.ExitStatus | None:
        verdict = await self.verdicts.get()
        if verdict == "unhealthy":
            await self.shutdown()
            raise base.UnhealthyError("task: container unhealthy: probe said no")
        return None

    async def wait(self) -> base.ExitStatus:
        ended = asyncio.ensure_future(super().wait())
        verdict = asyncio.ensure_future(self.verdicts.get())
        done, _ = await asyncio.wait((ended, verdict), return_when=asyncio.FIRST_COMPLETED)
        if verdict in done:
            ended.cancel()
            await self.shutdown()
            raise base.UnhealthyError("task: container unhealthy: probe said no")
        verdict.cancel()
        return ended.result()


class HealthExecutor(FakeExecutor):
    def __init__(self) -> None:
        super().__init__()
        self.verdicts: asyncio.Queue[str] = asyncio.Queue()

    def controller(self, task: objects_pb2.Task) -> HealthController:
        return HealthController(self, task, self.verdicts)


@pytest.fixture
async def run() -> AsyncIterator:  # type: ignore[type-arg]
    jobs: list[asyncio.Task[None]] = []
    executor, sink = HealthExecutor(), RecordingSink()

    def start(task: objects_pb2.Task) -> runner_.Runner:
        runner = runner_.Runner(task=task, executor=executor, sink=sink, timings=TIMINGS, adopt=False)
        jobs.append(asyncio.create_task(runner.run()))
        return runner

    yield start, executor, sink
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)


async def test_a_checked_task_stays_starting_until_healthy_then_runs(run) -> None:  # type: ignore[no-untyped-def]
    start, executor, sink = run
    task = make_task()
    runner = start(task)
    await wait_until(lambda: runner.status.state == states.STARTING, what="STARTING")
    await asyncio.sleep(0.05)
    assert runner.status.state == states.STARTING
    assert runner.status.health == Health.HEALTH_STARTING
    executor.verdicts.put_nowait("healthy")
    await wait_until(lambda: runner.status.state == states.RUNNING, what="RUNNING")
    last = sink.last(task.id)
    assert last is not None and last.health == Health.HEALTHY
    assert last.started_at.seconds > 0


async def test_unhealthy_before_running_fails_the_task(run) -> None:  # type: ignore[no-untyped-def]
    start, executor, sink = run
    task = make_task()
    runner = start(task)
    await wait_until(lambda: runner.status.state == states.STARTING, what="STARTING")
    executor.verdicts.put_nowait("unhealthy")
    await wait_until(lambda: runner.status.state == states.FAILED, what="FAILED")
    assert (runner.status.health, runner.status.err) == (Health.UNHEALTHY, "task: container unhealthy: probe said no")
    assert not executor.containers[task.id].running  # stopped before the task was failed


async def test_unhealthy_while_running_fails_the_task(run) -> None:  # type: ignore[no-untyped-def]
    start, executor, sink = run
    task = make_task()
    runner = start(task)
    await wait_until(lambda: runner.status.state == states.STARTING, what="STARTING")
    executor.verdicts.put_nowait("healthy")
    await wait_until(lambda: runner.status.state == states.RUNNING, what="RUNNING")
    executor.verdicts.put_nowait("unhealthy")
    await wait_until(lambda: runner.status.state == states.FAILED, what="FAILED")
    assert runner.status.health == Health.UNHEALTHY
    assert sink.states(task.id)[-2:] == ["RUNNING", "FAILED"]


async def test_an_adopted_container_still_awaiting_its_check_stays_starting(run) -> None:  # type: ignore[no-untyped-def]
    start, executor, sink = run
    task = make_task()
    task.status.state = states.STARTING  # type: ignore[assignment]
    task.status.health = Health.HEALTH_STARTING  # type: ignore[assignment]
    executor.add_container(task, running=True)
    runner = runner_.Runner(task=task, executor=executor, sink=sink, timings=TIMINGS, adopt=True)
    job = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(0.05)
        assert runner.status.state == states.STARTING
        executor.verdicts.put_nowait("healthy")
        await wait_until(lambda: runner.status.state == states.RUNNING, what="RUNNING")
        assert runner.status.health == Health.HEALTHY
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


async def test_a_task_without_a_check_runs_at_once_with_its_start_time() -> None:
    executor, sink = FakeExecutor(), RecordingSink()
    task = make_task()
    runner = runner_.Runner(task=task, executor=executor, sink=sink, timings=TIMINGS, adopt=False)
    job = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: runner.status.state == states.RUNNING, what="RUNNING")
        assert runner.status.health == Health.HEALTH_NONE
        assert runner.status.started_at == runner.status.timestamp
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


# ---- the Engine config and verdicts ----------------------------------------------------------------


def test_engine_config_keeps_only_what_was_set() -> None:
    hc = types_pb2.HealthConfig(test=["CMD-SHELL", "true"], retries=2)
    hc.interval.CopyFrom(units.to_duration(1.5))
    assert dockerhealth.engine_config(hc) == {"Test": ["CMD-SHELL", "true"], "Interval": 1_500_000_000, "Retries": 2}
    assert dockerhealth.engine_config(types_pb2.HealthConfig()) == {}


def test_container_config_maps_the_spec_s_health_check() -> None:
    task = objects_pb2.Task(id="t", service_name="s", slot=1)
    task.spec.container.image = "x"
    assert "Healthcheck" not in docker.container_config(task, 10)
    task.spec.container.healthcheck.test.append("NONE")
    assert docker.container_config(task, 10)["Healthcheck"] == {"Test": ["NONE"]}


def test_verdicts_read_from_an_inspect_document() -> None:
    raw = {
        "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "false"], "Interval": 2_000_000_000}},
        "State": {"Health": {"Status": "unhealthy", "Log": [{"Output": "no\nanswer\n"}]}},
    }
    assert dockerhealth.has_check(raw)
    assert dockerhealth.interval(raw) == 2.0
    assert dockerhealth.verdict(raw) == ("unhealthy", "no answer")
    assert not dockerhealth.has_check({"Config": {"Healthcheck": {"Test": ["NONE"]}}})
    assert not dockerhealth.has_check({"Config": {}})


# ---- against the real engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    harness.check_docker()
    with harness.registry_with_image(tmp_path_factory.mktemp("health-registry")) as image:
        yield image


@pytest.fixture
async def engine() -> AsyncIterator[tuple[docker.DockerExecutor, str]]:
    node_id = ids.new_id()
    async with aiodocker.Docker() as client:
        settings = AgentSettings(controllers=("127.0.0.1:1",), node_name="health-test", engine_timeout=30.0)
        try:
            yield docker.DockerExecutor(client, settings), node_id
        finally:
            labelled = await client.containers.list(
                all=True, filters=json.dumps({"label": [f"{base.LABEL_NODE_ID}={node_id}"]})
            )
            for container in labelled:
                with contextlib.suppress(aiodocker.DockerError):
                    await container.delete(force=True)


def checked_task(node_id: str, image: str, check: str) -> objects_pb2.Task:
    task = objects_pb2.Task(id=ids.new_id(), service_id=ids.new_id(), service_name="health", slot=1, node_id=node_id)
    c = task.spec.container
    c.image = image
    c.command.extend(["sh", "-c"])
    c.args.append("trap 'exit 0' TERM; while true; do sleep 1; done")
    c.stop_grace_period.CopyFrom(units.to_duration(2))
    c.healthcheck.test.extend(["CMD-SHELL", check])
    c.healthcheck.interval.CopyFrom(units.to_duration(0.2))
    c.healthcheck.timeout.CopyFrom(units.to_duration(2))
    c.healthcheck.retries = 2
    return task


@pytest.mark.integration
async def test_the_engine_decides_healthy_and_unhealthy(engine, registry_image: str) -> None:  # type: ignore[no-untyped-def]
    executor, node_id = engine
    good = executor.controller(checked_task(node_id, registry_image, "true"))
    await good.prepare()
    assert await good.has_healthcheck()
    await good.start()
    assert await good.wait_healthy() is None

    bad = executor.controller(checked_task(node_id, registry_image, "echo sick; false"))
    await bad.prepare()
    await bad.start()
    with pytest.raises(base.UnhealthyError, match="container unhealthy: sick"):
        await asyncio.wait_for(bad.wait_healthy(), 60)
    state = await bad.inspect()
    assert state is not None and not state.running  # stopped before the error


@pytest.mark.integration
async def test_a_running_container_that_turns_unhealthy_is_stopped(engine, registry_image: str) -> None:  # type: ignore[no-untyped-def]
    executor, node_id = engine
    ctlr = executor.controller(checked_task(node_id, registry_image, "test ! -e /sick"))
    await ctlr.prepare()
    await ctlr.start()
    assert await ctlr.wait_healthy() is None
    waiting = asyncio.ensure_future(ctlr.wait())
    await asyncio.sleep(0.5)
    assert not waiting.done()
    state = await ctlr.inspect()
    assert state is not None
    exec_ = await executor._docker.containers.container(state.container_id).exec(["touch", "/sick"])
    async with exec_.start(detach=False) as stream:
        await stream.read_out()
    with pytest.raises(base.UnhealthyError):
        await asyncio.wait_for(waiting, 60)
    state = await ctlr.inspect()
    assert state is not None and not state.running


@pytest.mark.integration
async def test_no_healthcheck_disables_the_image_s(engine, registry_image: str) -> None:  # type: ignore[no-untyped-def]
    executor, node_id = engine
    task = checked_task(node_id, registry_image, "true")
    del task.spec.container.healthcheck.test[:]
    task.spec.container.healthcheck.Clear()
    task.spec.container.healthcheck.test.append("NONE")
    ctlr = executor.controller(task)
    await ctlr.prepare()
    assert not await ctlr.has_healthcheck()


async def test_an_unhealthy_verdict_wins_over_the_end_its_own_stop_causes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine may report the container's end (caused by the watch stopping it) before the watch
    # has raised its verdict: the task still ended unhealthy, not with the stop's exit code.
    ctlr = docker.DockerController(None, make_task(), AgentSettings(controllers=("127.0.0.1:1",), node_name="n1"))  # type: ignore[arg-type]
    stopped = asyncio.Event()
    raw = {"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}, "State": {"Health": {"Status": "unhealthy"}}}

    async def inspect() -> base.ContainerState:
        return base.ContainerState("c1", running=not stopped.is_set(), started=True, exit_code=0, raw=raw)

    async def wait_for_end() -> base.ExitStatus:
        await stopped.wait()
        return base.ExitStatus(exit_code=137)

    async def shutdown() -> None:
        stopped.set()
        await asyncio.sleep(0.05)  # the engine confirms the stop after the container's end is out

    monkeypatch.setattr(ctlr, "inspect", inspect)
    monkeypatch.setattr(ctlr, "_wait", wait_for_end)
    monkeypatch.setattr(ctlr, "_shutdown", shutdown)
    with pytest.raises(base.UnhealthyError, match="container unhealthy"):
        await asyncio.wait_for(ctlr.wait(), 5)
