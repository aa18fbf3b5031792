"""The whole agent (`agent.run`) on a fake executor against a fake controller: identity, tasks, servers.

The fake controller serves the fake Dispatcher and CA as the controller does:
mutual TLS on one port, server-only TLS on the join port.
"""

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
from agent_dispatcher import FakeDispatcher, complete
from agent_fakes import NODE_ID, FakeExecutor, make_task, wait_until
from agent_tls import Cluster, Endpoints, FakeCA, serving_controller

from shoal import pki, states, tls
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
def ca(cluster: Cluster) -> FakeCA:
    return FakeCA(cluster)


@pytest.fixture
async def controller(dispatcher: FakeDispatcher, ca: FakeCA, cluster: Cluster) -> AsyncIterator[Endpoints]:
    async with serving_controller(cluster.controller(), dispatcher=dispatcher, ca=ca) as endpoints:
        yield endpoints


@pytest.fixture
def settings(controller: Endpoints, ca: FakeCA, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        controllers=(controller.addr,),
        join_addr=controller.join_addr,
        join_token=ca.token,
        node_name="lab-1",
        labels={"zone": "a"},
        listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        state_dir=tmp_path / "state" / "lab-1",
        backoff_base=0.01,
        backoff_cap=0.05,
        retry_base=0.01,
        retry_cap=0.05,
        reporter_flush_interval=0.001,
    )


async def test_joins_before_registering_and_then_reuses_its_certificate(
    dispatcher: FakeDispatcher, ca: FakeCA, settings: AgentSettings
) -> None:
    seen_on_register: list[tuple[str, bool]] = []
    dispatcher.on_session = lambda: seen_on_register.append(
        (settings.node_id_path.read_text().strip(), tls.Bundle.exists(settings.tls_dir))
    )

    first = RunningAgent(settings, FakeExecutor())
    await wait_until(lambda: dispatcher.heartbeats >= 1, what="registration")
    await first.stop()
    (node_id,) = ca.issued
    (join,) = ca.joins
    assert (join.node_name, dict(join.labels)) == ("lab-1", {"zone": "a"})
    assert seen_on_register == [(node_id, True)]
    assert dispatcher.calls[0] == ("Session", node_id)  # the certificate's CN
    assert tls.Bundle.load(settings.tls_dir).identity == pki.Identity(node_id, "worker", ca.cluster.cluster_id)

    second = RunningAgent(dataclasses.replace(settings), FakeExecutor())
    await wait_until(lambda: dispatcher.sessions_opened == 2, what="second registration")
    await second.stop()
    assert len(ca.joins) == 1  # the saved certificate is used, not the token again
    assert settings.node_id_path.read_text().strip() == node_id
    assert {n for _, n in dispatcher.calls} == {node_id}


async def test_runs_assigned_tasks_and_serves_logs_inspect_and_metrics(
    dispatcher: FakeDispatcher, ca: FakeCA, settings: AgentSettings, cluster: Cluster, node_bundle: tls.Bundle
) -> None:
    node_bundle.save(settings.tls_dir)  # as left by an earlier start
    executor = FakeExecutor()
    task = make_task()
    dispatcher.assignment_scripts.append([complete(1, [task])])
    agent = RunningAgent(settings, executor)
    try:
        await wait_until(lambda: states.RUNNING in dispatcher.states_of(task.id), what="RUNNING reported")
        assert dispatcher.states_of(task.id) == sorted(dispatcher.states_of(task.id))
        assert {n for _, n in dispatcher.calls} == {NODE_ID}
        assert ca.joins == []

        # The agent's server presents the node certificate (checked against pki.NODE_NAME) to controllers.
        addr = dispatcher.session_requests[-1].addr
        async with tls.secure_channel(addr, cluster.controller(), server_name=pki.NODE_NAME) as channel:
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

        # ... and to controllers only.
        worker = cluster.node("node0000000000000000000002")
        async with tls.secure_channel(addr, worker, server_name=pki.NODE_NAME) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await agent_pb2_grpc.AgentStub(channel).InspectTask(
                    agent_pb2.InspectTaskRequest(task_id=task.id), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

        assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_tasks", {"state": "RUNNING"}) == 1
        assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_session_connected") == 1
    finally:
        await agent.stop()
    assert executor.containers[task.id].running  # stopping the agent leaves containers alone
    assert prometheus_client.REGISTRY.get_sample_value("shoal_agent_tasks", {"state": "RUNNING"}) is None


async def test_metrics_endpoint_serves_agent_metrics(
    dispatcher: FakeDispatcher, controller: Endpoints, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    # A fixed free port is needed to know where to scrape; take one from the OS first.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    settings = AgentSettings(
        controllers=(controller.addr,),
        node_name="lab-2",
        listen="127.0.0.1:0",
        metrics_listen=f"127.0.0.1:{port}",
        state_dir=tmp_path,
    )
    node_bundle.save(settings.tls_dir)
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
