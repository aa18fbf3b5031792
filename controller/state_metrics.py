"""Cluster state as Prometheus metrics, computed from the leader's cache at scrape time.

Like kube-state-metrics: nothing is counted as it happens, every scrape reads
the cache, so the figures cannot drift from the store. Only the leader has a
cache; on a follower every family here is empty. Label values are bounded by
the number of nodes and services (names, never task IDs). Enum-valued states
are exported one series per possible value, 1 for the current one and 0 for
the others, so that `== 1` selects and alerts need no `absent()`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal import states
from shoal.controller import service_modes
from shoal.v1 import objects_pb2, types_pb2

if TYPE_CHECKING:
    from shoal.controller.store.cache import Cache

NODE_STATES = types_pb2.NodeStatus.State
UPDATE_STATES = types_pb2.UpdateStatus.State
AVAILABILITY = types_pb2.NodeSpec.Availability


def holds_resources(task: objects_pb2.Task) -> bool:
    """True while a task may occupy its node's resources (the scheduler's rule, scheduler/nodeinfo.py;
    not imported from there, because metrics sit below the control loops, in the store's layer)."""
    return bool(task.node_id) and states.ASSIGNED <= task.status.state < states.COMPLETE


def running_replicas(tasks: list[objects_pb2.Task]) -> int:
    """Tasks observed RUNNING and meant to run (what `swarmctl service ls` counts)."""
    return sum(1 for t in tasks if t.status.state == states.RUNNING and t.desired_state == states.RUNNING)


def desired_replicas(service: objects_pb2.Service, tasks: list[objects_pb2.Task]) -> int:
    """The replicas a service should have: its count, a global service's tasks meant to run, a job's unfinished ones."""
    return service_modes.counts(service, tasks).desired


class ClusterCollector(Collector):
    """Nodes, services and tasks of the leader's cache, and how far its watch lags behind etcd."""

    def __init__(self, etcd_revision: Callable[[], int]) -> None:
        #: Set while this controller leads (term.py), None otherwise.
        self.cache: Cache | None = None
        self._etcd_revision = etcd_revision

    def describe(self) -> list[Metric]:
        # Registration must not call collect() (the families depend on leadership).
        return []

    def collect(self) -> Iterator[Metric]:
        cache = self.cache
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
            by_state = collections.Counter(
                (NODE_STATES.Name(n.status.state), AVAILABILITY.Name(n.spec.availability)) for n in cache.nodes.values()
            )
            for (state, availability), count in sorted(by_state.items()):
                nodes.add_metric([state, availability], count)
            for state, count in sorted(collections.Counter(t.status.state for t in cache.tasks.values()).items()):
                tasks.add_metric([states.name(state)], count)
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
            name = service.spec.name
            service_tasks = cache.tasks_of_service(service.id) if cache is not None else []
            info.add_metric(
                [name, service.id],
                {"mode": service.spec.WhichOneof("mode") or "", "image": service.spec.task.container.image},
            )
            desired.add_metric([name], desired_replicas(service, service_tasks))
            running.add_metric([name], running_replicas(service_tasks))
            counts = collections.Counter((t.status.state, t.desired_state) for t in service_tasks)
            for (observed, wanted), count in sorted(counts.items()):
                tasks.add_metric([name, states.name(observed), states.name(wanted)], count)
            current = service.update_status.state
            for value in UPDATE_STATES.values():
                update.add_metric([name, UPDATE_STATES.Name(value)], 1 if value == current else 0)
        yield from (info, desired, running, tasks, update)

    def _nodes(self, cache: Cache | None) -> Iterator[Metric]:
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
            for value in NODE_STATES.values():
                state.add_metric([node.name, node.id, NODE_STATES.Name(value)], 1 if value == node.status.state else 0)
            cpu.add_metric([node.name], desc.resources.nano_cpus / 1e9)
            memory.add_metric([node.name], desc.resources.memory_bytes)
            held = [t.spec.resources.reservations for t in cache.tasks_of_node(node.id) if holds_resources(t)]
            cpu_reserved.add_metric([node.name], sum(r.nano_cpus for r in held) / 1e9)
            memory_reserved.add_metric([node.name], sum(r.memory_bytes for r in held))
        yield from (info, state, cpu, memory, cpu_reserved, memory_reserved)

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


def _sorted_services(cache: Cache | None) -> list[objects_pb2.Service]:
    return sorted(cache.services.values(), key=lambda s: s.spec.name) if cache is not None else []
