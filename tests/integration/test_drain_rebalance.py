"""Draining and pausing nodes, and rebalancing services, on real components.

A drain must cost no capacity: every `docker ps` reading taken while a node
drains shows at least `replicas` running containers, and each replacement
ran before the task it replaced stopped. A rebalance moves tasks the same
way, towards an even spread, and is also started automatically when the
cluster says so and a node comes back.
"""

from __future__ import annotations

import collections

from shoal.v1 import objects_pb2, types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.sampling import SLOW_STOP, Sampler, by_slot, ended_at, ran_at, stays, wait_state
from tests.integration.test_lifecycle import SLEEP, converged, create

Status = types_pb2.UpdateStatus
MOVE = objects_pb2.Task.MOVE


def spread(cluster: Cluster, service_id: str) -> list[int]:
    """Running tasks per node (every node of the cluster), sorted."""
    names = {cluster.node_id(n): n for n in cluster.agents}
    counts = collections.Counter(names[t.node_id] for t in cluster.control.running(service_id))
    return sorted(counts.get(n, 0) for n in cluster.agents)


def test_drain_starts_replacements_before_stopping_the_drained_tasks(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "drained", image, "--replicas", "3", "--stop-grace-period", "2s", *SLOW_STOP)
    wait_until(lambda: converged(cluster, service_id, 3, "drained"), 90, "3 replicas")
    n1 = cluster.node_id("n1")
    on_n1 = {t.id for t in cluster.control.running(service_id) if t.node_id == n1}
    assert on_n1
    with Sampler(cluster, "drained") as sampler:
        cluster.ctl("node", "update", "n1", "--availability", "drain", check=True)
        wait_until(
            lambda: converged(cluster, service_id, 3, "drained")
            and not [c for c in cluster.running_containers("drained") if c["node"] == n1]
            # The drained tasks' last statuses reach the store a report interval after their containers go.
            and all(t.status.state > types_pb2.RUNNING for t in cluster.control.tasks(service_id) if t.id in on_n1),
            90,
            "n1 empty, its tasks' ends reported, and 3 replicas elsewhere",
        )
    assert min(sampler.counts) >= 3, sampler.counts  # never below the replica count
    for slot_tasks in by_slot(cluster.control.tasks(service_id)).values():
        if slot_tasks[0].id in on_n1:
            old, new = slot_tasks[0], slot_tasks[-1]
            assert new.origin == MOVE
            assert ran_at(new) < ended_at(old)


def test_pause_keeps_running_tasks_and_takes_no_new_ones(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "paused", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "paused"), 90, "3 replicas")
    n1 = cluster.node_id("n1")
    before = {c["id"] for c in cluster.running_containers("paused") if c["node"] == n1}
    cluster.ctl("node", "update", "n1", "--availability", "pause", check=True)
    cluster.ctl("service", "scale", "paused=6", check=True)
    wait_until(lambda: converged(cluster, service_id, 6, "paused"), 90, "6 replicas")
    assert {c["id"] for c in cluster.running_containers("paused") if c["node"] == n1} == before


def test_rebalance_moves_tasks_to_a_node_that_came_back(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "bal", image, "--replicas", "6", "--stop-grace-period", "2s", *SLOW_STOP)
    wait_until(lambda: converged(cluster, service_id, 6, "bal") and spread(cluster, service_id) == [2, 2, 2], 90,
               "6 replicas spread")  # fmt: skip
    cluster.ctl("node", "update", "n3", "--availability", "drain", check=True)
    wait_until(lambda: spread(cluster, service_id) == [0, 3, 3] and converged(cluster, service_id, 6, "bal"), 90,
               "n3 drained")  # fmt: skip
    cluster.ctl("node", "update", "n3", "--availability", "active", check=True)
    # Nothing moves by itself (automatic rebalancing is off by default).
    stays(lambda: spread(cluster, service_id) == [0, 3, 3], 2, "tasks stay where they are")
    with Sampler(cluster, "bal") as sampler:
        result = cluster.ctl("service", "rebalance", "bal")
    assert result.returncode == 0, result.stderr
    assert "rebalance completed: 2 tasks moved" in result.stderr
    assert spread(cluster, service_id) == [2, 2, 2]
    assert min(sampler.counts) >= 6 and max(sampler.counts) <= 7, sampler.counts  # parallelism 1, start-first
    assert cluster.control.service(service_id).update_status.state == Status.REBALANCE_COMPLETED
    assert "REBALANCE_COMPLETED" in cluster.ctl("service", "ls", check=True).stdout


def test_auto_rebalance_when_a_node_becomes_ready(cluster: Cluster, image: str) -> None:
    result = cluster.ctl("cluster", "update", "--auto-rebalance", "true", check=True)
    assert "auto-rebalance on" in result.stdout
    service_id = create(cluster, "auto", image, "--replicas", "6", "--stop-grace-period", "1s", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 6, "auto") and spread(cluster, service_id) == [2, 2, 2], 90,
               "6 replicas spread")  # fmt: skip
    cluster.agents["n3"].kill()  # its containers go on running, unheard of, until it comes back
    wait_until(lambda: spread(cluster, service_id) == [0, 3, 3], 90, "n3's tasks replaced on n1 and n2")
    cluster.agents["n3"].start()
    cluster.wait_ready("n3")
    service = wait_state(cluster, service_id, Status.REBALANCE_COMPLETED, 120)
    assert service.update_status.message == "rebalance completed: 2 tasks moved"
    wait_until(lambda: spread(cluster, service_id) == [2, 2, 2], 60, "an even spread again")


def test_rebalance_is_refused_during_an_update(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "busy", image, "--replicas", "2", "--update-delay", "1h", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 2, "busy"), 90, "2 replicas")
    cluster.ctl("service", "update", "busy", "--env", "V=2", "--detach", check=True)
    result = cluster.ctl("service", "rebalance", "busy")
    assert result.returncode == 1
    assert "cannot rebalance while an update is in progress" in result.stderr
