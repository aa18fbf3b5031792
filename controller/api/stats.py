"""Control API: ListTaskStats, the live CPU and memory of running tasks (`swarmctl service/node stats`).

The figures are the ones the agents export to Prometheus: the controller
fetches `GET /metrics` from the metrics address each node registered, at
most a few at a time with a short deadline, keeps the `shoal_container_*`
series, and matches them to the running tasks by service name and slot (the
agents label series by slot, not by task, to keep them bounded). A node that
does not answer is reported in `errors` rather than failing the whole call.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import grpc
from prometheus_client import parser

from shoal import states
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.store.cache import Cache
from shoal.v1 import control_pb2, objects_pb2

#: Deadline of one node's /metrics: a live view must not wait on a dead node.
FETCH_TIMEOUT = 3.0
#: Nodes asked at once.
CONCURRENCY = 16

#: Series of `shoal_container_*` (sample names) and the TaskStats field each fills.
FIELDS = {
    "shoal_container_cpu_usage_cores": "cpu_cores",
    "shoal_container_cpu_usage_seconds_total": "cpu_seconds_total",
    "shoal_container_memory_usage_bytes": "memory_bytes",
    "shoal_container_memory_limit_bytes": "memory_limit_bytes",
    "shoal_container_network_receive_bytes_total": "network_rx_bytes",
    "shoal_container_network_transmit_bytes_total": "network_tx_bytes",
    "shoal_container_pids": "pids",
}

SlotValues = dict[tuple[str, str], dict[str, float]]


def parse_container_metrics(text: str) -> SlotValues:
    """{(service, slot): {field: value}} from an agent's exposition text."""
    values: SlotValues = collections.defaultdict(dict)
    for family in parser.text_string_to_metric_families(text):
        if not family.name.startswith("shoal_container_"):
            continue
        for sample in family.samples:
            field = FIELDS.get(sample.name)
            if field is not None and "service" in sample.labels and "slot" in sample.labels:
                values[(sample.labels["service"], sample.labels["slot"])][field] = sample.value
    return dict(values)


def running_tasks(cache: Cache, service_ids: Iterable[str], node_ids: Iterable[str]) -> list[objects_pb2.Task]:
    """Tasks observed RUNNING and meant to run, filtered like ListTasks."""
    services, nodes = set(service_ids), set(node_ids)
    if services:
        candidates = [t for sid in services for t in cache.tasks_of_service(sid)]
    elif nodes:
        candidates = [t for nid in nodes for t in cache.tasks_of_node(nid)]
    else:
        candidates = list(cache.tasks.values())
    return [
        t
        for t in candidates
        if t.status.state == states.RUNNING
        and t.desired_state == states.RUNNING
        and t.node_id
        and (not nodes or t.node_id in nodes)
    ]


def task_stats(
    task: objects_pb2.Task, node: objects_pb2.Node | None, values: Mapping[str, float]
) -> control_pb2.TaskStats:
    """One task's row from its slot's values."""
    out = control_pb2.TaskStats(
        task_id=task.id,
        service_id=task.service_id,
        service_name=task.service_name,
        slot=task.slot,
        node_id=task.node_id,
        node_name=node.name if node is not None else "",
    )
    for field, value in values.items():
        setattr(out, field, value if isinstance(getattr(out, field), float) else int(value))
    return out


async def _fetch(session: aiohttp.ClientSession, addr: str) -> str:
    async with session.get(f"http://{addr}/metrics") as resp:
        resp.raise_for_status()
        return await resp.text()


async def collect(cache: Cache, request: control_pb2.ListTaskStatsRequest) -> control_pb2.ListTaskStatsResponse:
    """Read every node that runs a matching task, and match its series to the tasks."""
    by_node: dict[str, list[objects_pb2.Task]] = collections.defaultdict(list)
    for task in running_tasks(cache, request.service_ids, request.node_ids):
        by_node[task.node_id].append(task)
    reply = control_pb2.ListTaskStatsResponse()
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)

    async def read(node_id: str, session: aiohttp.ClientSession) -> SlotValues | str:
        node = cache.nodes.get(node_id)
        if node is None or not node.status.metrics_addr:
            return "the node's agent registered no metrics address"
        async with limit:
            try:
                return parse_container_metrics(await _fetch(session, node.status.metrics_addr))
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                return f"cannot read {node.status.metrics_addr}/metrics: {str(exc) or type(exc).__name__}"

    node_ids = sorted(by_node)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        results = await asyncio.gather(*(read(n, session) for n in node_ids))
    for node_id, result in zip(node_ids, results, strict=True):
        node = cache.nodes.get(node_id)
        if isinstance(result, str):
            reply.errors.add(node_id=node_id, node_name=node.name if node is not None else "", error=result)
            continue
        for task in by_node[node_id]:
            values = result.get((task.service_name, str(task.slot)))
            if values is not None:
                reply.stats.append(task_stats(task, node, values))
    reply.stats.sort(key=lambda s: (s.service_name, s.slot, s.node_name))
    return reply


class StatsHandlers(Handlers):
    """ListTaskStats."""

    @handle
    async def ListTaskStats(  # noqa: N802
        self, request: control_pb2.ListTaskStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListTaskStatsResponse:
        return await collect(self._leadership.require().cache, request)
