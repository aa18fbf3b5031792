"""Cluster-state metrics computed from the leader's cache at scrape time."""

from __future__ import annotations

import prometheus_client
from controller_fakes import ACTIVE, DOWN, DRAIN, GIB, READY, make_node, make_service, make_task

from shoal import states
from shoal.controller import state_metrics
from shoal.controller.store import tallies
from shoal.v1 import objects_pb2, types_pb2


class Cache:
    """The part of the store cache the collector reads."""

    def __init__(
        self, nodes: list[objects_pb2.Node], services: list[objects_pb2.Service], tasks: list[objects_pb2.Task]
    ):
        self.nodes = {n.id: n for n in nodes}
        self.services = {s.id: s for s in services}
        self.tasks = {t.id: t for t in tasks}
        self.tallies = tallies.TaskTallies()
        for task in tasks:
            self.tallies.add(task)
        self.revision = 40
        self.generation = 1
        self.node_changes = len(nodes)

    def tasks_of_service(self, service_id: str) -> list[objects_pb2.Task]:
        return [t for t in self.tasks.values() if t.service_id == service_id]

    def tasks_of_node(self, node_id: str) -> list[objects_pb2.Task]:
        return [t for t in self.tasks.values() if t.node_id == node_id]


def registry(cache: Cache | None, etcd_revision: int = 42) -> prometheus_client.CollectorRegistry:
    collector = state_metrics.ClusterCollector(lambda: etcd_revision)
    collector.cache = cache  # type: ignore[assignment]
    reg = prometheus_client.CollectorRegistry()
    reg.register(collector)
    return reg


def cluster() -> Cache:
    n1 = make_node("id1", hostname="n1", cpus=4_000_000_000, memory=8 * GIB)
    n2 = make_node("id2", hostname="n2", state=DOWN, availability=DRAIN)
    web = make_service(replicas=3, update_state=types_pb2.UpdateStatus.UPDATING)
    tasks = [
        make_task(web, 1, node="id1", task_id="t1"),
        make_task(web, 2, node="id1", task_id="t2"),
        make_task(web, 3, node="", state=states.PENDING, task_id="t3"),
    ]
    tasks[0].spec.resources.reservations.nano_cpus = 500_000_000
    tasks[0].spec.resources.reservations.memory_bytes = GIB
    return Cache([n1, n2], [web], tasks)


def test_services_replicas_tasks_and_update_state() -> None:
    reg = registry(cluster())
    name = "web"
    assert reg.get_sample_value("shoal_service_replicas_desired", {"service": name}) == 3
    assert reg.get_sample_value("shoal_service_replicas_running", {"service": name}) == 2
    labels = {"service": name, "state": "RUNNING", "desired_state": "RUNNING"}
    assert reg.get_sample_value("shoal_service_tasks", labels) == 2
    labels = {"service": name, "state": "PENDING", "desired_state": "RUNNING"}
    assert reg.get_sample_value("shoal_service_tasks", labels) == 1
    assert reg.get_sample_value("shoal_service_update_state", {"service": name, "state": "UPDATING"}) == 1
    assert reg.get_sample_value("shoal_service_update_state", {"service": name, "state": "PAUSED"}) == 0
    info = reg.get_sample_value(
        "shoal_service_info", {"service": name, "service_id": "svc1", "mode": "replicated", "image": "busybox:1"}
    )
    assert info == 1


def test_nodes_state_capacity_and_reservations() -> None:
    reg = registry(cluster())
    assert reg.get_sample_value("shoal_node_state", {"node": "n1", "node_id": "id1", "state": "READY"}) == 1
    assert reg.get_sample_value("shoal_node_state", {"node": "n1", "node_id": "id1", "state": "DOWN"}) == 0
    assert reg.get_sample_value("shoal_node_state", {"node": "n2", "node_id": "id2", "state": "DOWN"}) == 1
    assert reg.get_sample_value("shoal_node_cpu_capacity_cores", {"node": "n1"}) == 4
    assert reg.get_sample_value("shoal_node_memory_capacity_bytes", {"node": "n1"}) == 8 * GIB
    assert reg.get_sample_value("shoal_node_cpu_reserved_cores", {"node": "n1"}) == 0.5
    assert reg.get_sample_value("shoal_node_memory_reserved_bytes", {"node": "n1"}) == GIB
    assert reg.get_sample_value("shoal_cluster_nodes", {"state": "READY", "availability": "ACTIVE"}) == 1
    assert reg.get_sample_value("shoal_cluster_nodes", {"state": "DOWN", "availability": "DRAIN"}) == 1
    assert reg.get_sample_value("shoal_cluster_tasks", {"state": "RUNNING"}) == 2
    assert reg.get_sample_value("shoal_cluster_services") == 1
    assert ACTIVE != DRAIN and READY != DOWN  # the fakes' constants are the enum values used above


def test_watch_lag_is_the_newest_etcd_revision_minus_the_cache_revision() -> None:
    reg = registry(cluster(), etcd_revision=45)
    assert reg.get_sample_value("shoal_store_cache_revision") == 40
    assert reg.get_sample_value("shoal_store_watch_lag_revisions") == 5
    assert registry(cluster(), etcd_revision=30).get_sample_value("shoal_store_watch_lag_revisions") == 0


def test_a_follower_exports_the_families_without_series() -> None:
    text = prometheus_client.generate_latest(registry(None)).decode()
    assert "# HELP shoal_service_replicas_running " in text
    assert "# HELP shoal_node_state " in text
    assert not [line for line in text.splitlines() if line and not line.startswith("#")]


def test_no_task_id_appears_in_any_label() -> None:
    cache = cluster()
    text = prometheus_client.generate_latest(registry(cache)).decode()
    for task_id in cache.tasks:
        assert f'"{task_id}"' not in text


def test_reservations_count_like_the_scheduler() -> None:
    from shoal.controller.scheduler import nodeinfo

    cache = cluster()
    for task in cache.tasks.values():
        assert tallies.holds_resources(task) == nodeinfo.holds_resources(task)


def test_node_series_follow_node_and_reservation_changes_between_scrapes() -> None:
    """The per-node families are kept between scrapes; a change of a node or of a reservation rebuilds them."""
    cache = cluster()
    reg = registry(cache)
    ready = {"node": "n1", "node_id": "id1", "state": "READY"}
    assert reg.get_sample_value("shoal_node_state", ready) == 1
    down = make_node("id1", hostname="n1", state=DOWN, cpus=4_000_000_000, memory=8 * GIB)
    cache.nodes["id1"] = down
    cache.node_changes += 1  # as the store cache counts every node it sets
    assert reg.get_sample_value("shoal_node_state", ready) == 0
    assert reg.get_sample_value("shoal_node_state", {**ready, "state": "DOWN"}) == 1
    assert reg.get_sample_value("shoal_cluster_nodes", {"state": "DOWN", "availability": "ACTIVE"}) == 1
    first = next(t for t in cache.tasks.values() if t.id == "t1")
    cache.tallies.add(first, -1)  # t1 (0.5 CPU) leaves n1
    assert reg.get_sample_value("shoal_node_cpu_reserved_cores", {"node": "n1"}) == 0
    cache.generation += 1  # a new term's cache, with the same node counts
    cache.nodes["id9"] = make_node("id9", hostname="n9")
    assert reg.get_sample_value("shoal_node_state", {"node": "n9", "node_id": "id9", "state": "READY"}) == 1
