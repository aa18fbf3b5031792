"""What the dispatcher sends each node of its networks: peers, services, running tasks; and removals."""

from __future__ import annotations

from shoal import states
from shoal.controller.dispatcher.networks import NetworkDirectory
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2, types_pb2
from tests.unit.controller.test_controller_networks import cache_of, network, service_on


def node(nid: str, underlay: str) -> objects_pb2.Node:
    n = objects_pb2.Node(id=nid, name=nid)
    n.description.data_path_addr = underlay
    return n


def running(tid: str, node_id: str, addr: str) -> objects_pb2.Task:
    t = objects_pb2.Task(id=tid, service_id="s1", service_name="s1", slot=int(tid[1:]), node_id=node_id)
    t.desired_state = states.RUNNING  # type: ignore[assignment]
    t.status.state = states.RUNNING  # type: ignore[assignment]
    t.networks.add(network_id="a", addresses=[f"{addr}/24"])
    return t


def setup() -> tuple[NetworkDirectory, object]:
    net = network("a", "front", "10.0.1.0/24", vni=4096)
    net.node_addresses.update({"n1": "10.0.1.10/24", "n2": "10.0.1.11/24"})
    svc = service_on("a")
    svc.spec.task.networks[0].aliases.append("www")
    svc.endpoint.virtual_ips.add(network_id="a", addr="10.0.1.2/24")
    cache = cache_of(net, svc, node("n1", "10.77.0.101"), node("n2", "10.77.0.102"), running("t1", "n1", "10.0.1.5"))
    return NetworkDirectory(cache), cache


def test_a_node_gets_its_address_its_peers_and_the_services_with_running_tasks() -> None:
    directory, _ = setup()
    [item] = directory.for_node("n1")
    assert (item.address, item.vni, item.subnet) == ("10.0.1.10/24", 4096, "10.0.1.0/24")
    assert [p.underlay for p in item.peers] == ["10.77.0.102"]
    [svc] = item.services
    assert (svc.name, list(svc.aliases), svc.vip) == ("s1", ["www"], "10.0.1.2")
    assert [(t.address, t.name) for t in svc.tasks] == [("10.0.1.5", "s1.1.t1")]
    assert directory.for_node("n3") == []


def test_a_task_that_stops_running_is_sent_to_every_node_on_the_network() -> None:
    directory, cache = setup()
    old = cache.tasks["t1"]  # type: ignore[attr-defined]
    new = objects_pb2.Task()
    new.CopyFrom(old)
    new.status.state = states.FAILED  # type: ignore[assignment]
    directory.change(Change(Kind.TASK, old, new))
    cache._set(Kind.TASK, "t1", new)  # type: ignore[attr-defined]
    out = directory.flush()
    assert sorted(n for n, _, _ in out) == ["n1", "n2"]
    assert all(item is not None and not item.services[0].tasks for _, _, item in out)
    # A status report that changes nothing the items show sends nothing.
    again = objects_pb2.Task()
    again.CopyFrom(new)
    again.status.message = "later"
    directory.change(Change(Kind.TASK, new, again))
    assert directory.flush() == []


def test_a_node_that_leaves_the_network_gets_a_removal() -> None:
    directory, cache = setup()
    directory.for_node("n2")
    old = cache.networks["a"]  # type: ignore[attr-defined]
    new = objects_pb2.Network()
    new.CopyFrom(old)
    del new.node_addresses["n2"]
    cache._set(Kind.NETWORK, "a", new)  # type: ignore[attr-defined]
    directory.change(Change(Kind.NETWORK, old, new))
    out = {n: item for n, _, item in directory.flush()}
    assert out["n2"] is None and out["n1"] is not None and not out["n1"].peers


def test_status_writes_of_a_service_send_nothing() -> None:
    directory, cache = setup()
    old = cache.services["s1"]  # type: ignore[attr-defined]
    new = objects_pb2.Service()
    new.CopyFrom(old)
    new.update_status.state = types_pb2.UpdateStatus.COMPLETED
    directory.change(Change(Kind.SERVICE, old, new))
    assert directory.flush() == []
