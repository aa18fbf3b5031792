"""Placement on real nodes: constraints, reservations, and the reason a task stays PENDING."""

from __future__ import annotations

import json

from shoal.v1 import types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def pending_reason(cluster: Cluster, service_id: str) -> str:
    tasks = [t for t in cluster.control.tasks(service_id) if t.status.state == types_pb2.PENDING]
    return tasks[0].status.err if tasks and tasks[0].status.err else ""


def test_constraint_on_hostname_and_labels(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "pinned", image, "--replicas", "3", "--constraint", "node.hostname==n2", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "pinned"), 90, "3 replicas")
    n2 = cluster.node_id("n2")
    assert {t.node_id for t in cluster.control.running(service_id)} == {n2}

    other = create(cluster, "notn2", image, "--replicas", "4", "--constraint", "node.hostname!=n2", *SLEEP)
    wait_until(lambda: converged(cluster, other, 4, "notn2"), 90, "4 replicas")
    assert n2 not in {t.node_id for t in cluster.control.running(other)}


def test_unsatisfiable_constraint_stays_pending_with_reason(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "zoned", image, "--constraint", "node.labels.zone==east", *SLEEP)
    reason = wait_until(lambda: pending_reason(cluster, service_id), 30, "a PENDING reason")
    assert "no suitable node" in reason and "3 nodes constraint node.labels.zone==east not met" in reason

    # Visible to users in `task ls` (table) and `task inspect`.
    table = cluster.ctl("task", "ls", "--service", "zoned", check=True).stdout
    assert "no suitable node" in table
    (task,) = cluster.ctl_json("task", "ls", "--service", "zoned")
    inspect = cluster.ctl("task", "inspect", task["id"], check=True).stdout
    assert "zone==east not met" in inspect
    assert cluster.ctl_json("task", "inspect", task["id"])["status"]["state"] == "PENDING"

    # A label that satisfies it lets the task run, on that node.
    cluster.ctl("node", "update", "n3", "--label-add", "zone=east", check=True)
    wait_until(lambda: converged(cluster, service_id, 1, "zoned"), 90, "the task to run once a node fits")
    assert cluster.control.running(service_id)[0].node_id == cluster.node_id("n3")


def test_reservations_filter_nodes(cluster: Cluster, image: str) -> None:
    nodes = {n.name: n for n in cluster.control.nodes()}
    memory = nodes["n1"].description.resources.memory_bytes
    assert memory > 0
    # Each task reserves 60% of a node's memory: one task per node, the fourth cannot fit.
    reserve = str(int(memory * 0.6))
    service_id = create(cluster, "big", image, "--replicas", "4", "--reserve-memory", reserve, *SLEEP)
    wait_until(lambda: len(cluster.control.running(service_id)) == 3, 90, "3 tasks running")
    assert len({t.node_id for t in cluster.control.running(service_id)}) == 3
    reason = wait_until(lambda: pending_reason(cluster, service_id), 30, "the fourth task's reason")
    assert "insufficient memory" in reason
    doc = cluster.ctl_json("service", "inspect", "big")
    assert int(doc["spec"]["task"]["resources"]["reservations"]["memoryBytes"]) == int(reserve)


def test_paused_and_drained_nodes_take_no_new_tasks(cluster: Cluster, image: str) -> None:
    cluster.ctl("node", "update", "n1", "--availability", "pause", check=True)
    cluster.ctl("node", "update", "n2", "--availability", "drain", check=True)
    service_id = create(cluster, "avail", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "avail"), 90, "3 replicas")
    assert {t.node_id for t in cluster.control.running(service_id)} == {cluster.node_id("n3")}
    nodes = {n["name"]: n for n in cluster.ctl_json("node", "ls")}
    assert nodes["n1"]["spec"]["availability"] == "PAUSE"
    assert nodes["n2"]["spec"]["availability"] == "DRAIN"
    assert (
        json.loads(cluster.ctl("--format", "json", "node", "inspect", "n3", check=True).stdout)["status"]["state"]
        == "READY"
    )
