"""Container stats: the engine's document, the sampler's choices and rates, and the exported series."""

from __future__ import annotations

import prometheus_client
import pytest

from shoal.agent import metrics, stats
from shoal.agent.executor import base, dockerstats
from shoal.v1 import objects_pb2

CGROUP_V2 = {
    "read": "2026-01-01T00:00:00.1Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}, "online_cpus": 2},
    "memory_stats": {"usage": 10_000_000, "limit": 1 << 30, "stats": {"inactive_file": 2_000_000}},
    "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 40}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
    "pids_stats": {"current": 3},
}


def test_the_engine_document_is_read_as_docker_stats_reads_it() -> None:
    s = dockerstats.parse(CGROUP_V2)
    assert s == base.ContainerStats(
        cpu_seconds=2.5,
        memory_bytes=8_000_000,
        memory_limit_bytes=1 << 30,
        network_rx_bytes=101,
        network_tx_bytes=42,
        pids=3,
    )
    v1 = {**CGROUP_V2, "memory_stats": {"usage": 10_000_000, "limit": 5, "stats": {"total_inactive_file": 4_000_000}}}
    assert dockerstats.parse(v1).memory_bytes == 6_000_000  # type: ignore[union-attr]


def test_a_stopped_container_has_no_stats() -> None:
    assert (
        dockerstats.parse({"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {}}, "memory_stats": {}}) is None
    )


def test_pulled_bytes_count_each_downloaded_layer_once() -> None:
    progress = [
        {"status": "Pulling from shoal/busybox", "id": "1"},
        {"status": "Already exists", "id": "aaa"},
        {"status": "Downloading", "id": "bbb", "progressDetail": {"current": 10, "total": 1000}},
        {"status": "Downloading", "id": "bbb", "progressDetail": {"current": 900, "total": 1000}},
        {"status": "Downloading", "id": "ccc", "progressDetail": {"current": 5, "total": 20}},
        {"status": "Pull complete", "id": "bbb", "progressDetail": {}},
    ]
    assert dockerstats.pulled_bytes(progress) == 1020


def summary(task_id: str, service: str, slot: int, *, running: bool = True) -> base.ContainerSummary:
    task = objects_pb2.Task(id=task_id, service_name=service, slot=slot)
    return base.ContainerSummary(container_id=f"c-{task_id}", task_id=task_id, running=running, task=task)


def test_one_running_assigned_container_is_sampled_per_slot() -> None:
    containers = [
        summary("old", "web", 1),  # a stale container still running, its task no longer assigned
        summary("t1", "web", 1),
        summary("t2", "web", 2, running=False),
        summary("t3", "api", 1),
    ]
    chosen = stats.choose(containers, assigned=lambda task_id: task_id != "old")
    assert {k: c.task_id for k, c in chosen.items()} == {("web", "1"): "t1", ("api", "1"): "t3"}


class Source:
    """An engine with one container whose CPU time grows by 0.5 s per reading."""

    def __init__(self) -> None:
        self.up = True
        self.cpu = 0.0
        self.containers = [summary("t1", "web", 1)]

    async def ping(self) -> None:
        if not self.up:
            raise base.TemporaryError("exec: ping: engine unreachable")

    async def list_containers(self, node_id: str) -> list[base.ContainerSummary]:
        return self.containers

    async def container_stats(self, container_id: str) -> base.ContainerStats | None:
        self.cpu += 0.5
        return base.ContainerStats(cpu_seconds=self.cpu, memory_bytes=1000, memory_limit_bytes=4000, pids=1)


async def test_the_sampler_computes_cpu_from_its_own_readings() -> None:
    source, now = Source(), [100.0]
    sampler = stats.Sampler(source=source, node_id="id1", interval=1.0, assigned=lambda _: True, clock=lambda: now[0])
    await sampler.sample_once()
    assert metrics.ENGINE_UP._value.get() == 1  # type: ignore[attr-defined]
    first = sampler.samples[("web", "1")]
    assert (first.stats.cpu_seconds, first.cpu_cores) == (0.5, 0.0)  # no earlier reading: no rate yet
    now[0] = 102.0
    await sampler.sample_once()
    assert sampler.samples[("web", "1")].cpu_cores == pytest.approx(0.25)
    source.containers = []
    await sampler.sample_once()
    assert sampler.samples == {}  # a container that went away drops out


async def test_an_unreachable_engine_sets_the_gauge_to_zero() -> None:
    source = Source()
    source.up = False
    sampler = stats.Sampler(source=source, node_id="id1", interval=1.0, assigned=lambda _: True)
    with pytest.raises(base.TemporaryError):
        await sampler.sample_once()
    assert metrics.ENGINE_UP._value.get() == 0  # type: ignore[attr-defined]


async def test_the_collector_labels_by_service_slot_and_node_and_counts_restarts() -> None:
    sampler = stats.Sampler(source=Source(), node_id="id1", interval=1.0, assigned=lambda _: True)
    await sampler.sample_once()
    metrics.EXITS.clear()
    metrics.record_exit("web", 1)
    metrics.record_exit("web", 1)
    metrics.record_exit("gone", 4)
    reg = prometheus_client.CollectorRegistry()
    reg.register(stats.ContainerCollector(sampler, "n1", lambda: {("web", "1"), ("web", "2")}))
    labels = {"service": "web", "slot": "1", "node": "n1"}
    assert reg.get_sample_value("shoal_container_cpu_usage_seconds_total", labels) == 0.5
    assert reg.get_sample_value("shoal_container_memory_usage_bytes", labels) == 1000
    assert reg.get_sample_value("shoal_container_memory_limit_bytes", labels) == 4000
    assert reg.get_sample_value("shoal_container_restarts_total", labels) == 2
    assert reg.get_sample_value("shoal_container_restarts_total", {**labels, "slot": "2"}) == 0
    # A slot no longer on this node is forgotten: the series stay bounded.
    assert ("gone", "4") not in metrics.EXITS
    text = prometheus_client.generate_latest(reg).decode()
    assert "t1" not in text and "c-t1" not in text  # no task or container IDs
