"""Write the Grafana dashboards of a Shoal cluster: `python deploy/grafana/generate.py`.

The dashboards (cluster overview, one service, one node) are declared here,
compactly, and written as the JSON Grafana imports to deploy/grafana/dashboards/.
The JSON is committed; tests/deploy/ fails when it is stale, and checks every
query: each one parses (promtool) and, in the integration tests, is evaluated
against a real Prometheus scraping a real cluster.

Every panel reads the data source chosen in the dashboard's `datasource`
variable, so the files import as they are (Dashboards > Import) and load
through the provisioning files beside them.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclasses.dataclass(frozen=True)
class Q:
    """One query of a panel."""

    expr: str
    legend: str = ""


@dataclasses.dataclass(frozen=True)
class Panel:
    """A panel: its kind, its queries, the unit of its values and its width (of 24)."""

    title: str
    queries: tuple[Q, ...]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""


def stat(title: str, expr: str, unit: str = "short", legend: str = "", description: str = "") -> Panel:
    return Panel(title, (Q(expr, legend),), kind="stat", unit=unit, width=4, height=4, description=description)


def series(title: str, *queries: Q, unit: str = "short", width: int = 12, description: str = "") -> Panel:
    return Panel(title, tuple(queries), unit=unit, width=width, description=description)


def p(q: float, metric: str, by: str, selector: str = "") -> str:
    """The q-quantile of a histogram, per `by`."""
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{selector}[{RATE}])))"


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "includeAll": False,
        "multi": False,
        "hide": 0,
        "current": {},
        "options": [],
    }


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + i), "datasource": DS, "expr": q.expr, "legendFormat": q.legend or "__auto"}
        for i, q in enumerate(panel.queries)
    ]
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DS,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "stat":
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
        }
    else:
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    return out


def dashboard(
    uid: str, title: str, description: str, variables: list[dict[str, Any]], panels: list[Panel]
) -> dict[str, Any]:
    laid_out, x, y, row_height = [], 0, 0, 0
    for i, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(panel_json(panel, i, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    datasource = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["shoal"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 37,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["shoal"], "asDropdown": True, "title": "Shoal"}],
        "templating": {"list": [datasource, *variables]},
        "panels": laid_out,
    }


def cluster() -> dict[str, Any]:
    panels = [
        stat("Leader", "sum(shoal_controller_leader)", description="Controllers that lead: 1 is healthy."),
        stat("Nodes ready", 'sum(shoal_cluster_nodes{state="READY"})'),
        stat("Nodes down", 'sum(shoal_cluster_nodes{state="DOWN"}) or vector(0)'),
        stat("Services", "max(shoal_cluster_services)"),
        stat("Running tasks", 'sum(shoal_cluster_tasks{state="RUNNING"})'),
        stat("Unschedulable tasks", "sum(shoal_scheduler_unschedulable_tasks)"),
        series("Nodes by state", Q("sum by (state, availability) (shoal_cluster_nodes)", "{{state}} {{availability}}")),
        series("Tasks by observed state", Q("sum by (state) (shoal_cluster_tasks)", "{{state}}")),
        series(
            "Replicas running / desired, by service",
            Q("max by (service) (shoal_service_replicas_running)", "{{service}} running"),
            Q("max by (service) (shoal_service_replicas_desired)", "{{service}} desired"),
        ),
        series(
            "Targets up",
            Q('sum by (role) (up{role=~"agent|controller"})', "{{role}} up"),
            Q('count by (role) (up{role=~"agent|controller"})', "{{role}} discovered"),
        ),
        series(
            "CPU by service",
            Q(f"sum by (service) (rate(shoal_container_cpu_usage_seconds_total[{RATE}]))", "{{service}}"),
            unit="cores",
        ),
        series(
            "Memory by service", Q("sum by (service) (shoal_container_memory_usage_bytes)", "{{service}}"), unit="bytes"
        ),
        series(
            "Scheduling latency",
            Q(p(0.5, "shoal_scheduler_latency_seconds", "instance"), "p50"),
            Q(p(0.99, "shoal_scheduler_latency_seconds", "instance"), "p99"),
            unit="s",
            width=8,
        ),
        series(
            "Placements and status reports",
            Q(f"sum(rate(shoal_scheduler_placements_total[{RATE}]))", "placements/s"),
            Q(f"sum(rate(shoal_dispatcher_status_updates_total[{RATE}]))", "status reports/s"),
            unit="ops",
            width=8,
        ),
        series(
            "Unschedulable tasks by reason",
            Q("sum by (reason) (shoal_scheduler_unschedulable_tasks)", "{{reason}}"),
            width=8,
        ),
        series(
            "Control loop pass, p99",
            Q(p(0.99, "shoal_controller_reconcile_duration_seconds", "loop"), "{{loop}}"),
            unit="s",
            width=8,
        ),
        series(
            "Agent sessions and heartbeat lateness",
            Q("sum(shoal_dispatcher_sessions)", "open sessions"),
            Q(p(0.99, "shoal_dispatcher_heartbeat_lateness_seconds", "instance"), "lateness p99 (s)"),
            width=8,
        ),
        series(
            "Nodes marked down",
            Q(f"sum(increase(shoal_dispatcher_nodes_down_total[{RATE}]))", "nodes marked down"),
            width=8,
        ),
        series(
            "etcd request latency, p99",
            Q(p(0.99, "shoal_store_etcd_request_duration_seconds", "operation"), "{{operation}}"),
            unit="s",
            width=8,
        ),
        series(
            "etcd errors and write conflicts",
            Q(f"sum by (operation) (rate(shoal_store_etcd_errors_total[{RATE}]))", "{{operation}} errors/s"),
            Q(f"sum(rate(shoal_store_txn_conflicts_total[{RATE}]))", "conflicts/s"),
            unit="ops",
            width=8,
        ),
        series(
            "Leadership and watch lag",
            Q("shoal_controller_leader", "leader {{instance}}"),
            Q(f"sum(increase(shoal_controller_leader_changes_total[{RATE}]))", "leader changes"),
            Q("max(shoal_store_watch_lag_revisions)", "watch lag (revisions)"),
            width=8,
        ),
    ]
    return dashboard(
        "shoal-cluster",
        "Shoal / Cluster",
        "Nodes, services, scheduling, control loops and etcd of a Shoal cluster.",
        [],
        panels,
    )


def service() -> dict[str, Any]:
    s = '{service="$service"}'
    panels = [
        stat("Desired replicas", f"max(shoal_service_replicas_desired{s})"),
        stat("Running replicas", f"max(shoal_service_replicas_running{s})"),
        stat("Update", f"max by (state) (shoal_service_update_state{s}) == 1", legend="{{state}}"),
        stat("Restarts (1h)", f"sum(increase(shoal_container_restarts_total{s}[1h])) or vector(0)"),
        stat("CPU", f"sum(rate(shoal_container_cpu_usage_seconds_total{s}[{RATE}]))", unit="cores"),
        stat("Memory", f"sum(shoal_container_memory_usage_bytes{s})", unit="bytes"),
        series(
            "Replicas",
            Q(f"max(shoal_service_replicas_running{s})", "running"),
            Q(f"max(shoal_service_replicas_desired{s})", "desired"),
        ),
        series(
            "Tasks by state (observed / desired)",
            Q(f"sum by (state, desired_state) (shoal_service_tasks{s})", "{{state}} / {{desired_state}}"),
        ),
        series(
            "CPU by slot",
            Q(
                f"sum by (slot, node) (rate(shoal_container_cpu_usage_seconds_total{s}[{RATE}]))",
                "slot {{slot}} on {{node}}",
            ),
            unit="cores",
        ),
        series(
            "Memory by slot",
            Q(f"sum by (slot, node) (shoal_container_memory_usage_bytes{s})", "slot {{slot}} on {{node}}"),
            Q(f"max(shoal_container_memory_limit_bytes{s})", "limit"),
            unit="bytes",
        ),
        series(
            "Network by slot",
            Q(
                f"sum by (slot) (rate(shoal_container_network_receive_bytes_total{s}[{RATE}]))",
                "slot {{slot}} received",
            ),
            Q(
                f"sum by (slot) (rate(shoal_container_network_transmit_bytes_total{s}[{RATE}]))",
                "slot {{slot}} sent",
            ),
            unit="Bps",
        ),
        series(
            "Restarts by slot",
            Q(f"sum by (slot) (increase(shoal_container_restarts_total{s}[{RATE}]))", "slot {{slot}}"),
        ),
    ]
    variables = [variable("service", "Service", "label_values(shoal_service_replicas_desired, service)")]
    return dashboard(
        "shoal-service", "Shoal / Service", "One service: replicas, tasks and its containers' use.", variables, panels
    )


def node() -> dict[str, Any]:
    n = '{node="$node"}'
    panels = [
        stat("Status", f"max by (state) (shoal_node_state{n}) == 1", legend="{{state}}"),
        stat("Availability", f"max by (availability) (shoal_node_info{n})", legend="{{availability}}"),
        stat("Engine reachable", f"max(shoal_agent_engine_up{n})"),
        stat("Session", f"max(shoal_agent_session_connected{n})"),
        stat("Running tasks", 'sum(shoal_agent_tasks{node="$node", state="RUNNING"})'),
        stat("Agent up", f"max(up{n})"),
        series(
            "CPU: used, reserved, capacity",
            Q(f"sum(rate(shoal_container_cpu_usage_seconds_total{n}[{RATE}]))", "used by tasks"),
            Q(f"max(shoal_node_cpu_reserved_cores{n})", "reserved"),
            Q(f"max(shoal_node_cpu_capacity_cores{n})", "capacity"),
            unit="cores",
        ),
        series(
            "Memory: used, reserved, capacity",
            Q(f"sum(shoal_container_memory_usage_bytes{n})", "used by tasks"),
            Q(f"max(shoal_node_memory_reserved_bytes{n})", "reserved"),
            Q(f"max(shoal_node_memory_capacity_bytes{n})", "capacity"),
            unit="bytes",
        ),
        series(
            "CPU by task slot",
            Q(
                f"sum by (service, slot) (rate(shoal_container_cpu_usage_seconds_total{n}[{RATE}]))",
                "{{service}}.{{slot}}",
            ),
            unit="cores",
        ),
        series(
            "Memory by task slot",
            Q(f"sum by (service, slot) (shoal_container_memory_usage_bytes{n})", "{{service}}.{{slot}}"),
            unit="bytes",
        ),
        series("Tasks by state", Q(f"sum by (state) (shoal_agent_tasks{n})", "{{state}}"), width=8),
        series(
            "Container operations, p90",
            Q(p(0.9, "shoal_agent_container_operation_duration_seconds", "operation", n), "{{operation}}"),
            unit="s",
            width=8,
        ),
        series(
            "Image pulls",
            Q(f"sum(rate(shoal_agent_image_pull_bytes_total{n}[{RATE}]))", "downloaded"),
            unit="Bps",
            width=8,
        ),
        series(
            "Agent process",
            Q(f"rate(process_cpu_seconds_total{n}[{RATE}])", "CPU (cores)"),
            Q(f"sum(rate(shoal_agent_status_reports_total{n}[{RATE}]))", "status reports/s"),
            width=12,
        ),
        series("Agent memory", Q(f"process_resident_memory_bytes{n}", "resident"), unit="bytes", width=12),
    ]
    variables = [variable("node", "Node", "label_values(shoal_node_info, node)")]
    return dashboard(
        "shoal-node", "Shoal / Node", "One node: its status, its agent and the containers it runs.", variables, panels
    )


DASHBOARDS = {"shoal-cluster.json": cluster, "shoal-service.json": service, "shoal-node.json": node}


def render() -> dict[str, str]:
    """Every dashboard's file name and JSON text."""
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
