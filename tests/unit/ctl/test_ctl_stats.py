"""`swarmctl service stats` and `node stats`: what they ask for and how they print it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from ctl_fakes import FakeControl

from shoal.ctl import stats
from shoal.v1 import control_pb2


class StatsControl(FakeControl):
    """A fake controller that also answers ListTaskStats."""

    reply = control_pb2.ListTaskStatsResponse(
        stats=[
            control_pb2.TaskStats(
                task_id="task1abcdef012345",
                service_id="s1",
                service_name="web",
                slot=1,
                node_id="n1id",
                node_name="node-1",
                cpu_cores=0.2534,
                memory_bytes=3 << 20,
                memory_limit_bytes=12 << 20,
                network_rx_bytes=2048,
                network_tx_bytes=100,
                pids=4,
            )
        ],
        errors=[control_pb2.NodeStatsError(node_id="n2id", node_name="node-2", error="cannot read x/metrics: refused")],
    )

    async def ListTaskStats(self, request, context):  # noqa: N802
        return await self._serve(context, "ListTaskStats", request, lambda: self.reply)


@pytest.fixture
def fake() -> StatsControl:
    f = StatsControl()
    f.add_service("s1", "web", replicas=1)
    f.add_node("n1id", "node-1")
    return f


def test_service_stats_prints_one_reading_like_docker_stats(ctl: Callable, fake: StatsControl) -> None:
    result = ctl("service", "stats", "web", "--no-stream")
    assert result.code == 0, result.err
    header, row = result.out.splitlines()
    assert header.split()[:3] == ["ID", "TASK", "NODE"]
    assert "MEM USAGE / LIMIT" in header
    assert row.split() == [
        "task1abcdef0",
        "web.1",
        "node-1",
        "25.34%",
        "3MiB",
        "/",
        "12MiB",
        "25.00%",
        "2KiB",
        "/",
        "100B",
        "4",
    ]
    assert "node node-2: cannot read x/metrics: refused" in result.err
    (request,) = fake.calls("ListTaskStats")
    assert list(request.service_ids) == ["s1"]


def test_node_stats_asks_for_the_nodes_tasks_in_json(ctl: Callable, fake: StatsControl) -> None:
    result = ctl("--format", "json", "node", "stats", "node-1")
    assert result.code == 0, result.err
    (doc,) = json.loads(result.out)
    assert doc["taskId"] == "task1abcdef012345" and doc["memoryBytes"] == str(3 << 20)
    (request,) = fake.calls("ListTaskStats")
    assert list(request.node_ids) == ["n1id"]


def test_an_unknown_service_is_one_line(ctl: Callable) -> None:
    result = ctl("service", "stats", "nope", "--no-stream")
    assert result.code == 1
    assert result.err.strip() == 'swarmctl: service "nope" not found'


def test_a_global_task_is_named_by_its_node_and_no_limit_shows_dashes() -> None:
    row = stats.stats_row(control_pb2.TaskStats(task_id="t", service_name="agentd", node_name="node-3"))
    assert row[1] == "agentd.node-3"
    assert row[5] == "--"
