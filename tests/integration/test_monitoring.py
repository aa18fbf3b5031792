"""Monitoring against the real thing: a Prometheus with the shipped configuration scraping a real cluster.

Prometheus is given only the controller's discovery URL; everything else it
must find by itself. Assertions go through its HTTP API.
"""

from __future__ import annotations

import collections
import json
import pathlib
import re
import urllib.request
from collections.abc import Iterator

import pytest

from tests.deploy import monitoring
from tests.integration import prometheus as prom
from tests.integration.harness import Cluster, wait_until

SLEEP = ["--", "sleep", "100000"]
NODES = {"n1", "n2", "n3"}


@pytest.fixture
def prometheus(cluster: Cluster, tmp_path: pathlib.Path) -> Iterator[prom.Prometheus]:
    with prom.running(tmp_path, f"http://{cluster.controller_metrics}/sd/prometheus") as p:
        try:
            yield p
        except BaseException:
            print(p.log()[-4000:])
            raise


def scraped(prometheus: prom.Prometheus) -> dict[tuple[str, str], str]:
    """{(role, node name or controller ID): health} of every active target."""
    return {
        (t["labels"].get("role", ""), t["labels"].get("node") or t["labels"].get("controller_id", "")): t["health"]
        for t in prometheus.targets()
    }


def wait_all_up(prometheus: prom.Prometheus) -> None:
    def all_up() -> bool:
        targets = scraped(prometheus)
        agents = {name for (role, name), health in targets.items() if role == "agent" and health == "up"}
        controllers = [health for (role, _), health in targets.items() if role == "controller"]
        # Raised, so that a timeout reports what Prometheus saw last.
        assert agents == NODES and controllers == ["up"], targets
        return True

    wait_until(all_up, 60, "every daemon discovered and up")


def test_prometheus_discovers_the_cluster_and_its_series_match_swarmctl(
    cluster: Cluster, image: str, prometheus: prom.Prometheus
) -> None:
    wait_all_up(prometheus)
    # Each agent target carries the node's ID as the cluster knows it.
    ids = {t["labels"]["node"]: t["labels"]["node_id"] for t in prometheus.targets() if t["labels"]["role"] == "agent"}
    assert ids == {n: cluster.node_id(n) for n in NODES}

    service_id = cluster.ctl(
        "service", "create", "--name", "web", "--image", image, "--replicas", "3", *SLEEP, check=True
    )
    service_id = service_id.stdout.strip()
    wait_until(lambda: len(cluster.control.running(service_id)) == 3, 90, "3 running replicas")

    # Running replicas per service, as swarmctl service ls shows them.
    ls = cluster.ctl("service", "ls", check=True).stdout
    assert re.search(r"\bweb\b.*\b3/3\b", ls), ls
    wait_until(
        lambda: prometheus.values("shoal_service_replicas_running", "service") == {"web": 3.0},
        30,
        "shoal_service_replicas_running{service=web} == 3",
    )
    assert prometheus.values("shoal_service_replicas_desired", "service") == {"web": 3.0}

    # Nodes by state, as swarmctl node ls shows them.
    states = collections.Counter(n["status"]["state"] for n in cluster.ctl_json("node", "ls"))
    assert prometheus.values("sum by (state) (shoal_cluster_nodes)", "state") == {
        s: float(c) for s, c in states.items()
    }

    # Per-container CPU and memory for every running task, labelled by service, slot and node.
    names = {n.id: n.name for n in cluster.control.nodes()}
    expected = {(str(t.slot), names[t.node_id]) for t in cluster.control.running(service_id)}

    def container_series(metric: str) -> set[tuple[str, str]]:
        return {(r["metric"]["slot"], r["metric"]["node"]) for r in prometheus.query(f'{metric}{{service="web"}}')}

    wait_until(
        lambda: container_series("shoal_container_cpu_usage_seconds_total") == expected,
        60,
        "CPU series of every running task",
    )
    assert container_series("shoal_container_memory_usage_bytes") == expected
    assert all(v > 0 for v in prometheus.values('shoal_container_memory_usage_bytes{service="web"}', "slot").values())

    # Every daemon exports the process and Python collectors.
    for metric in ("process_resident_memory_bytes", "python_info"):
        roles = collections.Counter(r["metric"]["role"] for r in prometheus.query(metric))
        assert roles == {"controller": 1, "agent": 3}, (metric, roles)

    # swarmctl reads the same series.
    table = cluster.ctl("service", "stats", "web", "--no-stream", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "TASK", "NODE"], table
    assert sorted(line.split()[1] for line in table[1:]) == ["web.1", "web.2", "web.3"], table
    rows = cluster.ctl_json("service", "stats", "web")
    assert {(str(r["slot"]), r["nodeName"]) for r in rows} == expected
    assert all(int(r["memoryBytes"]) > 0 for r in rows), rows
    n1_slots = {slot for slot, node in expected if node == "n1"}
    n1_rows = cluster.ctl_json("node", "stats", "n1")
    assert {str(r["slot"]) for r in n1_rows} == n1_slots

    check_dashboards(prometheus)


def check_dashboards(prometheus: prom.Prometheus) -> None:
    """Every dashboard query is accepted by Prometheus and reads only metrics the cluster exports."""
    present = prometheus.names()
    for name, title, expr in monitoring.panel_queries():
        prometheus.query(monitoring.substitute(expr))  # raises unless Prometheus accepts it
        missing = monitoring.metric_names(expr) - present
        assert not missing, f"{name}: panel {title!r} reads {sorted(missing)}, which no daemon exports"
    for name, variable, query in monitoring.variable_queries():
        match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", query)
        assert match, f"{name}: variable {variable}: unexpected query {query!r}"
        values = prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})
        assert values, f"{name}: variable {variable} ({query}) has no value"


def test_killed_agent_goes_down_fires_node_down_and_leaves_discovery_when_removed(
    cluster: Cluster, prometheus: prom.Prometheus
) -> None:
    wait_all_up(prometheus)
    cluster.agents["n3"].kill()

    wait_until(lambda: scraped(prometheus).get(("agent", "n3")) == "down", 60, "n3's target to be down")
    firing = wait_until(lambda: prometheus.firing("ShoalNodeDown"), 60, "ShoalNodeDown to fire")
    assert [(a["node"], a["node_id"], a["severity"]) for a in firing] == [("n3", cluster.node_id("n3"), "critical")]
    wait_until(
        lambda: [a["node"] for a in prometheus.firing("ShoalTargetDown")] == ["n3"], 60, "ShoalTargetDown for n3"
    )
    assert scraped(prometheus)[("agent", "n1")] == "up"

    # A removed node leaves the discovery, so Prometheus stops scraping it.
    cluster.ctl("node", "rm", "n3", check=True)
    with urllib.request.urlopen(f"http://{cluster.controller_metrics}/sd/prometheus", timeout=5) as resp:  # noqa: S310
        groups = json.loads(resp.read())
    assert sorted(g["labels"].get("__meta_shoal_node_name", "") for g in groups) == ["", "n1", "n2"]
    wait_until(lambda: ("agent", "n3") not in scraped(prometheus), 60, "n3 to leave Prometheus's targets")
    wait_until(lambda: not prometheus.firing("ShoalNodeDown"), 60, "ShoalNodeDown to resolve")
