"""Faults of the control plane: the leader killed or paused, etcd members lost, everything restarted,
and a lost reply to a create."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time

import grpc
import pytest

from shoal import remotes, tls
from shoal.ctl import client as ctl_client
from shoal.lab import net
from shoal.v1 import control_pb2, control_pb2_grpc, types_pb2
from tests.fault.faultlab import FaultLab, Sampler
from tests.integration import harness
from tests.integration.harness import wait_until

REPLICAS = 4


def _service(flab: FaultLab, name: str) -> str:
    service_id = flab.create(name, REPLICAS)
    flab.wait_converged(service_id, name, REPLICAS, timeout=120)
    return service_id


def _no_node_down(sampler: Sampler) -> None:
    assert all(types_pb2.NodeStatus.DOWN not in states for states in sampler.states_seen().values())


def test_leader_killed(flab: FaultLab) -> None:
    _service(flab, "steady")
    before = flab.running_ids("steady")
    old = flab.leader()
    with Sampler(flab, "steady") as sampler:
        start = time.monotonic()
        flab.signal(old, signal.SIGKILL)
        # The first write a new leader accepts.
        wait_until(
            lambda: (
                flab.ctl(
                    "--timeout", "1", "service", "update", "--detach", "steady", "--label", "poked=yes", check=False
                ).returncode
                == 0
            ),
            30,
            "a write to be accepted",
            interval=0.05,
        )
        failover = time.monotonic() - start
        assert flab.leader() != old
        flab.lab.wait_ready([n.name for n in flab.spec.node_hosts])
    print(f"leader failover: first write accepted {failover:.2f}s after kill -9")
    assert failover < 10
    _no_node_down(sampler)
    assert sampler.containers_seen() == before  # no container restarted or added
    assert flab.running_ids("steady") == before
    flab.lab.procs.restart(old)


def test_paused_leader_cannot_write_and_steps_down(flab: FaultLab) -> None:
    service_id = _service(flab, "fenced")
    old = flab.leader()
    flab.signal(old, signal.SIGSTOP)
    try:
        # Past the 3 s lease: another controller takes over and accepts writes.
        wait_until(lambda: flab.leader() != old, 30, "a new leader")
        flab.ctl("service", "scale", "fenced=6")
        flab.wait_converged(service_id, "fenced", 6)
    finally:
        flab.signal(old, signal.SIGCONT)
    log = flab.spec.root / "logs" / f"{old}.log"
    wait_until(lambda: "stepped down" in log.read_text(), 30, "the old leader to step down")
    # Whatever it still tried to write was fenced off: the new leader's state stands, exactly.
    flab.wait_converged(service_id, "fenced", 6)
    assert flab.leader() != old
    text = log.read_text()
    late = text[text.rindex("became leader") :] if "became leader" in text else text
    assert "stepped down" in late
    slots = [t.slot for t in flab.running_tasks(service_id)]
    assert sorted(slots) == sorted(set(slots))  # one running task per slot


def test_etcd_members_lost_and_restored(flab: FaultLab) -> None:
    service_id = _service(flab, "durable")
    before = flab.running_ids("durable")
    with Sampler(flab, "durable") as sampler:
        flab.signal("etcd-3", signal.SIGKILL)
        # One member down: everything keeps working.
        flab.ctl("service", "scale", "durable=5")
        flab.wait_converged(service_id, "durable", 5)
        running = flab.running_ids("durable")
        flab.signal("etcd-2", signal.SIGKILL)
        # Two down: no quorum. The API says UNAVAILABLE, quickly; running containers are left alone.
        start = time.monotonic()
        # Every controller answers, and what it answers is UNAVAILABLE.
        wait_until(lambda: _codes(flab) == {grpc.StatusCode.UNAVAILABLE}, 30, "the API to answer UNAVAILABLE")
        result = flab.ctl("--timeout", "10", "service", "ls", check=False)
        assert result.returncode != 0
        took = time.monotonic() - start
        assert took < 30
        assert flab.running_ids("durable") == running
        flab.lab.procs.restart("etcd-2")
        flab.lab.procs.restart("etcd-3")
        wait_until(flab.lab.etcd_healthy, 60, "etcd quorum back")
        flab.lab.wait_ready([n.name for n in flab.spec.node_hosts])
        flab.wait_converged(service_id, "durable", 5)
    assert [
        s.spec.name for s in flab.lab.control().ListServices(control_pb2.ListServicesRequest(), timeout=5).services
    ] == ["durable"]
    assert before <= sampler.containers_seen()
    assert flab.running_ids("durable") == running


def _codes(flab: FaultLab) -> set[grpc.StatusCode]:
    """What each controller answers to a read, asked directly (no redirects followed)."""
    bundle = tls.Bundle.load(flab.lab.admin_dir)
    codes = set()
    for addr in flab.spec.controller_addrs:
        with harness.sync_channel(addr, bundle) as channel:
            try:
                control_pb2_grpc.ControlStub(channel).ListServices(control_pb2.ListServicesRequest(), timeout=3)
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.add(exc.code())
    return codes


def test_everything_stopped_and_started_again(flab: FaultLab) -> None:
    service_id = _service(flab, "phoenix")
    before = flab.running_ids("phoenix")
    tasks_before = sorted(t.id for t in flab.running_tasks(service_id))
    daemons = [
        *(h.name for h in flab.spec.node_hosts),
        *(h.name for h in flab.spec.controller_hosts),
        *(h.name for h in flab.spec.etcd),
    ]
    for name in daemons:  # agents, controllers, etcd: everything but the container engines
        flab.lab.procs.stop(name)
    for name in reversed(daemons):
        flab.lab.procs.restart(name)
    wait_until(flab.lab.etcd_healthy, 60, "etcd back")
    flab.lab.wait_ready([n.name for n in flab.spec.node_hosts])
    flab.wait_converged(service_id, "phoenix", REPLICAS)
    assert flab.running_ids("phoenix") == before
    assert sorted(t.id for t in flab.running_tasks(service_id)) == tasks_before
    assert len({cid for per in flab.containers("phoenix", running=False).values() for cid in per}) == REPLICAS


def test_a_lost_reply_to_create_makes_one_service(flab: FaultLab) -> None:
    leader = flab.spec.host(flab.leader())
    # Replies from the leader to this machine are dropped: the request reaches it, the answer does not.
    rule = [
        "INPUT",
        "-s",
        leader.ip,
        "-p",
        "tcp",
        "--sport",
        "4240",
        "-j",
        "DROP",
        "-m",
        "comment",
        "--comment",
        "sft-lab",
    ]
    bundle = tls.Bundle.load(flab.lab.admin_dir)
    spec = types_pb2.ServiceSpec(name="once")
    spec.task.container.image = flab.spec.image
    spec.task.container.command.extend(["sleep", "100000"])
    connected, armed = threading.Event(), threading.Event()
    result: dict[str, object] = {}
    deadline = 3.0

    async def create() -> None:
        hosts = remotes.Remotes([leader.addr(4240), *(a for a in flab.spec.controller_addrs if a != leader.addr(4240))])
        async with ctl_client.ControlClient(hosts, timeout=deadline, bundle=bundle) as control:
            await control.get_cluster_info()  # the connection to the leader is up before the fault
            connected.set()
            await asyncio.to_thread(armed.wait, 30)
            # swarmctl's own client and call: one request ID, asked again when no answer comes.
            try:
                reply = await control.create_service(spec, request_id="lost-reply-1")
                result["id"] = reply.service.id
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                result["error"] = exc

    worker = threading.Thread(target=lambda: asyncio.run(create()))
    worker.start()
    assert connected.wait(30)
    net.run("iptables", "-I", *rule)
    try:
        armed.set()
        start = time.monotonic()
        # The create lands although its reply is lost ...
        wait_until(lambda: flab.etcd_get(b"/shoal/v1/names/services/once"), 30, "the service to be written")
        # ... and the fault lasts past the client's deadline, so that the client really asks again.
        time.sleep(max(0.0, start + deadline + 0.5 - time.monotonic()))
    finally:
        subprocess.run(["iptables", "-D", *rule], check=False)
    worker.join(60)
    services = [
        s
        for s in flab.lab.control().ListServices(control_pb2.ListServicesRequest(), timeout=5).services
        if s.spec.name == "once"
    ]
    assert len(services) == 1
    assert result.get("id") == services[0].id, result.get("error")


pytestmark = pytest.mark.fault
