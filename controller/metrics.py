"""The controller's Prometheus metrics.

Counters and histograms are updated where things happen. Gauges that describe
cluster state (nodes, services, tasks, the watch's lag) are computed at scrape
time from the leader's cache by `state_metrics.ClusterCollector` (registered there as
`state_metrics.CLUSTER`, so that this module, which the store imports, imports nothing above it).
"""

from __future__ import annotations

from collections.abc import Mapping

import prometheus_client

from shoal import looplag

#: Request-scale latencies, 1 ms to 5 s: etcd requests, a write's echo, an API handler.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

ETCD_LATENCY = prometheus_client.Histogram(
    "shoal_store_etcd_request_duration_seconds",
    "Time of etcd requests made by this controller, by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
COMMIT_ECHO_WAIT = prometheus_client.Histogram(
    "shoal_store_commit_echo_wait_seconds",
    "Time a write waited, after etcd committed it, for the leader's cache to see it (read-your-writes).",
    buckets=LATENCY_BUCKETS,
)
API_HANDLING = prometheus_client.Histogram(
    "shoal_api_handling_seconds",
    "Time a unary RPC spent in its handler (from its start to its reply or error), by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
ETCD_ERRORS = prometheus_client.Counter(
    "shoal_store_etcd_errors_total", "etcd requests that failed, by operation.", ["operation"]
)
WRITE_WINDOW = prometheus_client.Gauge(
    "shoal_store_write_window", "Batched etcd transactions the writer may have in flight now (store/window.py)."
)
WRITE_WINDOW_CUTS = prometheus_client.Counter(
    "shoal_store_write_window_cuts_total", "Times a slow etcd answer halved the writer's window."
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
    "shoal_scheduler_unschedulable_tasks",
    "PENDING tasks that fit on no node at the last pass, by the filter that excluded the most nodes "
    "(no_nodes, ready, availability, cpu, memory, constraint, full).",
    ["reason"],
)
#: Every value the `reason` label takes, so that each series exists (at 0) from the start.
UNSCHEDULABLE_REASONS = ("no_nodes", "ready", "availability", "cpu", "memory", "constraint", "max_replicas", "full")
SESSIONS = prometheus_client.Gauge("shoal_dispatcher_sessions", "Open agent sessions on this controller.")
REGISTRATIONS = prometheus_client.Counter(
    "shoal_dispatcher_registrations_total",
    "Agent sessions opened: one per node joining or coming back, more means sessions are being lost.",
)
NODES_DOWN = prometheus_client.Counter(
    "shoal_dispatcher_nodes_down_total", "Nodes marked DOWN after missing their heartbeats."
)
NODES_DOWN_DEFERRED = prometheus_client.Counter(
    "shoal_dispatcher_nodes_down_deferred_total",
    "Missed heartbeat deadlines not acted on because too few heartbeats reached the controller.",
)
ASSIGNMENT_BATCH = prometheus_client.Histogram(
    "shoal_dispatcher_assignment_batch_size",
    "Changes (tasks, secrets, configs) per assignment message sent to an agent.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
STATUS_UPDATES = prometheus_client.Counter(
    "shoal_dispatcher_status_updates_total", "Task status reports accepted from agents."
)
HEARTBEAT_CHECK_LAG = prometheus_client.Histogram(
    "shoal_dispatcher_heartbeat_check_lag_seconds",
    "How late the heartbeat deadline check ran because the controller was busy (added to every deadline).",
    buckets=(0.5, 1, 2.5, 5, 10, 30),
)
HEARTBEAT_LATENESS = prometheus_client.Histogram(
    "shoal_dispatcher_heartbeat_lateness_seconds",
    "How long after the period it was given an agent's heartbeat arrived (0: on time).",
    buckets=(0, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ETCD_REVISION = prometheus_client.Gauge(
    "shoal_store_etcd_revision", "The highest etcd revision this controller has seen in any etcd response."
)
LOOP_DURATION = prometheus_client.Histogram(
    "shoal_controller_reconcile_duration_seconds",
    "Time of one reconciliation pass of a control loop.",
    ["loop"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)

EVENT_LOOP_LAG = looplag.histogram("shoal_controller", "controller")


for _reason in UNSCHEDULABLE_REASONS:
    UNSCHEDULABLE.labels(_reason)
for _loop in ("orchestrator", "modes", "scheduler", "reaper"):
    LOOP_DURATION.labels(_loop)
#: The etcd operations store/etcd.py names, so that their series exist (at 0) before the first error.
ETCD_OPERATIONS = ("range", "txn", "watch", "status", "members", "lease_grant", "lease_revoke", "lease_keepalive")
for _operation in ETCD_OPERATIONS:
    ETCD_ERRORS.labels(_operation)
    ETCD_LATENCY.labels(_operation)


def set_unschedulable(counts: Mapping[str, int]) -> None:
    """Publish the scheduler's unschedulable tasks by reason; reasons not in `counts` go to 0."""
    for reason in UNSCHEDULABLE_REASONS:
        UNSCHEDULABLE.labels(reason).set(counts.get(reason, 0))


def observe_revision(revision: int) -> None:
    """Remember the newest etcd revision seen (the watch lag is measured against it)."""
    if revision > ETCD_REVISION._value.get():
        ETCD_REVISION.set(revision)


def etcd_revision() -> int:
    """The newest etcd revision seen so far."""
    return int(ETCD_REVISION._value.get())

