"""Helpers for the rollout tests: sampling `docker ps` while something happens, and reading tasks' recorded times.

`Sampler` runs in a thread for the length of a `with` block and records
every reading of a service's running containers, so that a test can assert
an invariant (never more than N running, never fewer) over all of them,
not only at the end.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterable

from shoal import units
from shoal.v1 import objects_pb2, types_pb2
from tests.integration.harness import Cluster, docker, wait_until

SLEEP = ["--", "sleep", "100000"]
#: A container that exits as soon as it is asked to stop (its shell handles SIGTERM between one-second naps).
QUICK_STOP = ["--", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
#: A container that ignores SIGTERM, so that it lingers for its whole stop grace period after a stop.
SLOW_STOP = ["--", "sh", "-c", "trap '' TERM; while true; do sleep 1; done"]


class Sampler:
    """Readings of a service's running containers, taken as fast as `docker ps` answers."""

    def __init__(self, cluster: Cluster, service: str) -> None:
        self.cluster = cluster
        self.service = service
        self.readings: list[list[dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{service}", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        wait_until(lambda: self.readings, 30, "a first reading")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        nodes = {self.cluster.node_id(n): n for n in self.cluster.agents}
        while not self._stop.is_set():
            self.readings.append(running(self.service, nodes))

    @property
    def counts(self) -> list[int]:
        return [len(r) for r in self.readings]

    def slot_overlaps(self) -> int:
        """The most containers of one slot seen running at once."""
        return max(
            (max(collections.Counter(c["name"].split(".")[1] for c in r).values(), default=0) for r in self.readings),
            default=0,
        )

    def per_node(self) -> list[collections.Counter[str]]:
        return [collections.Counter(c["node"] for c in r) for r in self.readings]


def running(service: str, nodes: dict[str, str]) -> list[dict[str, str]]:
    """The service's running containers on `nodes` (ID -> name), read in one `docker ps` (one instant)."""
    out = []
    args = ["ps", "--no-trunc", "--filter", f"label=shoal.service.name={service}", "--format", "{{json .}}"]
    for line in docker(*args).stdout.splitlines():
        doc = json.loads(line)
        labels = dict(kv.split("=", 1) for kv in doc.get("Labels", "").split(",") if "=" in kv)
        node_id = labels.get("shoal.node.id", "")
        if node_id in nodes and doc.get("State") == "running":
            out.append({"id": doc["ID"], "name": doc["Names"], "node": nodes[node_id], "task": labels["shoal.task.id"]})
    return out


def ran_at(task: objects_pb2.Task) -> float:
    """When a task reached RUNNING, as its node recorded it."""
    return units.from_timestamp(task.status.started_at)


def ended_at(task: objects_pb2.Task) -> float:
    """When a finished task's status last changed (its SHUTDOWN, FAILED, ...)."""
    return units.from_timestamp(task.status.timestamp)


def created_at(task: objects_pb2.Task) -> float:
    return units.from_timestamp(task.meta.created_at)


def by_slot(tasks: Iterable[objects_pb2.Task]) -> dict[int, list[objects_pb2.Task]]:
    """Tasks per slot, oldest first."""
    out: dict[int, list[objects_pb2.Task]] = collections.defaultdict(list)
    for t in sorted(tasks, key=created_at):
        out[t.slot].append(t)
    return out


def update_state(cluster: Cluster, ref: str) -> int:
    return cluster.control.service(ref).update_status.state


def wait_state(cluster: Cluster, ref: str, state: int, timeout: float = 120) -> objects_pb2.Service:
    """Wait for the service's update status to reach `state`; the service."""
    name = types_pb2.UpdateStatus.State.Name(state)
    return wait_until(
        lambda: (svc := cluster.control.service(ref)).update_status.state == state and svc,
        timeout,
        f"{ref} to be {name}",
    )


def stays(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Assert that `predicate` holds at every look for `seconds` (for things that must not happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.2)
