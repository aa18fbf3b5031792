"""Global services and jobs on real etcd, agents and dockerd.

The global test samples `docker ps` the whole time for its invariant: never
two running containers of the service on one node; the job test for its own:
never more running containers than --max-concurrent.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shoal.v1 import objects_pb2, types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, create


@contextmanager
def sampling(check: Callable[[], str | None]) -> Iterator[list[str]]:
    """Run `check` over and over in a thread while the block runs; collect what it reports."""
    violations: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            problem = check()
            if problem:
                violations.append(problem)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield violations
    finally:
        stop.set()
        thread.join()


def one_per_node(cluster: Cluster, service: str) -> Callable[[], str | None]:
    def check() -> str | None:
        running = cluster.running_containers(service)
        per_node = collections.Counter(c["node"] for c in running)
        return json.dumps(running) if any(n > 1 for n in per_node.values()) else None

    return check


def running_nodes(cluster: Cluster, service_id: str) -> list[str]:
    return sorted(t.node_id for t in cluster.control.running(service_id))


def test_global_service_runs_one_task_on_every_eligible_node(cluster: Cluster, image: str) -> None:
    ids = {n: cluster.node_id(n) for n in ("n1", "n2", "n3")}
    service_id = create(cluster, "everywhere", image, "--mode", "global", "--stop-grace-period", "1s", *SLEEP)
    with sampling(one_per_node(cluster, "everywhere")) as violations:
        wait_until(
            lambda: (
                running_nodes(cluster, service_id) == sorted(ids.values())
                and len(cluster.running_containers("everywhere")) == 3
            ),
            90,
            "a running task on each of the 3 nodes",
        )
        assert all(t.slot == 0 for t in cluster.control.tasks(service_id))
        ls = cluster.ctl("service", "ls", check=True).stdout
        assert "global" in ls and "3/3" in ls

        # A node that joins gets one.
        cluster.start_agent("n4")
        cluster.wait_ready("n4")
        ids["n4"] = cluster.node_id("n4")
        wait_until(lambda: ids["n4"] in running_nodes(cluster, service_id), 90, "a task on the new node n4")

        # A drained node's task goes away, and no replacement appears elsewhere.
        cluster.ctl("node", "update", "n1", "--availability", "drain", check=True)
        wait_until(
            lambda: not [c for c in cluster.running_containers("everywhere") if c["node"] == ids["n1"]],
            60,
            "no container of the service on the drained n1",
        )
        assert running_nodes(cluster, service_id) == sorted(ids[n] for n in ("n2", "n3", "n4"))

        # A DOWN node's task is shut down; when the node is back it runs one again, never two.
        cluster.agents["n2"].kill()
        wait_until(
            lambda: any(
                t.node_id == ids["n2"] and t.desired_state == types_pb2.SHUTDOWN
                for t in cluster.control.tasks(service_id)
            ),
            60,
            "the task of the DOWN node n2 to be shut down",
        )
        assert running_nodes(cluster, service_id) == sorted(ids[n] for n in ("n3", "n4"))
        cluster.agents["n2"].start()
        wait_until(
            lambda: (
                ids["n2"] in running_nodes(cluster, service_id)
                and len([c for c in cluster.running_containers("everywhere") if c["node"] == ids["n2"]]) == 1
            ),
            90,
            "n2 to run the service again",
        )
        cluster.ctl("node", "update", "n1", "--availability", "active", check=True)
        wait_until(lambda: len(running_nodes(cluster, service_id)) == 4, 90, "all four nodes running it")
    assert not violations, violations[:3]


def test_global_service_follows_constraints_and_labels(cluster: Cluster, image: str) -> None:
    ids = {n: cluster.node_id(n) for n in ("n1", "n2", "n3")}
    for name in ("n1", "n2"):
        cluster.ctl("node", "update", name, "--label-add", "tier=edge", check=True)
    service_id = create(cluster, "edge", image, "--mode", "global", "--constraint", "node.labels.tier==edge", *SLEEP)
    wait_until(lambda: running_nodes(cluster, service_id) == sorted([ids["n1"], ids["n2"]]), 90, "edge on n1, n2")
    # A node that stops meeting the constraint loses its task; one that starts meeting it gets one.
    cluster.ctl("node", "update", "n1", "--label-rm", "tier", check=True)
    cluster.ctl("node", "update", "n3", "--label-add", "tier=edge", check=True)
    wait_until(
        lambda: (
            running_nodes(cluster, service_id) == sorted([ids["n2"], ids["n3"]])
            and {c["node"] for c in cluster.running_containers("edge")} == {ids["n2"], ids["n3"]}
        ),
        90,
        "edge on n2, n3 only",
    )
    # A rolling update replaces them a node at a time, never two running on one node.
    with sampling(one_per_node(cluster, "edge")) as violations:
        cluster.ctl("service", "update", "edge", "--detach", "--env", "V=2", "--stop-grace-period", "1s", check=True)
        version = cluster.control.service(service_id).spec_version

        def updated() -> bool:
            running = cluster.control.running(service_id)
            return (
                len(running) == 2
                and all(t.spec_version == version for t in running)
                and cluster.control.service(service_id).update_status.state == types_pb2.UpdateStatus.COMPLETED
            )

        wait_until(updated, 90, "both nodes on the new spec, update COMPLETED")
    assert not violations, violations[:3]


def job_tasks(cluster: Cluster, service_id: str, version: int) -> list[objects_pb2.Task]:
    return [t for t in cluster.control.tasks(service_id) if t.spec_version == version]


def test_replicated_job_runs_to_completion_max_concurrent_at_a_time(cluster: Cluster, image: str) -> None:
    def at_most_two() -> str | None:
        running = cluster.running_containers("batch")
        return json.dumps(running) if len(running) > 2 else None

    with sampling(at_most_two) as violations:
        service_id = create(
            cluster, "batch", image, "--mode", "replicated-job", "--replicas", "5", "--max-concurrent", "2",
            "--", "sh", "-c", "sleep 1; echo done",
        )  # fmt: skip

        def completed(version: int) -> bool:
            tasks = job_tasks(cluster, service_id, version)
            return len(tasks) == 5 and all(t.status.state == types_pb2.COMPLETE for t in tasks)

        wait_until(lambda: completed(1), 120, "5 completions")
        # Completed tasks are never restarted: still exactly one task per slot, each COMPLETE and left as is.
        tasks = cluster.control.tasks(service_id)
        assert sorted(t.slot for t in tasks) == [1, 2, 3, 4, 5]
        assert all(t.desired_state == types_pb2.RUNNING and t.status.container.exit_code == 0 for t in tasks)
        ls = cluster.ctl("service", "ls", check=True).stdout
        assert "replicated-job" in ls and "0/0 (5/5 completed)" in ls
        ps = cluster.ctl("service", "ps", "batch", check=True).stdout
        assert ps.count("Complete") == 5

        # --force starts a new iteration: the job runs again.
        cluster.ctl("service", "update", "batch", "--force", check=True)
        wait_until(lambda: completed(2), 120, "5 completions of the second iteration")
        assert all(t.desired_state == types_pb2.SHUTDOWN for t in job_tasks(cluster, service_id, 1))
        assert "(5/5 completed)" in cluster.ctl("service", "ls", check=True).stdout
    assert not violations, violations[:3]


def test_a_failing_job_task_is_retried_up_to_max_attempts(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "flaky-job", image, "--mode", "replicated-job", "--restart-max-attempts", "1",
        "--restart-delay", "1s", "--", "sh", "-c", "exit 3",
    )  # fmt: skip
    failed = wait_until(
        lambda: [t for t in cluster.control.tasks(service_id) if t.status.state == types_pb2.FAILED] or None,
        60,
        "a failure",
    )
    assert failed[0].status.container.exit_code == 3
    # One retry, then the failure stands: two failed tasks, and the orchestrator makes no more.
    wait_until(
        lambda: (
            len(cluster.control.tasks(service_id)) == 2
            and all(t.status.state == types_pb2.FAILED for t in cluster.control.tasks(service_id))
        ),
        60,
        "the retry to fail too",
    )
    assert "(0/1 completed)" in cluster.ctl("service", "ls", check=True).stdout


def test_global_job_completes_once_per_node_including_new_ones(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "setup", image, "--mode", "global-job", "--", "sh", "-c", "echo set up")

    def completions(version: int) -> set[str]:
        return {t.node_id for t in job_tasks(cluster, service_id, version) if t.status.state == types_pb2.COMPLETE}

    ids = {cluster.node_id(n) for n in ("n1", "n2", "n3")}
    wait_until(lambda: completions(1) == ids, 90, "one completion per node")
    cluster.start_agent("n4")
    cluster.wait_ready("n4")
    ids.add(cluster.node_id("n4"))
    wait_until(lambda: completions(1) == ids, 90, "a completion on the new node too")
    assert len(job_tasks(cluster, service_id, 1)) == 4
    assert "(4/4 completed)" in cluster.ctl("service", "ls", check=True).stdout
    cluster.ctl("service", "update", "setup", "--force", check=True)
    wait_until(lambda: completions(2) == ids, 90, "every node to run the job again")
