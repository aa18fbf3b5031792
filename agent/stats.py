"""Per-container resource use, sampled from the engine and exported as Prometheus metrics.

`Sampler.run` wakes every `interval` seconds, probes the engine (the
`shoal_agent_engine_up` gauge), lists this node's containers and reads the
stats of the running ones whose task is assigned here, a few at a time. It
keeps the latest reading per (service, slot), and the CPU rate between its
last two readings of the same container (`docker stats`' CPU %, divided by
100). `ContainerCollector` exports what it holds at scrape time, labelled by
service, slot and node: only this node's containers, and no task or container
ID, so a node exports a bounded number of series that survive task
replacement, as cAdvisor's do per pod. The controller reads the same series
for `swarmctl service stats` (controller/api/stats.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import NoReturn, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal.agent import metrics
from shoal.agent.executor import base

log = logging.getLogger(__name__)

#: Stats requests in flight at once: enough to sample 100 containers in a few
#: round trips without queueing the engine behind the runners' own calls.
CONCURRENCY = 8

LABELS = ["service", "slot", "node"]


class StatsSource(Protocol):
    """The executor as the sampler sees it (`base.Executor` plus `base.ExecutorStats`)."""

    async def ping(self) -> None: ...

    async def list_containers(self, node_id: str) -> list[base.ContainerSummary]: ...

    async def container_stats(self, container_id: str) -> base.ContainerStats | None: ...


@dataclasses.dataclass(frozen=True)
class Sample:
    """The latest reading of one task slot's container."""

    service: str
    slot: str
    task_id: str
    container_id: str
    stats: base.ContainerStats
    at: float
    """Monotonic time of the reading."""
    cpu_cores: float
    """CPU used between this reading and the previous one of the same container, in cores."""


def cpu_rate(previous: Sample | None, container_id: str, stats: base.ContainerStats, at: float) -> float:
    """Cores used since `previous`, if it is a reading of the same container; else 0."""
    if previous is None or previous.container_id != container_id or at <= previous.at:
        return 0.0
    return max(0.0, (stats.cpu_seconds - previous.stats.cpu_seconds) / (at - previous.at))


def choose(
    containers: list[base.ContainerSummary], assigned: Callable[[str], bool]
) -> dict[tuple[str, str], base.ContainerSummary]:
    """The running container to sample for each (service, slot): the assigned task's, at most one per slot.

    Two containers of one slot can run at once only briefly (a stale one not yet
    removed); one series per slot must hold one container's counters.
    """
    chosen: dict[tuple[str, str], base.ContainerSummary] = {}
    for c in containers:
        if not c.running or not assigned(c.task_id):
            continue
        key = (c.task.service_name, str(c.task.slot))
        if key in chosen:
            log.debug("two running containers in slot %s.%s; sampling %s", key[0], key[1], chosen[key].task_id)
            continue
        chosen[key] = c
    return chosen


class Sampler:
    """Reads this node's containers' stats every `interval` seconds."""

    def __init__(
        self,
        *,
        source: StatsSource,
        node_id: str,
        interval: float,
        assigned: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._node_id = node_id
        self._interval = interval
        self._assigned = assigned
        self._clock = clock
        #: The latest sample per (service, slot) of the containers running now.
        self.samples: dict[tuple[str, str], Sample] = {}

    async def run(self) -> NoReturn:
        """Sample forever; engine trouble is logged once per outage and shown by the engine gauge."""
        reachable = True
        while True:
            try:
                await self.sample_once()
                if not reachable:
                    log.info("container engine reachable again")
                reachable = True
            except base.ExecutorError as exc:
                if reachable:
                    log.warning("cannot sample container stats: %s", exc)
                reachable = False
            await asyncio.sleep(self._interval)

    async def sample_once(self) -> None:
        """Probe the engine and take one reading of every running assigned container."""
        try:
            await self._source.ping()
        except base.ExecutorError:
            metrics.ENGINE_UP.set(0)
            raise
        metrics.ENGINE_UP.set(1)
        chosen = choose(await self._source.list_containers(self._node_id), self._assigned)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def read(container: base.ContainerSummary) -> tuple[base.ContainerStats | None, float]:
            async with limit:
                try:
                    stats = await self._source.container_stats(container.container_id)
                except base.ExecutorError as exc:
                    log.debug("stats of container %s: %s", container.container_id[:12], exc)
                    return None, 0.0
                return stats, self._clock()

        keys = list(chosen)
        readings = await asyncio.gather(*(read(chosen[k]) for k in keys))
        samples: dict[tuple[str, str], Sample] = {}
        for key, (stats, at) in zip(keys, readings, strict=True):
            if stats is None:
                continue
            container = chosen[key]
            previous = self.samples.get(key)
            samples[key] = Sample(
                service=key[0],
                slot=key[1],
                task_id=container.task_id,
                container_id=container.container_id,
                stats=stats,
                at=at,
                cpu_cores=cpu_rate(previous, container.container_id, stats, at),
            )
        # Containers that stopped or went away drop out: their series disappear.
        self.samples = samples


class ContainerCollector(Collector):
    """`shoal_container_*`: the sampler's latest readings and the slots' exits, at scrape time."""

    def __init__(self, sampler: Sampler, node_name: str, slots: Callable[[], set[tuple[str, str]]]) -> None:
        self._sampler = sampler
        self._node = node_name
        self._slots = slots

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "cpu": CounterMetricFamily(
                "shoal_container_cpu_usage_seconds", "CPU time the container has used.", labels=LABELS
            ),
            "cores": GaugeMetricFamily(
                "shoal_container_cpu_usage_cores",
                "CPU used over the agent's last sampling interval, in cores (docker stats' CPU % / 100).",
                labels=LABELS,
            ),
            "memory": GaugeMetricFamily(
                "shoal_container_memory_usage_bytes",
                "Memory the container uses, page cache excluded (as docker stats shows it).",
                labels=LABELS,
            ),
            "limit": GaugeMetricFamily(
                "shoal_container_memory_limit_bytes",
                "The container's memory limit, or the node's memory when it has none.",
                labels=LABELS,
            ),
            "rx": CounterMetricFamily(
                "shoal_container_network_receive_bytes", "Bytes received on the container's interfaces.", labels=LABELS
            ),
            "tx": CounterMetricFamily(
                "shoal_container_network_transmit_bytes", "Bytes sent on the container's interfaces.", labels=LABELS
            ),
            "pids": GaugeMetricFamily("shoal_container_pids", "Processes in the container.", labels=LABELS),
        }
        for (service, slot), sample in sorted(self._sampler.samples.items()):
            labels = [service, slot, self._node]
            s = sample.stats
            families["cpu"].add_metric(labels, s.cpu_seconds)
            families["cores"].add_metric(labels, sample.cpu_cores)
            families["memory"].add_metric(labels, s.memory_bytes)
            families["limit"].add_metric(labels, s.memory_limit_bytes)
            families["rx"].add_metric(labels, s.network_rx_bytes)
            families["tx"].add_metric(labels, s.network_tx_bytes)
            families["pids"].add_metric(labels, s.pids)
        yield from families.values()
        yield self._restarts()

    def _restarts(self) -> CounterMetricFamily:
        restarts = CounterMetricFamily(
            "shoal_container_restarts",
            "Containers of this service slot that ended on this node without being asked to stop "
            "(each is replaced per the service's restart policy, like a container restart).",
            labels=LABELS,
        )
        live = self._slots()
        # Slots no longer on this node are forgotten, so the series stay bounded.
        for key in [k for k in metrics.EXITS if k not in live]:
            del metrics.EXITS[key]
        for service, slot in sorted(live):
            restarts.add_metric([service, slot, self._node], metrics.EXITS.get((service, slot), 0))
        return restarts


@contextlib.asynccontextmanager
async def sampling(sampler: Sampler) -> AsyncIterator[Sampler]:
    """Run `sampler` in the background while the context is open."""
    task = asyncio.create_task(sampler.run(), name="stats-sampler")
    try:
        yield sampler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class RunnerView(Protocol):
    """The worker as the stats see it."""

    def runner(self, task_id: str) -> object | None: ...

    def runners(self) -> list: ...  # type: ignore[type-arg]


@contextlib.asynccontextmanager
async def exported(
    executor: object, worker: RunnerView, *, node_id: str, node_name: str, interval: float
) -> AsyncIterator[Sampler | None]:
    """Sample `executor`'s containers and export them while the context is open (if it can read stats)."""
    if not isinstance(executor, base.ExecutorStats):
        log.info("this executor reads no container stats; shoal_container_* metrics stay empty")
        yield None
        return
    source: StatsSource = executor  # type: ignore[assignment]
    sampler = Sampler(
        source=source, node_id=node_id, interval=interval, assigned=lambda task_id: worker.runner(task_id) is not None
    )

    def slots() -> set[tuple[str, str]]:
        return {(r.task.service_name, str(r.task.slot)) for r in worker.runners()}

    with metrics.registered(ContainerCollector(sampler, node_name, slots)):
        async with sampling(sampler):
            yield sampler
