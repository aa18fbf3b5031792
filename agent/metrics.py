"""The agent's Prometheus metrics, served on --metrics-listen by `shoal.metrics_http`.

The executor times its engine calls, the agent flips the session gauge, the
reporter counts sent statuses; the task gauge is computed at scrape time from
the runners through `TaskCollector`, so it can never drift from them.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal import states

CONTAINER_OPERATION_DURATION = prometheus_client.Histogram(
    "shoal_agent_container_operation_duration_seconds",
    "Time taken by container engine operations, by operation (pull, create, start, stop, remove, inspect).",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

SESSION_CONNECTED = prometheus_client.Gauge(
    "shoal_agent_session_connected",
    "1 while the agent holds a registered session with the leader controller, else 0.",
)

STATUS_REPORTS = prometheus_client.Counter(
    "shoal_agent_status_reports",
    "Task status updates the controller accepted from this agent.",
)


@contextlib.contextmanager
def time_operation(operation: str) -> Iterator[None]:
    """Observe the duration of one container engine operation, failed or not."""
    start = time.monotonic()
    try:
        yield
    finally:
        CONTAINER_OPERATION_DURATION.labels(operation).observe(time.monotonic() - start)


class TaskCollector(Collector):
    """`shoal_agent_tasks{state}`: the runners' observed states, counted at scrape time."""

    def __init__(self, observed_states: Callable[[], Iterable[int]]) -> None:
        self._observed_states = observed_states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("shoal_agent_tasks", "Tasks this agent runs, by observed state.", labels=["state"])
        counts = collections.Counter(self._observed_states())
        for state, count in sorted(counts.items()):
            family.add_metric([states.name(state)], count)
        yield family


@contextlib.contextmanager
def registered(collector: Collector) -> Iterator[None]:
    """Register `collector` with the default registry while the context is open."""
    prometheus_client.REGISTRY.register(collector)
    try:
        yield
    finally:
        prometheus_client.REGISTRY.unregister(collector)
