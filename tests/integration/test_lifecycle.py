"""A service's life on real components: create, converge, spread, scale, update, remove."""

from __future__ import annotations

import collections
import json
import threading

from shoal.v1 import types_pb2
from tests.integration.harness import Cluster, docker, wait_until

SLEEP = ["--", "sleep", "100000"]


def create(cluster: Cluster, name: str, image: str, *args: str) -> str:
    """Create a service without following it (the tests wait for what they need); its ID."""
    result = cluster.ctl("service", "create", "--detach", "--name", name, "--image", image, *args, check=True)
    return result.stdout.strip()


def converged(cluster: Cluster, service_id: str, replicas: int, name: str) -> bool:
    """`replicas` tasks RUNNING and exactly that many running containers of the service."""
    return len(cluster.control.running(service_id)) == replicas and len(cluster.running_containers(name)) == replicas


def test_create_converges_and_spreads(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "web", image, "--replicas", "6", *SLEEP)
    assert cluster.control.service("web").id == service_id
    wait_until(lambda: converged(cluster, service_id, 6, "web"), 90, "6 running replicas")
    per_node = collections.Counter(c["node"] for c in cluster.running_containers("web"))
    assert sorted(per_node.values()) == [2, 2, 2], per_node
    # Containers are named <service>.<slot>.<task-id> and carry the task's labels.
    tasks = {t.id: t for t in cluster.control.running(service_id)}
    for c in cluster.running_containers("web"):
        task = tasks[c["task"]]
        assert c["name"] == f"web.{task.slot}.{task.id}"
    ls = cluster.ctl("service", "ls", check=True).stdout
    assert "web" in ls and "6/6" in ls


def test_scale_up_and_down(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "api", image, "--replicas", "2", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 2, "api"), 90, "2 replicas")
    cluster.ctl("service", "scale", "api=5", check=True)
    wait_until(lambda: converged(cluster, service_id, 5, "api"), 90, "5 replicas")
    assert sorted(collections.Counter(c["node"] for c in cluster.running_containers("api")).values()) == [1, 2, 2]
    cluster.ctl("service", "scale", "api=1", check=True)
    wait_until(lambda: converged(cluster, service_id, 1, "api"), 90, "1 replica")
    slots = {t.slot for t in cluster.control.tasks(service_id) if t.desired_state <= types_pb2.RUNNING}
    assert len(slots) == 1


def test_rolling_update_replaces_one_slot_at_a_time(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "roll", image, "--replicas", "3", "--env", "VERSION=1", "--stop-grace-period", "2s", *SLEEP
    )
    wait_until(lambda: converged(cluster, service_id, 3, "roll"), 90, "3 replicas")
    before = {c["id"] for c in cluster.running_containers("roll")}

    violations: list[str] = []
    stop = threading.Event()

    def sample() -> None:
        # At no moment may more containers run than replicas, nor two in one slot (stop-first).
        while not stop.is_set():
            running = cluster.running_containers("roll")
            slots = collections.Counter(c["name"].split(".")[1] for c in running)
            if len(running) > 3 or any(n > 1 for n in slots.values()):
                violations.append(json.dumps(running))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        cluster.ctl("service", "update", "roll", "--env", "VERSION=2", check=True)
        version = cluster.control.service(service_id).spec_version

        def updated() -> bool:
            running = cluster.control.running(service_id)
            return (
                len(running) == 3
                and all(t.spec_version == version for t in running)
                and len(cluster.running_containers("roll")) == 3
            )

        wait_until(updated, 120, "all 3 replicas on the new spec")
    finally:
        stop.set()
        sampler.join()
    assert not violations, violations[:3]
    after = cluster.running_containers("roll")
    assert not before & {c["id"] for c in after}
    for c in after:
        env = json.loads(docker("inspect", c["id"]).stdout)[0]["Config"]["Env"]
        assert "VERSION=2" in env
    service = cluster.control.service(service_id)
    assert service.update_status.state == types_pb2.UpdateStatus.COMPLETED


def test_update_force_redeploys(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "force", image, "--replicas", "1", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 1, "force"), 90, "1 replica")
    (first,) = cluster.control.running(service_id)
    cluster.ctl("service", "update", "force", "--force", check=True)
    wait_until(
        lambda: (
            [t.id for t in cluster.control.running(service_id)] not in ([], [first.id])
            and converged(cluster, service_id, 1, "force")
        ),
        90,
        "a new task after --force",
    )


def test_remove_stops_and_removes_every_container(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "gone", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "gone"), 90, "3 replicas")
    cluster.ctl("service", "rm", "gone", check=True)
    wait_until(lambda: not [c for c in cluster.containers() if c["service"] == "gone"], 60, "no container of 'gone'")
    wait_until(lambda: not cluster.control.tasks(service_id), 30, "the tasks to be deleted")
    assert "gone" not in cluster.ctl("service", "ls", check=True).stdout


def test_exited_container_restarts_in_its_slot(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "flaky", image, "--replicas", "1", "--restart-delay", "1s", "--", "sh", "-c", "sleep 1; exit 3"
    )

    def replaced() -> list:  # type: ignore[type-arg]
        # Failed tasks whose replacement exists: the orchestrator stopped wanting them to run.
        tasks = cluster.control.tasks(service_id)
        return [t for t in tasks if t.status.state == types_pb2.FAILED and t.desired_state == types_pb2.SHUTDOWN]

    failed = wait_until(lambda: len(replaced()) >= 2 and replaced(), 60, "two failed attempts, each replaced")
    assert all(t.status.container.exit_code == 3 for t in failed)
    tasks = cluster.control.tasks(service_id)
    assert {t.slot for t in tasks} == {1}
    # One task at a time is meant to run in the slot; the others are history.
    assert len([t for t in tasks if t.desired_state <= types_pb2.RUNNING]) == 1
