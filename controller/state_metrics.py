"""Cluster state as Prometheus metrics, computed from the leader's cache at scrape time.

Like kube-state-metrics: every scrape reads the cache, so the figures cannot
drift from the store. Task counts come from the tallies the cache keeps as it
applies changes (store/tallies.py). Only the leader has a
cache; on a follower every family here is empty. Label values are bounded by
the number of nodes and services (names, never task IDs). Enum-valued states
are exported one series per possible value, 1 for the current one and 0 for
the others, so that `== 1` selects and alerts need no `absent()`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal import states
from shoal.controller import metrics, service_modes
from shoal.v1 import objects_pb2, types_pb2

if TYPE_CHECKING:
    from shoal.controller.store.cache import Cache

NODE_STATES = types_pb2.NodeStatus.State
UPDATE_STATES = types_pb2.UpdateStatus.State
AVAILABILITY = types_pb2.NodeSpec.Availability
#: (value, name) of every node state: a scrape names them for every node, and enum lookups are not free.
_NODE_STATE_NAMES = [(value, NODE_STATES.Name(value)) for value in NODE_STATES.values()]


def desired_replicas(service: objects_pb2.Service, tasks: list[objects_pb2.Task]) -> int:
    """The replicas a service should have: its count, a global service's tasks meant to run, a job's unfinished ones."""
    return service_modes.counts(service, tasks).desired


class ClusterCollector(Collector):
    """Nodes, services and tasks of the leader's cache, and how far its watch lags behind etcd."""

    def __init__(self, etcd_revision: Callable[[], int]) -> None:
        #: Set while this controller leads (term.py), None otherwise.
        self.cache: Cache | None = None
        self._etcd_revision = etcd_revision
        #: The per-node families (nine series a node) and what they were built from: rebuilt only when a
        #: node or a reservation changed, since at 5,000 nodes building them held the event loop 0.1 s.
        self._node_families: list[Metric] = []
        self._nodes_by_state: collections.Counter[tuple[str, str]] = collections.Counter()
        self._nodes_built_from: tuple[int, int, int] | None = None

    def describe(self) -> list[Metric]:
        # Registration must not call collect() (the families depend on leadership).
        return []

    def collect(self) -> Iterator[Metric]:
        cache = self.cache
        self._refresh_nodes(cache)
        yield from self._cluster(cache)
        yield from self._services(cache)
        yield from self._nodes(cache)
        yield from self._store(cache)

    def _cluster(self, cache: Cache | None) -> Iterator[Metric]:
        nodes = GaugeMetricFamily(
            "shoal_cluster_nodes", "Nodes by status and availability.", labels=["state", "availability"]
        )
        tasks = GaugeMetricFamily("shoal_cluster_tasks", "Tasks by observed state.", labels=["state"])
        services = GaugeMetricFamily("shoal_cluster_services", "Services in the cluster.")
        if cache is not None:
            for (state, availability), count in sorted(self._nodes_by_state.items()):
                nodes.add_metric([state, availability], count)
            for task_state, count in sorted(cache.tallies.states.items()):
                tasks.add_metric([states.name(task_state)], count)
            services.add_metric([], len(cache.services))
        yield from (nodes, tasks, services)

    def _services(self, cache: Cache | None) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "shoal_service", "One series per service: its ID, mode and image.", labels=["service", "service_id"]
        )
        desired = GaugeMetricFamily(
            "shoal_service_replicas_desired", "Replicas a service should run.", labels=["service"]
        )
        running = GaugeMetricFamily(
            "shoal_service_replicas_running",
            "Tasks of a service observed RUNNING and meant to run.",
            labels=["service"],
        )
        tasks = GaugeMetricFamily(
            "shoal_service_tasks",
            "Tasks of a service by observed state and desired state.",
            labels=["service", "state", "desired_state"],
        )
        update = GaugeMetricFamily(
            "shoal_service_update_state",
            "1 for the state of the service's latest update or rollback (UNKNOWN: never updated), 0 for the others.",
            labels=["service", "state"],
        )
        for service in _sorted_services(cache):
            assert cache is not None
            name = service.spec.name
            counts = cache.tallies.by_service.get(service.id, collections.Counter())
            info.add_metric(
                [name, service.id],
                {"mode": service.spec.WhichOneof("mode") or "", "image": service.spec.task.container.image},
            )
            desired.add_metric([name], _desired(cache, service, counts))
            running.add_metric([name], counts[(states.RUNNING, states.RUNNING)])
            for (observed, wanted), count in sorted(counts.items()):
                tasks.add_metric([name, states.name(observed), states.name(wanted)], count)
            current = service.update_status.state
            for value in UPDATE_STATES.values():
                update.add_metric([name, UPDATE_STATES.Name(value)], 1 if value == current else 0)
        yield from (info, desired, running, tasks, update)

    def _refresh_nodes(self, cache: Cache | None) -> None:
        """Rebuild the per-node families and the node counts if a node or a reservation changed."""
        source = (
            (cache.generation, cache.node_changes, cache.tallies.reserved_changes) if cache is not None else (0, 0, 0)
        )
        if source == self._nodes_built_from:
            return
        self._node_families = self._build_nodes(cache)
        self._nodes_by_state = collections.Counter(
            (NODE_STATES.Name(n.status.state), AVAILABILITY.Name(n.spec.availability))
            for n in (cache.nodes.values() if cache is not None else ())
        )
        self._nodes_built_from = source

    def _nodes(self, cache: Cache | None) -> Iterator[Metric]:
        yield from self._node_families

    def _build_nodes(self, cache: Cache | None) -> list[Metric]:
        info = InfoMetricFamily(
            "shoal_node",
            "One series per node: its ID, availability, platform and engine.",
            labels=["node", "node_id"],
        )
        state = GaugeMetricFamily(
            "shoal_node_state",
            "1 for the node's current status, 0 for the others.",
            labels=["node", "node_id", "state"],
        )
        cpu = GaugeMetricFamily("shoal_node_cpu_capacity_cores", "CPUs the node's engine reports.", labels=["node"])
        memory = GaugeMetricFamily(
            "shoal_node_memory_capacity_bytes", "Memory the node's engine reports.", labels=["node"]
        )
        cpu_reserved = GaugeMetricFamily(
            "shoal_node_cpu_reserved_cores", "CPUs reserved by the tasks placed on the node.", labels=["node"]
        )
        memory_reserved = GaugeMetricFamily(
            "shoal_node_memory_reserved_bytes", "Memory reserved by the tasks placed on the node.", labels=["node"]
        )
        nodes = sorted(cache.nodes.values(), key=lambda n: n.name) if cache is not None else []
        for node in nodes:
            assert cache is not None
            desc = node.description
            info.add_metric(
                [node.name, node.id],
                {
                    "availability": AVAILABILITY.Name(node.spec.availability),
                    "os": desc.platform.os,
                    "arch": desc.platform.architecture,
                    "engine_version": desc.engine.engine_version,
                },
            )
            current = node.status.state
            for value, state_name in _NODE_STATE_NAMES:
                state.add_metric([node.name, node.id, state_name], 1 if value == current else 0)
            cpu.add_metric([node.name], desc.resources.nano_cpus / 1e9)
            memory.add_metric([node.name], desc.resources.memory_bytes)
            held_cpu, held_memory = cache.tallies.reserved.get(node.id, (0, 0))
            cpu_reserved.add_metric([node.name], held_cpu / 1e9)
            memory_reserved.add_metric([node.name], held_memory)
        return [info, state, cpu, memory, cpu_reserved, memory_reserved]

    def _store(self, cache: Cache | None) -> Iterator[Metric]:
        revision = GaugeMetricFamily("shoal_store_cache_revision", "The etcd revision the leader's cache has applied.")
        lag = GaugeMetricFamily(
            "shoal_store_watch_lag_revisions",
            "Revisions between the newest one this controller has seen from etcd and the one its cache has applied.",
        )
        if cache is not None:
            revision.add_metric([], cache.revision)
            lag.add_metric([], max(0, self._etcd_revision() - cache.revision))
        yield from (revision, lag)


def _desired(cache: Cache, service: objects_pb2.Service, counts: collections.Counter[tuple[int, int]]) -> int:
    """`desired_replicas`, from the cache's tallies where the mode allows (a job's needs its tasks' iteration)."""
    mode = service_modes.mode_of(service)
    if mode == "replicated":
        return max(0, service.spec.replicated.replicas)
    if mode == "global":
        return sum(n for (_, wanted), n in counts.items() if wanted <= states.RUNNING)
    return desired_replicas(service, cache.tasks_of_service(service.id))


def _sorted_services(cache: Cache | None) -> list[objects_pb2.Service]:
    return sorted(cache.services.values(), key=lambda s: s.spec.name) if cache is not None else []


#: The collector of this process; its `cache` is set while this controller leads (term.py).
CLUSTER = ClusterCollector(metrics.etcd_revision)
prometheus_client.REGISTRY.register(CLUSTER)
