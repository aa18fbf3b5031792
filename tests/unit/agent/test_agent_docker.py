"""The Docker executor against the real dockerd and the local registry's busybox image."""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess
from collections.abc import AsyncIterator, Iterator

import aiodocker
import pytest
from agent_fakes import RecordingSink, wait_until

from shoal import ids, states, units
from shoal.agent import runner as runner_
from shoal.agent import worker as worker_
from shoal.agent.executor import base, docker
from shoal.agent.settings import AgentSettings
from shoal.v1 import objects_pb2
from tests.integration import harness

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def registry_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A test image in a registry of our own, absent from the engine, so that prepare() really pulls."""
    harness.check_docker()
    with harness.registry_with_image(tmp_path_factory.mktemp("agent-registry")) as image:
        yield image


@pytest.fixture
async def client() -> AsyncIterator[aiodocker.Docker]:
    async with aiodocker.Docker() as client:
        yield client


@pytest.fixture
async def pull_image(client: aiodocker.Docker, registry_image: str) -> str:
    """The registry's image, removed from the engine if an earlier test pulled it."""
    with contextlib.suppress(aiodocker.DockerError):
        await client.images.delete(registry_image, force=True)
    return registry_image


@pytest.fixture
def node_id() -> str:
    return ids.new_id()


@pytest.fixture
async def executor(client: aiodocker.Docker, node_id: str) -> AsyncIterator[docker.DockerExecutor]:
    settings = AgentSettings(controllers=("127.0.0.1:1",), node_name="docker-test", engine_timeout=30.0)
    try:
        yield docker.DockerExecutor(client, settings)
    finally:
        labelled = await client.containers.list(
            all=True, filters=json.dumps({"label": [f"{base.LABEL_NODE_ID}={node_id}"]})
        )
        for container in labelled:
            await container.delete(force=True)



def make_task(node_id: str, image: str, script: str, *, grace: float | None = None) -> objects_pb2.Task:
    task = objects_pb2.Task(id=ids.new_id(), service_id=ids.new_id(), service_name="agenttest", slot=3, node_id=node_id)
    spec = task.spec.container
    spec.image = image
    spec.command.extend(["sh", "-c"])
    spec.args.append(script)
    spec.env.append("GREETING=hello")
    spec.labels["team"] = "shoal"
    spec.workdir = "/tmp"
    task.spec.resources.limits.memory_bytes = 64 << 20
    if grace is not None:
        spec.stop_grace_period.CopyFrom(units.to_duration(grace))
    return task


async def test_describe(executor: docker.DockerExecutor) -> None:
    description = await executor.describe()
    assert description.executor == "docker"
    assert description.resources.nano_cpus >= 1_000_000_000
    assert description.resources.memory_bytes > 0
    assert description.engine.engine_version
    assert description.platform.os == "linux"


async def test_open_executor_talks_to_the_engine(client: aiodocker.Docker, tmp_path: pathlib.Path) -> None:
    settings = AgentSettings(controllers=("127.0.0.1:1",), node_name="docker-test", state_dir=tmp_path)
    try:
        async with docker.open_executor(settings) as executor:
            description = await executor.describe()
    finally:
        # The agent keeps its secrets tmpfs across restarts on purpose; a test must not.
        subprocess.run(["umount", str(settings.files_dir)], capture_output=True, check=False)  # noqa: ASYNC221
    assert description.engine.engine_version


async def test_container_lifecycle(
    executor: docker.DockerExecutor, client: aiodocker.Docker, node_id: str, pull_image: str
) -> None:
    task = make_task(node_id, pull_image, 'echo "$GREETING from $(pwd)"; echo oops >&2; exit 3')
    ctlr = executor.controller(task)

    container_id = await ctlr.prepare()
    await client.images.inspect(pull_image)  # pulled
    assert await ctlr.prepare() == container_id  # idempotent: the same container
    state = await ctlr.inspect()
    assert state is not None
    assert (state.container_id, state.running, state.started) == (container_id, False, False)
    raw = state.raw
    assert raw["Name"] == f"/agenttest.3.{task.id}"
    assert raw["Config"]["Labels"] == {
        "team": "shoal",
        base.LABEL_TASK_ID: task.id,
        base.LABEL_SERVICE_ID: task.service_id,
        base.LABEL_SERVICE_NAME: "agenttest",
        base.LABEL_NODE_ID: node_id,
        base.LABEL_SLOT: "3",
    }
    assert raw["Config"]["Entrypoint"] == ["sh", "-c"]
    assert raw["HostConfig"]["Memory"] == 64 << 20
    assert raw["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert raw["Config"]["StopTimeout"] == 10

    await ctlr.start()
    result = await ctlr.wait()
    assert result.exit_code == 3
    state = await ctlr.inspect()
    assert state is not None
    assert (state.running, state.started, state.exit_code) == (False, True, 3)

    assert isinstance(ctlr, base.ControllerLogs)
    entries = [entry async for entry in ctlr.logs(follow=False, tail=0, since=None)]
    # stdout and stderr are separate pipes: the engine keeps each one's order, not their interleaving.
    assert sorted((e.stream, e.data) for e in entries) == [("stderr", b"oops\n"), ("stdout", b"hello from /tmp\n")]
    assert all(e.timestamp is not None for e in entries)

    listed = await executor.list_containers(node_id)
    assert [(s.container_id, s.task_id, s.task.slot) for s in listed] == [(container_id, task.id, 3)]

    await ctlr.remove()
    assert await ctlr.inspect() is None
    await ctlr.remove()  # idempotent


async def test_shutdown_stops_within_the_grace_period_and_keeps_the_container(
    executor: docker.DockerExecutor, node_id: str, pull_image: str
) -> None:
    # `sh` as PID 1 ignores SIGTERM, so the engine kills it when the 1 s grace is over.
    task = make_task(node_id, pull_image, "sleep 300", grace=1)
    task.slot = 0  # a global task: named after the node
    ctlr = executor.controller(task)
    await ctlr.prepare()
    await ctlr.start()
    await ctlr.start()  # idempotent on a running container
    state = await ctlr.inspect()
    assert state is not None and state.running
    assert state.raw["Name"] == f"/agenttest.{node_id}.{task.id}"

    await ctlr.shutdown()
    state = await ctlr.inspect()
    assert state is not None
    assert not state.running
    assert state.exit_code == 137
    await ctlr.shutdown()  # idempotent on a stopped container

    # A stub rebuilt from the labels (what the worker has for a stale container) finds it too.
    [summary] = await executor.list_containers(node_id)
    stale = executor.controller(summary.task)
    await stale.remove()
    assert await ctlr.inspect() is None


async def test_a_missing_image_is_a_permanent_error(
    executor: docker.DockerExecutor, node_id: str, registry_image: str
) -> None:
    registry = registry_image.split("/", 1)[0]
    task = make_task(node_id, f"{registry}/nosuchimage:1", "true")
    with pytest.raises(base.PermanentError, match="^exec: pull"):
        await executor.controller(task).prepare()


async def test_an_unreachable_engine_is_a_temporary_error(node_id: str) -> None:
    image = "127.0.0.1:5000/unused:1"
    settings = AgentSettings(controllers=("127.0.0.1:1",), node_name="nodocker", engine_timeout=5.0)
    async with aiodocker.Docker(url="unix:///nonexistent/docker.sock") as client:
        executor = docker.DockerExecutor(client, settings)
        with pytest.raises(base.TemporaryError, match="^exec: "):
            await executor.describe()
        with pytest.raises(base.TemporaryError):
            await executor.controller(make_task(node_id, image, "true")).inspect()


async def test_worker_adopts_after_restart_and_removes_when_unassigned(
    executor: docker.DockerExecutor, client: aiodocker.Docker, node_id: str, pull_image: str
) -> None:
    timings = runner_.RunnerTimings(retry_base=0.1, retry_cap=1.0)
    task = make_task(node_id, pull_image, "sleep 300", grace=1)
    task.desired_state = states.RUNNING
    task.status.state = states.ASSIGNED

    def state_of(worker: worker_.Worker) -> int:
        runner = worker.runner(task.id)
        return runner.status.state if runner is not None else -1

    sink = RecordingSink()
    async with worker_.Worker(node_id=node_id, executor=executor, reporter=sink, timings=timings) as worker:
        worker.assign([task])
        await wait_until(lambda: state_of(worker) == states.RUNNING, timeout=60, what="task running")
    last = sink.last(task.id)
    assert last is not None
    container_id = last.container.container_id
    assert container_id

    # A new agent process: the controller last heard RUNNING.
    task.status.CopyFrom(last)
    sink = RecordingSink()
    async with worker_.Worker(node_id=node_id, executor=executor, reporter=sink, timings=timings) as worker:
        worker.assign([task])
        await wait_until(lambda: not worker.busy, timeout=30, what="sweep")
        runner = worker.runner(task.id)
        assert runner is not None and runner.status.state == states.RUNNING
        listed = await executor.list_containers(node_id)
        assert [s.container_id for s in listed] == [container_id]

        worker.assign([])
        await wait_until(lambda: not worker.busy, timeout=30, what="removal")
    assert await executor.list_containers(node_id) == []
    assert sink.forgotten == [task.id]
