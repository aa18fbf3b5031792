"""Recovery from node loss, agent restarts and controller restarts, on real processes."""

from __future__ import annotations

import collections

from shoal.v1 import types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def test_killed_agent_tasks_move_and_stale_containers_go_on_return(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "sturdy", image, "--replicas", "6", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 6, "sturdy"), 90, "6 replicas")
    n1 = cluster.node_id("n1")
    stale = {c["id"] for c in cluster.running_containers("sturdy") if c["node"] == n1}
    assert stale

    cluster.agents["n1"].kill()
    wait_until(
        lambda: {n.name: n.status.state for n in cluster.control.nodes()}["n1"] == types_pb2.NodeStatus.DOWN,
        30,
        "n1 to be DOWN",
    )

    def replaced_elsewhere() -> bool:
        running = cluster.control.running(service_id)
        return len(running) == 6 and n1 not in {t.node_id for t in running}

    wait_until(replaced_elsewhere, 60, "6 tasks running on n2 and n3")
    # The killed agent's containers still run (the engine is shared): they are stale until n1 returns.
    assert stale <= {c["id"] for c in cluster.running_containers("sturdy")}

    cluster.agents["n1"].start()
    cluster.wait_ready("n1")
    wait_until(lambda: not stale & {c["id"] for c in cluster.running_containers("sturdy")}, 60, "stale containers gone")
    wait_until(lambda: converged(cluster, service_id, 6, "sturdy"), 60, "exactly 6 running containers")


def test_agent_restart_adopts_its_containers(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "adopt", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "adopt"), 90, "3 replicas")
    before = sorted(c["id"] for c in cluster.running_containers("adopt"))
    tasks_before = sorted(t.id for t in cluster.control.running(service_id))

    per_node = collections.Counter(t.node_id for t in cluster.control.running(service_id))
    for name in ("n1", "n2"):
        cluster.agents[name].kill()
        cluster.agents[name].start()
    cluster.wait_ready("n1", "n2")
    for name in ("n1", "n2"):
        # The restarted agent has taken its assignment set and adopted what runs.
        expected = per_node[cluster.node_id(name)]
        wait_until(lambda: cluster.agent_tasks(name) == expected, 30, f"{name} to run {expected} tasks again")  # noqa: B023
    wait_until(lambda: converged(cluster, service_id, 3, "adopt"), 30, "3 replicas")
    assert sorted(c["id"] for c in cluster.running_containers("adopt")) == before
    assert sorted(t.id for t in cluster.control.running(service_id)) == tasks_before
    assert len(cluster.containers()) == 3


def test_controller_restart_changes_no_container(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "steady", image, "--replicas", "4", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 4, "steady"), 90, "4 replicas")
    before = sorted(c["id"] for c in cluster.running_containers("steady"))
    tasks_before = sorted(t.id for t in cluster.control.running(service_id))

    assert cluster.controller is not None
    cluster.controller.kill()
    cluster.controller.start()
    cluster.wait_ready("n1", "n2", "n3")
    wait_until(lambda: len(cluster.control.running(service_id)) == 4, 30, "4 tasks RUNNING after restart")
    assert sorted(c["id"] for c in cluster.running_containers("steady")) == before
    assert sorted(t.id for t in cluster.control.running(service_id)) == tasks_before
    assert all(n.status.state == types_pb2.NodeStatus.READY for n in cluster.control.nodes())
    # The cluster still takes orders.
    cluster.ctl("service", "scale", "steady=5", check=True)
    wait_until(lambda: converged(cluster, service_id, 5, "steady"), 60, "5 replicas")
    assert collections.Counter(c["id"] for c in cluster.running_containers("steady")).most_common(1)[0][1] == 1
