"""Placement on real nodes: every constraint key, spread preferences, max replicas per node, engine limits."""

from __future__ import annotations

import collections
import json

from shoal.v1 import types_pb2
from tests.integration.harness import Cluster, docker, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create
from tests.integration.test_scheduling import pending_reason


def per_node(cluster: Cluster, service_id: str) -> dict[str, int]:
    names = {n.id: n.name for n in cluster.control.nodes()}
    return dict(collections.Counter(names[t.node_id] for t in cluster.control.running(service_id)))


def test_every_constraint_key(cluster: Cluster, image: str) -> None:
    node = {n.name: n for n in cluster.control.nodes()}["n2"]
    cluster.ctl("node", "update", "n2", "--label-add", "disk=ssd", check=True)
    exprs = [
        f"node.id=={node.id}",
        "node.hostname==n2",
        "node.role==worker",
        f"node.platform.os=={node.description.platform.os}",
        f"node.platform.arch=={node.description.platform.architecture}",
        "node.labels.disk==ssd",
    ]
    args = [a for e in exprs for a in ("--constraint", e)]
    service_id = create(cluster, "pinned", image, "--replicas", "2", *args, *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 2, "pinned"), 90, "2 replicas on n2")
    assert per_node(cluster, service_id) == {"n2": 2}
    # `!=` on each key keeps the task off n2.
    negated = [a for e in exprs[:2] for a in ("--constraint", e.replace("==", "!="))]
    other = create(cluster, "elsewhere", image, "--replicas", "2", *negated, *SLEEP)
    wait_until(lambda: converged(cluster, other, 2, "elsewhere"), 90, "2 replicas off n2")
    assert "n2" not in per_node(cluster, other)
    # No node is a manager: the reason names the filter and the nodes it excluded.
    manager = create(cluster, "on-manager", image, "--constraint", "node.role==manager", *SLEEP)
    reason = wait_until(lambda: pending_reason(cluster, manager), 30, "a PENDING reason")
    assert reason == "no suitable node (3 nodes constraint node.role==manager not met)"


def test_spread_preference_spreads_over_zones(cluster: Cluster, image: str) -> None:
    # Zone a has two nodes, zone b one: spread over nodes would give b a third of the tasks, spread over zones half.
    for name, zone in (("n1", "a"), ("n2", "a"), ("n3", "b")):
        cluster.ctl("node", "update", name, "--label-add", f"zone={zone}", check=True)
    service_id = create(
        cluster, "zoned", image, "--replicas", "4", "--placement-pref", "spread=node.labels.zone", *SLEEP
    )
    wait_until(lambda: converged(cluster, service_id, 4, "zoned"), 90, "4 replicas")
    counts = per_node(cluster, service_id)
    assert counts["n3"] == 2 and counts.get("n1", 0) + counts.get("n2", 0) == 2, counts
    inspect = cluster.ctl("service", "inspect", "zoned", check=True).stdout
    assert "spread=node.labels.zone" in inspect
    # Scaling up keeps the zones even.
    cluster.ctl("service", "scale", "zoned=6", check=True)
    wait_until(lambda: converged(cluster, service_id, 6, "zoned"), 90, "6 replicas")
    assert per_node(cluster, service_id)["n3"] == 3


def test_replicas_max_per_node(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "capped", image, "--replicas", "4", "--replicas-max-per-node", "1", *SLEEP)
    wait_until(lambda: len(cluster.control.running(service_id)) == 3, 90, "3 tasks running")
    assert sorted(per_node(cluster, service_id).values()) == [1, 1, 1]
    reason = wait_until(lambda: pending_reason(cluster, service_id), 30, "the fourth task's reason")
    assert reason == "no suitable node (3 nodes already running the maximum of 1 task of the service per node)"
    # Raising the limit lets the fourth run.
    cluster.ctl("service", "update", "capped", "--replicas-max-per-node", "2", check=True)
    wait_until(lambda: len(cluster.control.running(service_id)) == 4, 90, "4 tasks running")
    assert max(per_node(cluster, service_id).values()) <= 2


def test_limits_reach_the_engine_and_reservations_the_scheduler(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "limited", image, "--limit-cpu", "0.5", "--limit-memory", "64M", "--reserve-cpu", "0.25", *SLEEP
    )
    wait_until(lambda: converged(cluster, service_id, 1, "limited"), 90, "1 replica")
    (container,) = cluster.running_containers("limited")
    host = json.loads(docker("inspect", container["id"]).stdout)[0]["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024
    # The reservation is counted against the node; more than a node has cannot be placed.
    cpus = {n.name: n for n in cluster.control.nodes()}["n1"].description.resources.nano_cpus
    huge = create(cluster, "huge", image, "--reserve-cpu", str(cpus / 1e9 + 1), *SLEEP)
    reason = wait_until(lambda: pending_reason(cluster, huge), 30, "a PENDING reason")
    assert "3 nodes insufficient CPU" in reason
    assert cluster.control.service(huge).spec.task.resources.reservations.nano_cpus > cpus
    assert types_pb2.PENDING == cluster.control.tasks(huge)[0].status.state


def test_a_global_task_its_node_cannot_take_says_why(cluster: Cluster, image: str) -> None:
    memory = {n.name: n for n in cluster.control.nodes()}["n1"].description.resources.memory_bytes
    service_id = create(cluster, "greedy", image, "--mode", "global", "--reserve-memory", str(memory + 1), *SLEEP)

    def reasons() -> list[str]:
        return sorted(t.status.err for t in cluster.control.tasks(service_id) if t.status.err)

    found = wait_until(lambda: len(reasons()) == 3 and reasons(), 30, "a reason on each node's task")
    for name, reason in zip(("n1", "n2", "n3"), found, strict=True):
        assert reason.startswith(f"node {name} cannot take the task: insufficient memory; the task reserves ")
    assert all(t.status.state == types_pb2.PENDING and t.node_id for t in cluster.control.tasks(service_id))
