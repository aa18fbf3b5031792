"""Faults of node hosts: a killed agent, a host cut off for longer and for shorter than the grace."""

from __future__ import annotations

import signal
import time

from shoal.v1 import types_pb2
from tests.fault.faultlab import FaultLab, Sampler
from tests.integration.harness import wait_until

REPLICAS = 6
#: The lab's heartbeat period is 1 s: a node is DOWN after 3 s without heartbeats.
GRACE = 3.0


def _spread(flab: FaultLab, service: str) -> str:
    service_id = flab.create(service, REPLICAS)
    flab.wait_converged(service_id, service, REPLICAS, timeout=120)
    return service_id


def test_killed_agent(flab: FaultLab) -> None:
    service_id = _spread(flab, "web")
    stale = set(flab.containers("web")["lab-1"])
    assert stale
    with Sampler(flab, "web") as sampler:
        flab.signal("lab-1", signal.SIGKILL)
        wait_until(lambda: flab.node_states()["lab-1"] == types_pb2.NodeStatus.DOWN, 30, "lab-1 DOWN")

        wait_until(
            lambda: len(flab.running_tasks(service_id)) == REPLICAS and flab.nodes_of(service_id) == {"lab-2", "lab-3"},
            60,
            "replacements on lab-2 and lab-3",
        )
        flab.lab.start_agent(flab.spec.host("lab-1"))
        flab.lab.wait_ready(["lab-1"])
        took = flab.wait_converged(service_id, "web", REPLICAS)
    # The healthy hosts never ran more than the replicas; the stale containers are gone at rest.
    assert sampler.max_running(lambda n: n != "lab-1") <= REPLICAS
    assert not stale & flab.running_ids("web")
    assert took < 60


def test_host_cut_off_longer_than_the_grace(flab: FaultLab) -> None:
    service_id = _spread(flab, "api")
    stale = set(flab.containers("api")["lab-2"])
    with Sampler(flab, "api") as sampler:
        flab.lab.cut("lab-2")
        try:
            wait_until(lambda: flab.node_states()["lab-2"] == types_pb2.NodeStatus.DOWN, 30, "lab-2 DOWN")
            wait_until(
                lambda: len(flab.running_tasks(service_id)) == REPLICAS and "lab-2" not in flab.nodes_of(service_id),
                60,
                "replacements elsewhere",
            )
        finally:
            flab.lab.heal("lab-2")
        flab.lab.wait_ready(["lab-2"])
        flab.wait_converged(service_id, "api", REPLICAS)
    assert sampler.max_running(lambda n: n != "lab-2") <= REPLICAS
    assert not stale & flab.running_ids("api")


def test_host_cut_off_shorter_than_the_grace(flab: FaultLab) -> None:
    service_id = _spread(flab, "calm")
    tasks_before = sorted(t.id for t in flab.running_tasks(service_id))
    containers_before = flab.running_ids("calm")
    with Sampler(flab, "calm") as sampler:
        flab.lab.cut("lab-3")
        time.sleep(GRACE / 3)  # the fault itself: a short blip, well inside the grace
        flab.lab.heal("lab-3")
        # Give the dispatcher more than a grace period to (wrongly) declare it DOWN.
        deadline = time.monotonic() + 2 * GRACE
        while time.monotonic() < deadline:
            assert flab.node_states()["lab-3"] == types_pb2.NodeStatus.READY
            time.sleep(0.2)
    assert all(types_pb2.NodeStatus.DOWN not in states for states in sampler.states_seen().values())
    assert sorted(t.id for t in flab.running_tasks(service_id)) == tasks_before
    assert sampler.containers_seen() == containers_before
    assert flab.running_ids("calm") == containers_before
