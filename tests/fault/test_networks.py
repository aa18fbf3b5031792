"""Overlay networks on a lab of real hosts (network namespaces, a dockerd each): reaching services across hosts by
name, virtual IP and `tasks.NAME`, DNS round robin, the routing mesh, isolation, internal networks, addresses
kept across a controller failover, and nothing left behind.

One lab for the module (2 controllers, 1 etcd member, 3 nodes); each test makes and removes its own services.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from shoal.lab import Lab, LabSpec
from shoal.v1 import control_pb2
from tests.fault.faultlab import FaultLab
from tests.integration.harness import wait_until

WEB = ["--", "httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    root = pathlib.Path(tmp_path_factory.mktemp("netlab"))
    spec = LabSpec(
        root, nodes=3, controllers=2, etcd_members=1, prefix="sfn", subnet="10.91.0.0/24", heartbeat_period="1s"
    )
    lab = Lab(spec)
    try:
        lab.up()
        yield FaultLab(lab)
    finally:
        lab.down()


# ---- helpers ----------------------------------------------------------------------


def create(flab: FaultLab, name: str, *args: str, replicas: int = 1, command: list[str] = WEB) -> str:
    return flab.create(name, replicas, *args, command=tuple(command[1:]))


def running(flab: FaultLab, service_id: str, n: int) -> list[Any]:
    return wait_until(
        lambda: (lambda r: r if len(r) == n else None)(flab.running_tasks(service_id)), 90, f"{n} running tasks"
    )


def node_of(flab: FaultLab, task: Any) -> Any:
    nodes = {n.id: n.name for n in flab.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes}
    return flab.spec.host(nodes[task.node_id])


def container(flab: FaultLab, task: Any) -> tuple[Any, str]:
    host = node_of(flab, task)
    cid = flab.lab.docker(host, "ps", "-q", "--filter", f"label=shoal.task.id={task.id}").stdout.strip()
    assert cid, f"no container of task {task.id} on {host.name}"
    return host, cid


def sh(flab: FaultLab, task: Any, script: str, timeout: float = 20) -> str:
    host, cid = container(flab, task)
    return flab.lab.docker(host, "exec", cid, "sh", "-c", script, check=False, timeout=timeout).stdout


def lookup(flab: FaultLab, task: Any, name: str) -> list[str]:
    """The addresses `name` resolves to in the task's container (sorted; [] when it does not resolve)."""
    out = sh(flab, task, f"nslookup {name} 2>/dev/null")
    answers = out.split("Name:", 1)[1] if "Name:" in out else ""
    return sorted(re.findall(r"Address:\s*([0-9.]+)\s*$", answers, re.M))


def http_hostname(flab: FaultLab, task: Any, host: str, timeout: int = 3) -> str:
    """The hostname the web server at `host` answers (its container's /etc/hostname), or "" if it cannot be reached."""
    out = sh(flab, task, f'printf "GET /hostname HTTP/1.0\\r\\n\\r\\n" | nc -w {timeout} {host} 80')
    return out.strip().splitlines()[-1] if "200 OK" in out else ""


def addresses(task: Any) -> list[str]:
    return [a.addresses[0].split("/")[0] for a in task.networks]


def vip(flab: FaultLab, service_id: str) -> str:
    svc = flab.lab.control().GetService(control_pb2.GetServiceRequest(ref=service_id), timeout=3).service
    return svc.endpoint.virtual_ips[0].addr.split("/")[0]


def hostnames(flab: FaultLab, service_id: str) -> dict[str, str]:
    """Container hostname (its short ID) -> task ID, for the service's running tasks."""
    return {container(flab, t)[1][:12]: t.id for t in flab.running_tasks(service_id)}


def curl(source_netns: str | None, url: str) -> str:
    prefix = ["nsenter", f"--net=/run/netns/{source_netns}"] if source_netns else []
    return subprocess.run(
        [*prefix, "curl", "-s", "--max-time", "3", url], capture_output=True, text=True, timeout=10
    ).stdout.strip()


def remove(flab: FaultLab, *services: str) -> None:
    for s in services:
        flab.ctl("service", "rm", s, check=False)


def leftovers(flab: FaultLab) -> dict[str, list[str]]:
    """What the agents made that is still on each node: overlay links, Docker networks, nft tables, DOCKER-USER rule."""
    found: dict[str, list[str]] = {}
    for host in flab.spec.node_hosts:
        ns = ["nsenter", f"--net=/run/netns/{host.netns}"]
        links = subprocess.run([*ns, "ip", "-j", "link"], capture_output=True, text=True).stdout
        items = [link["ifname"] for link in json.loads(links) if re.fullmatch(r"sh[bv]\d+", link["ifname"])]
        items += flab.lab.docker(host, "network", "ls", "-q", "--filter", "label=shoal.network.id").stdout.split()
        tables = subprocess.run([*ns, "nft", "list", "tables"], capture_output=True, text=True).stdout
        items += [line for line in tables.splitlines() if line.endswith(" shoal")]
        rules = subprocess.run([*ns, "iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
        items += [line for line in rules.splitlines() if "shoal" in line]
        if items:
            found[host.name] = items
    return found


# ---- scenarios ------------------------------------------------------------------


def test_services_reach_each_other_across_hosts_by_name_vip_and_tasks(net: FaultLab) -> None:
    net.ctl("network", "create", "app")
    db = create(net, "db", "--network", "app,alias=database", "--constraint", "node.hostname!=lab-1", replicas=2)
    rr = create(
        net, "rr", "--network", "app", "--endpoint-mode", "dnsrr", "--constraint", "node.hostname!=lab-1", replicas=2
    )
    client = create(
        net, "client", "--network", "app", "--constraint", "node.hostname==lab-1", command=["--", "sleep", "100000"]
    )
    backends = running(net, db, 2)
    rr_tasks = running(net, rr, 2)
    [me] = running(net, client, 1)
    the_vip = vip(net, db)
    assert lookup(net, me, "db") == [the_vip] == lookup(net, me, "database") == lookup(net, me, "db.app")
    assert lookup(net, me, "tasks.db") == sorted(a for t in backends for a in addresses(t))
    # dnsrr: the name is the running tasks, no virtual IP.
    assert lookup(net, me, "rr") == sorted(a for t in rr_tasks for a in addresses(t))
    assert (
        not net.lab.control().GetService(control_pb2.GetServiceRequest(ref=rr), timeout=3).service.endpoint.virtual_ips
    )
    # By name (the VIP), by VIP and by a task's own address, from lab-1 to tasks on lab-2 and lab-3.
    names = hostnames(net, db)
    seen = {http_hostname(net, me, "db") for _ in range(12)}
    assert seen == set(names), f"the VIP balanced over {seen}, not every task {set(names)}"
    assert http_hostname(net, me, the_vip) in names
    for t in backends:
        assert http_hostname(net, me, addresses(t)[0]) in names
    # A node that runs no task of a network has nothing of it (lab-1 runs only the client, which is on "app").
    remove(net, "rr")

    # Scaling changes the names' answers and the VIP's backends.
    net.ctl("service", "scale", "db=3")
    wait_until(lambda: len(lookup(net, me, "tasks.db")) == 3, 60, "tasks.db to answer three tasks")
    wait_until(
        lambda: len({http_hostname(net, me, "db") for _ in range(15)} & set(hostnames(net, db))) == 3,
        60,
        "the VIP to reach the third task",
    )
    net.ctl("service", "scale", "db=1")
    [left] = running(net, db, 1)
    wait_until(lambda: lookup(net, me, "tasks.db") == addresses(left), 60, "tasks.db to answer the one task left")

    # kill -9 of a task's container: it leaves DNS and the VIP, and its replacement joins.
    host, cid = container(net, left)
    net.lab.docker(host, "kill", "-s", "KILL", cid)
    wait_until(lambda: addresses(left)[0] not in lookup(net, me, "tasks.db"), 30, "the killed task to leave DNS")
    [new] = running(net, db, 1)
    assert new.id != left.id
    wait_until(lambda: lookup(net, me, "tasks.db") == addresses(new), 60, "the replacement to answer by name")
    wait_until(lambda: http_hostname(net, me, "db") == container(net, new)[1][:12], 30, "the VIP to reach it")
    remove(net, "db", "client")
    wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")
    net.ctl("network", "rm", "app")


def test_the_routing_mesh_answers_on_every_node(net: FaultLab) -> None:
    web = create(net, "web", "--publish", "8080:80", "--constraint", "node.hostname==lab-2")
    [task] = running(net, web, 1)
    expected = container(net, task)[1][:12]
    for host in net.spec.node_hosts:
        url = f"http://{host.ip}:8080/hostname"
        # From this machine, and from another node, whether or not the node runs the task.
        assert wait_until(lambda url=url: curl(None, url) == expected, 30, f"{url} from this machine")
        other = next(h for h in net.spec.node_hosts if h is not host)
        assert curl(other.netns, url) == expected
    remove(net, "web")
    wait_until(lambda: curl(None, f"http://{net.spec.node_hosts[0].ip}:8080/hostname") == "", 30, "the port to close")
    wait_until(lambda: not leftovers(net), 60, "every node to remove the mesh")


def test_networks_are_isolated_and_internal_ones_have_no_way_out(net: FaultLab) -> None:
    net.ctl("network", "create", "one")
    net.ctl("network", "create", "two")
    net.ctl("network", "create", "closed", "--internal")
    a = create(net, "a", "--network", "one", "--constraint", "node.hostname==lab-1")
    b = create(net, "b", "--network", "two", "--constraint", "node.hostname==lab-2", command=["--", "sleep", "100000"])
    c = create(
        net, "c", "--network", "closed", "--constraint", "node.hostname==lab-1", command=["--", "sleep", "100000"]
    )
    [ta], [tb], [tc] = running(net, a, 1), running(net, b, 1), running(net, c, 1)
    # Only the node that runs a task of a network builds it.
    for host in net.spec.node_hosts:
        links = subprocess.run(
            ["nsenter", f"--net=/run/netns/{host.netns}", "ip", "-br", "link"], capture_output=True, text=True
        ).stdout
        assert (f"shb{vni(net, 'two')}" in links) == (host.name == "lab-2"), host.name
    assert lookup(net, tb, "a") == []
    assert http_hostname(net, tb, addresses(ta)[0]) == ""
    assert http_hostname(net, tb, vip(net, a)) == ""
    # The registry on this machine's lab address: reachable from a network with a way out, not from an internal one.
    registry = net.spec.registry
    probe = f'printf "GET /v2/ HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {registry.replace(":", " ")}'
    assert "200 OK" in sh(net, tb, probe)
    assert "200 OK" not in sh(net, tc, probe)
    remove(net, "a", "b", "c")
    wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")
    net.ctl("network", "rm", "one", "two", "closed")


def test_a_controller_failover_and_restart_keep_every_address(net: FaultLab) -> None:
    net.ctl("network", "create", "keep")
    svc = create(net, "keep", "--network", "keep", replicas=3, command=["--", "sleep", "100000"])
    tasks = running(net, svc, 3)
    before = {t.id: addresses(t) for t in tasks}
    the_vip = vip(net, svc)
    leader = net.leader()
    net.signal(leader, 9)
    wait_until(lambda: net.leader() != leader, 60, "another controller to lead")
    net.lab.procs.spawn(leader, net.lab.controller_argv(net.spec.host(leader)))
    # A new service on the same network after the failover gets addresses no task or VIP holds.
    other = create(net, "other", "--network", "keep", replicas=2, command=["--", "sleep", "100000"])
    new = running(net, other, 2)
    after = {t.id: addresses(t) for t in running(net, svc, 3)}
    assert after == before and vip(net, svc) == the_vip
    held = {a for a in (*sum(before.values(), []), the_vip)}
    fresh = {a for t in new for a in addresses(t)} | {vip(net, other)}
    assert not held & fresh and len(fresh) == 3
    remove(net, "keep", "other")
    wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")
    net.ctl("network", "rm", "keep")


def test_an_agent_restarted_after_a_crash_rebuilds_what_is_missing(net: FaultLab) -> None:
    net.ctl("network", "create", "heal")
    svc = create(
        net, "heal", "--network", "heal", "--constraint", "node.hostname==lab-3", command=["--", "sleep", "100000"]
    )
    probe = create(
        net, "probe", "--network", "heal", "--constraint", "node.hostname==lab-2", command=["--", "sleep", "100000"]
    )
    [task], [p] = running(net, svc, 1), running(net, probe, 1)
    host = net.spec.host("lab-3")
    net.signal("lab-3", 9)
    # While the agent is down, its VXLAN device goes: the task cannot be reached.
    subprocess.run(
        ["nsenter", f"--net=/run/netns/{host.netns}", "ip", "link", "del", "shv" + vni(net, "heal")], check=True
    )
    net.lab.start_agent(host)
    wait_until(lambda: lookup(net, p, "heal") == [vip(net, svc)], 60, "the name to answer")
    wait_until(
        lambda: sh(net, p, f"ping -c1 -W1 {addresses(task)[0]} >/dev/null && echo ok").strip() == "ok",
        60,
        "the task on lab-3 to be reachable again",
    )
    assert [t.id for t in net.running_tasks(svc)] == [task.id]
    remove(net, "heal", "probe")
    wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")
    net.ctl("network", "rm", "heal")


def vni(flab: FaultLab, name: str) -> str:
    network = flab.lab.control().GetNetwork(control_pb2.GetNetworkRequest(ref=name), timeout=3).network
    return str(network.vni)


def test_nothing_is_left_and_bad_removals_are_refused(net: FaultLab) -> None:
    net.ctl("network", "create", "last")
    svc = create(net, "last", "--network", "last", command=["--", "sleep", "100000"])
    running(net, svc, 1)
    refused = net.ctl("network", "rm", "last", check=False)
    assert refused.returncode == 1 and "in use by service(s) last" in refused.stderr
    remove(net, "last")
    net.ctl("network", "rm", "last")
    wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")


def test_names_outside_the_cluster_go_to_the_tasks_upstream_servers(net: FaultLab) -> None:
    from dnslib import QTYPE, RR
    from dnslib.server import BaseResolver, DNSServer

    class Outside(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply()
            if str(request.q.qname).rstrip(".") == "outside.test" and request.q.qtype == QTYPE.A:
                reply.add_answer(*RR.fromZone("outside.test. 0 A 192.0.2.10"))
            return reply

    # An upstream resolver on this machine's address on the lab bridge (the lab's own network).
    upstream = DNSServer(Outside(), address=net.spec.gateway, port=53)
    upstream.start_thread()
    try:
        net.ctl("network", "create", "names")
        svc = create(net, "asker", "--network", "names", "--dns", net.spec.gateway, command=["--", "sleep", "100000"])
        [task] = running(net, svc, 1)
        assert lookup(net, task, "outside.test") == ["192.0.2.10"]
        assert lookup(net, task, "tasks.nothing") == []
        assert lookup(net, task, "asker") == [vip(net, svc)]
        remove(net, "asker")
        wait_until(lambda: not leftovers(net), 60, "every node to remove what it built")
        net.ctl("network", "rm", "names")
    finally:
        upstream.stop()
