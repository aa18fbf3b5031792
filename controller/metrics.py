"""The controller's Prometheus metrics.

Counters and histograms are updated where things happen. Gauges that describe
cluster state (nodes, tasks, services) are computed at scrape time from the
leader's cache by `ClusterCollector`, so they can never drift from the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal.v1 import types_pb2

if TYPE_CHECKING:
    from shoal.controller.store.cache import Cache

ETCD_LATENCY = prometheus_client.Histogram(
    "shoal_store_etcd_request_duration_seconds",
    "Time of etcd requests made by this controller, by operation.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ETCD_ERRORS = prometheus_client.Counter(
    "shoal_store_etcd_errors_total", "etcd requests that failed, by operation.", ["operation"]
)
TXN_CONFLICTS = prometheus_client.Counter(
    "shoal_store_txn_conflicts_total", "Writes dropped because the object changed since it was read."
)
IS_LEADER = prometheus_client.Gauge("shoal_controller_leader", "1 if this controller is the leader, else 0.")
LEADER_CHANGES = prometheus_client.Counter(
    "shoal_controller_leader_changes_total", "Times this controller became leader."
)
SCHEDULING_LATENCY = prometheus_client.Histogram(
    "shoal_scheduler_latency_seconds",
    "Time from a task becoming PENDING to its assignment to a node.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PLACEMENTS = prometheus_client.Counter("shoal_scheduler_placements_total", "Tasks assigned to a node.")
UNSCHEDULABLE = prometheus_client.Gauge(
    "shoal_scheduler_unschedulable_tasks", "PENDING tasks that fit on no node at the last pass."
)
SESSIONS = prometheus_client.Gauge("shoal_dispatcher_sessions", "Open agent sessions on this controller.")
NODES_DOWN = prometheus_client.Counter(
    "shoal_dispatcher_nodes_down_total", "Nodes marked DOWN after missing their heartbeats."
)
STATUS_UPDATES = prometheus_client.Counter(
    "shoal_dispatcher_status_updates_total", "Task status reports accepted from agents."
)
LOOP_DURATION = prometheus_client.Histogram(
    "shoal_controller_reconcile_duration_seconds",
    "Time of one reconciliation pass of a control loop.",
    ["loop"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)


class ClusterCollector(Collector):
    """Nodes, tasks and services by state, read from the leader's cache at scrape time."""

    def __init__(self) -> None:
        self.cache: Cache | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = GaugeMetricFamily(
            "shoal_cluster_nodes", "Nodes by status and availability.", labels=["state", "availability"]
        )
        tasks = GaugeMetricFamily("shoal_cluster_tasks", "Tasks by observed state.", labels=["state"])
        services = GaugeMetricFamily("shoal_cluster_services", "Services in the cluster.")
        cache = self.cache
        if cache is not None:
            by_state: Counter[tuple[str, str]] = Counter(
                (n.status.State.Name(n.status.state), n.spec.Availability.Name(n.spec.availability))
                for n in cache.nodes.values()
            )
            for (state, availability), count in sorted(by_state.items()):
                nodes.add_metric([state, availability], count)
            task_states = Counter(t.status.state for t in cache.tasks.values())
            for state, count in sorted(task_states.items()):
                tasks.add_metric([types_pb2.TaskState.Name(state)], count)
            services.add_metric([], len(cache.services))
        yield nodes
        yield tasks
        yield services


CLUSTER = ClusterCollector()
prometheus_client.REGISTRY.register(CLUSTER)
