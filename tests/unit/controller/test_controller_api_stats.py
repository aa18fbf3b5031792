"""ListTaskStats: the controller reads the agents' exported container series and matches them to tasks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import prometheus_client
from aiohttp import web
from controller_fakes import make_node, make_service, make_task

from shoal import states
from shoal.agent import stats
from shoal.agent.executor import base
from shoal.controller.api import stats as api_stats
from shoal.v1 import control_pb2, objects_pb2


def exposition(samples: dict[tuple[str, str], base.ContainerStats], node: str) -> str:
    """What an agent's /metrics says about these slots (through the agent's own collector)."""
    sampler = stats.Sampler(source=None, node_id="x", interval=1, assigned=lambda _: True)  # type: ignore[arg-type]
    sampler.samples = {
        key: stats.Sample(key[0], key[1], "t", "c", s, at=0.0, cpu_cores=0.125) for key, s in samples.items()
    }
    reg = prometheus_client.CollectorRegistry()
    reg.register(stats.ContainerCollector(sampler, node, lambda: set(samples)))
    return prometheus_client.generate_latest(reg).decode()


WEB1 = base.ContainerStats(
    cpu_seconds=3.0, memory_bytes=2048, memory_limit_bytes=8192, network_rx_bytes=10, network_tx_bytes=20, pids=2
)


def test_the_agents_series_parse_back_by_service_and_slot() -> None:
    values = api_stats.parse_container_metrics(exposition({("web", "1"): WEB1}, "n1"))
    assert values == {
        ("web", "1"): {
            "cpu_seconds_total": 3.0,
            "cpu_cores": 0.125,
            "memory_bytes": 2048,
            "memory_limit_bytes": 8192,
            "network_rx_bytes": 10,
            "network_tx_bytes": 20,
            "pids": 2,
        }
    }


class Cache:
    def __init__(self, nodes: list[objects_pb2.Node], tasks: list[objects_pb2.Task]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.tasks = {t.id: t for t in tasks}

    def tasks_of_service(self, service_id: str) -> list[objects_pb2.Task]:
        return [t for t in self.tasks.values() if t.service_id == service_id]

    def tasks_of_node(self, node_id: str) -> list[objects_pb2.Task]:
        return [t for t in self.tasks.values() if t.node_id == node_id]


@contextlib.asynccontextmanager
async def agent_metrics(text: str) -> AsyncIterator[str]:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_running_tasks_get_their_slots_values_and_a_dead_node_is_an_error() -> None:
    web_svc = make_service(replicas=3)
    tasks = [
        make_task(web_svc, 1, node="id1", task_id="t1"),
        make_task(web_svc, 2, node="id2", task_id="t2"),
        make_task(web_svc, 3, node="id1", task_id="t3", state=states.PREPARING),  # not running: not listed
        make_task(web_svc, 1, node="id1", task_id="t0", state=states.FAILED, desired=states.SHUTDOWN),
    ]
    async with agent_metrics(exposition({("web", "1"): WEB1}, "n1")) as addr:
        n1, n2 = make_node("id1", hostname="n1"), make_node("id2", hostname="n2")
        n1.status.metrics_addr = addr
        n2.status.metrics_addr = "127.0.0.1:1"  # nothing listens there
        cache = Cache([n1, n2], tasks)
        reply = await api_stats.collect(cache, control_pb2.ListTaskStatsRequest(service_ids=["svc1"]))  # type: ignore[arg-type]
    assert [(s.task_id, s.slot, s.node_name, s.memory_bytes, s.cpu_cores) for s in reply.stats] == [
        ("t1", 1, "n1", 2048, 0.125)
    ]
    assert [(e.node_name, "cannot read 127.0.0.1:1/metrics" in e.error) for e in reply.errors] == [("n2", True)]


async def test_node_filter_keeps_the_nodes_tasks_only() -> None:
    web_svc = make_service(replicas=2)
    cache = Cache(
        [make_node("id1"), make_node("id2")], [make_task(web_svc, 1, node="id1"), make_task(web_svc, 2, node="id2")]
    )
    tasks = api_stats.running_tasks(cache, [], ["id2"])  # type: ignore[arg-type]
    assert [t.node_id for t in tasks] == ["id2"]
    reply = await api_stats.collect(cache, control_pb2.ListTaskStatsRequest(node_ids=["id2"]))  # type: ignore[arg-type]
    assert [e.error for e in reply.errors] == ["the node's agent registered no metrics address"]
