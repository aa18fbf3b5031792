"""The agent's Prometheus metrics, served on --metrics-listen by `shoal.metrics_http`.

The executor times its engine calls and pulls, the agent flips the session
gauge, the reporter counts sent statuses, runners count containers that
ended on their own (`record_exit`); the task gauge is computed at scrape time
from the runners through `TaskCollector`, so it can never drift from them.
Per-container resource use is stats.py's.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal import looplag, states

CONTAINER_OPERATION_DURATION = prometheus_client.Histogram(
    "shoal_agent_container_operation_duration_seconds",
    "Time taken by container engine operations, by operation (pull, create, start, stop, remove, inspect).",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

#: Every operation the executor times, so that each series exists from the start.
OPERATIONS = ("pull", "create", "start", "stop", "remove", "inspect")
for _operation in OPERATIONS:
    CONTAINER_OPERATION_DURATION.labels(_operation)

IMAGE_PULL_DURATION = prometheus_client.Histogram(
    "shoal_agent_image_pull_duration_seconds",
    "Time taken by image pulls, failed ones included.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
IMAGE_PULL_BYTES = prometheus_client.Counter(
    "shoal_agent_image_pull_bytes_total",
    "Bytes of image layers downloaded by pulls (layers already present are not counted).",
)

ENGINE_UP = prometheus_client.Gauge(
    "shoal_agent_engine_up",
    "1 if the container engine answered the agent's last probe, else 0.",
)

SESSION_CONNECTED = prometheus_client.Gauge(
    "shoal_agent_session_connected",
    "1 while the agent holds a registered session with the leader controller, else 0.",
)

HEARTBEAT_DURATION = prometheus_client.Histogram(
    "shoal_agent_heartbeat_duration_seconds",
    "Round trip of a heartbeat on the Report stream to the controller, unanswered ones included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

EVENT_LOOP_LAG = looplag.histogram("shoal_agent", "agent (or process of hollow agents)")

STATUS_REPORTS = prometheus_client.Counter(
    "shoal_agent_status_reports",
    "Task status updates the controller accepted from this agent.",
)
STATUS_BATCH = prometheus_client.Histogram(
    "shoal_agent_status_report_batch_size",
    "Task status updates per report the controller accepted (its count is the reports).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


#: Containers that ended without being asked to, by (service name, slot); read by stats.py's collector.
EXITS: collections.Counter[tuple[str, str]] = collections.Counter()


def record_exit(service_name: str, slot: int) -> None:
    """Count a container of this service slot that exited or failed on its own (the slot will be restarted)."""
    EXITS[(service_name, str(slot))] += 1


@contextlib.contextmanager
def time_pull() -> Iterator[None]:
    """Observe the duration of one image pull."""
    start = time.monotonic()
    try:
        yield
    finally:
        IMAGE_PULL_DURATION.observe(time.monotonic() - start)


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
