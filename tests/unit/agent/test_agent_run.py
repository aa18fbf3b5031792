"""The whole agent (`agent.run`) on a fake executor against the fake dispatcher: identity, tasks, servers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import prometheus_client
import pytest
from agent_dispatcher import FakeDispatcher, complete, serving
from agent_fakes import NODE_ID, FakeExecutor, make_task, wait_until

from shoal import states
from shoal.agent import agent as agent_
from shoal.agent.settings import AgentSettings
from shoal.v1 import agent_pb2, agent_pb2_grpc


class RunningAgent:
    def __init__(self, settings: AgentSettings, executor: FakeExecutor) -> None:
        self._task = asyncio.create_task(agent_.run(settings, executor))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
async def settings(dispatcher: FakeDispatcher, tmp_path: Path) -> AsyncIterator[AgentSettings]:
    async with serving(dispatcher) as addr:
        yield AgentSettings(
            controllers=(addr,),
            node_name="lab-1",
            listen="127.0.0.1:0",
            metrics_listen="127.0.0.1:0",
            state_dir=tmp_path / "state" / "lab-1",
            backoff_base=0.01,
            backoff_cap=0.05,
            retry_base=0.01,
            retry_cap=0.05,
            reporter_flush_interval=0.001,
        )


async def test_node_id_is_written_before_registering_and_reused(
    dispatcher: FakeDispatcher, settings: AgentSettings
) -> None:
    seen_on_register: list[str] = []
    dispatcher.on_session = lambda: seen_on_register.append(settings.node_id_path.read_text().strip())

    first = RunningAgent(settings, FakeExecutor())
    await wait_until(lambda: dispatcher.heartbeats >= 1, what="registration")
    await first.stop()
    node_id = settings.node_id_path.read_text().strip()
    assert seen_on_register == [node_id]
    assert dispatcher.calls[0] == ("Session", node_id)

    second = RunningAgent(dataclasses.replace(settings), FakeExecutor())
    await wait_until(lambda: dispatcher.sessions_opened == 2, what="second registration")
    await second.stop()
    assert settings.node_id_path.read_text().strip() == node_id
    assert {n for _, n in dispatcher.calls} == {node_id}


async def test_runs_assigned_tasks_and_serves_logs_inspect_and_metrics(
    dispatcher: FakeDispatcher, settings: AgentSettings
) -> None:
    settings.node_id_path.parent.mkdir(parents=True)
    settings.node_id_path.write_text(NODE_ID + "\n")  # as left by an earlier start
    executor = FakeExecutor()
    task = make_task()
    dispatcher.assignment_scripts.append([complete(1, [task])])
    agent = RunningAgent(settings, executor)
    try:
        await wait_until(lambda: states.RUNNING in dispatcher.states_of(task.id), what="RUNNING reported")
        assert dispatcher.states_of(task.id) == sorted(dispatcher.states_of(task.id))
        assert {n for _, n in dispatcher.calls} == {NODE_ID}

        addr = dispatcher.session_requests[-1].addr
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = agent_pb2_grpc.AgentStub(channel)
            inspected = await stub.InspectTask(agent_pb2.InspectTaskRequest(task_id=task.id), timeout=5)
            assert json.loads(inspected.container_json)["Id"] == f"c-{task.id}"
            lines = [line async for line in stub.TaskLogs(agent_pb2.TaskLogsRequest(task_id=task.id), timeout=5)]
            assert [(line.stream, line.data) for line in lines] == [
                (agent_pb2.LogLine.STDOUT, b"hello\n"),
                (agent_pb2.LogLine.STDERR, b"oops\n"),
            ]
            assert lines[0].timestamp.seconds > 0
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.InspectTask(agent_pb2.InspectTaskRequest(task_id="nosuchtask"), timeout=5)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_tasks", {"state": "RUNNING"}) == 1
        assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_session_connected") == 1
    finally:
        await agent.stop()
    assert executor.containers[task.id].running  # stopping the agent leaves containers alone
    assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_tasks", {"state": "RUNNING"}) is None


async def test_metrics_endpoint_serves_agent_metrics(dispatcher: FakeDispatcher, tmp_path: Path) -> None:
    async with serving(dispatcher) as addr:
        # A fixed free port is needed to know where to scrape; take one from the OS first.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        settings = AgentSettings(
            controllers=(addr,),
            node_name="lab-2",
            listen="127.0.0.1:0",
            metrics_listen=f"127.0.0.1:{port}",
            state_dir=tmp_path,
        )
        agent = RunningAgent(settings, FakeExecutor())
        try:
            await wait_until(lambda: dispatcher.heartbeats >= 1, what="registration")
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
        finally:
            await agent.stop()
    for name in (
        "shoal_agent_session_connected",
        "shoal_agent_status_reports_total",
        "shoal_agent_container_operation_duration_seconds",
        "shoal_agent_tasks",
    ):
        assert f"# HELP {name}" in body
