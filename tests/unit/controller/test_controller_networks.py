"""Networks on the controller: address management, spec validation, mesh ports, and the allocator loop's passes."""

from __future__ import annotations

import ipaddress

import pytest

from shoal import errors, states
from shoal.controller import ipam, networking
from shoal.controller.allocator.allocator import Allocator
from shoal.controller.api import networks as api
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.keys import Keys, Kind, kind_of
from shoal.v1 import objects_pb2, types_pb2

Net = ipaddress.IPv4Network


# ---- ipam -------------------------------------------------------------------------


def test_a_subnet_from_the_pool_skips_every_taken_one() -> None:
    pools = ipam.Pools((Net("10.0.0.0/16"),), 24)
    assert ipam.pick_subnet(pools, []) == Net("10.0.0.0/24")
    taken = [Net("10.0.0.0/24"), Net("10.0.1.128/25"), Net("10.0.2.0/23")]
    assert ipam.pick_subnet(pools, taken) == Net("10.0.4.0/24")


def test_an_exhausted_pool_is_refused() -> None:
    pools = ipam.Pools((Net("10.0.0.0/23"),), 24)
    with pytest.raises(errors.FailedPrecondition):
        ipam.pick_subnet(pools, [Net("10.0.0.0/23")])


def test_vnis_are_not_reused_at_once() -> None:
    assert ipam.pick_vni(set()) == ipam.VNI_FIRST
    assert ipam.pick_vni({4096, 4100}) == 4101
    assert ipam.pick_vni({ipam.VNI_LAST, 4096}) == 4097


def test_addresses_skip_the_reserved_and_come_back_last() -> None:
    pool = ipam.Addresses(Net("10.0.0.0/29"), reserved=[ipaddress.IPv4Address("10.0.0.1")])
    got = [pool.allocate() for _ in range(5)]
    assert [str(a) for a in got] == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    assert pool.allocate() is None
    pool.release(ipaddress.IPv4Address("10.0.0.3"))
    pool.release(ipaddress.IPv4Address("10.0.0.5"))
    # The cursor goes on past the last one given: the earliest freed comes back first after the wrap.
    assert str(pool.allocate()) == "10.0.0.3"


def test_pools_from_flags_are_checked() -> None:
    assert ipam.Pools.parse(["172.16.0.0/12"], 20).networks == (Net("172.16.0.0/12"),)
    with pytest.raises(ValueError, match="does not fit"):
        ipam.Pools.parse(["10.0.0.0/24"], 16)
    with pytest.raises(ValueError, match="invalid subnet"):
        ipam.Pools.parse(["10.0.0.1/24"], 24)


# ---- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (objects_pb2.NetworkSpec(name="Bad_Name"), "invalid"),
        (objects_pb2.NetworkSpec(name="ingress"), "reserved"),
        (objects_pb2.NetworkSpec(name="n", ingress=True), "made by the cluster"),
        (objects_pb2.NetworkSpec(name="n", driver="macvlan"), "unknown driver"),
        (objects_pb2.NetworkSpec(name="n", subnet="10.0.0.1/24"), "host bits"),
        (objects_pb2.NetworkSpec(name="n", subnet="10.0.0.0/30"), "between"),
        (objects_pb2.NetworkSpec(name="n", subnet="fd00::/64"), "IPv4"),
        (objects_pb2.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.1.1"), "not a host address"),
        (objects_pb2.NetworkSpec(name="n", gateway="10.0.0.1"), "needs a subnet"),
    ],
)
def test_bad_network_specs_are_refused(spec: objects_pb2.NetworkSpec, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        networking.check_network_spec(spec)


def _service_spec(**endpoint: object) -> types_pb2.ServiceSpec:
    spec = types_pb2.ServiceSpec(name="web")
    spec.task.container.image = "busybox"
    for key, value in endpoint.items():
        setattr(spec.endpoint, key, value)
    return spec


def test_bad_service_network_fields_are_refused() -> None:
    spec = _service_spec(mode=types_pb2.EndpointSpec.DNSRR)
    spec.endpoint.ports.add(published=80, target=80)
    with pytest.raises(errors.InvalidArgument, match="endpoint mode vip"):
        networking.check_service_networking("s", spec)
    spec = _service_spec()
    spec.task.networks.add(target="n", aliases=["-bad"])
    with pytest.raises(errors.InvalidArgument, match="not a DNS name"):
        networking.check_service_networking("s", spec)
    spec = _service_spec()
    spec.task.container.dns.nameservers.append("resolver")
    with pytest.raises(errors.InvalidArgument, match="not an IP address"):
        networking.check_service_networking("s", spec)
    spec = _service_spec()
    spec.endpoint.ports.add(published=80, target=80)
    spec.task.container.ports.add(published=80, target=8080)
    with pytest.raises(errors.InvalidArgument, match="published twice"):
        networking.check_service_networking("s", spec)


# ---- what needs the store: a real cache, loaded from objects --------------------------


def cache_of(*objs: object) -> Cache:
    cache = Cache(None, Keys("/t"))  # type: ignore[arg-type]
    seen: dict[Kind, dict[str, object]] = {kind: {} for kind in Kind}
    for obj in objs:
        obj.meta.version = 3  # type: ignore[attr-defined]
        seen[kind_of(obj)][obj.id] = obj  # type: ignore[arg-type, attr-defined]
    cache._load(10, seen)  # type: ignore[arg-type]
    return cache


def network(nid: str, name: str, subnet: str, **kw: object) -> objects_pb2.Network:
    net = Net(subnet)
    return objects_pb2.Network(
        id=nid, spec=objects_pb2.NetworkSpec(name=name), subnet=subnet, gateway=str(net.network_address + 1), **kw
    )


def test_a_subnet_that_overlaps_a_network_or_the_hosts_is_refused() -> None:
    node = objects_pb2.Node(id="n1", name="lab-1")
    node.description.data_path_addr = "10.77.0.101"
    node.description.data_path_subnet = "10.77.0.0/24"
    cache = cache_of(network("a", "front", "10.0.1.0/24", vni=4096), node)
    for subnet, clash in (("10.0.0.0/16", 'network "front"'), ("10.77.0.64/27", "the hosts' subnet")):
        with pytest.raises(errors.InvalidArgument, match=clash):
            api.new_network(cache, objects_pb2.NetworkSpec(name="x", subnet=subnet), ipam.Pools())
    made = api.new_network(cache, objects_pb2.NetworkSpec(name="x"), ipam.Pools())
    assert (made.subnet, made.gateway, made.vni) == ("10.0.0.0/24", "10.0.0.1", 4097)


def test_mesh_ports_are_one_service_each_and_get_a_number_when_given_none() -> None:
    other = objects_pb2.Service(id="s1", spec=_service_spec())
    other.spec.name = "other"
    other.spec.endpoint.ports.add(published=8080, target=80)
    other.spec.task.container.ports.add(published=9000, target=9000)
    cache = cache_of(other)
    spec = _service_spec()
    spec.endpoint.ports.add(published=8080, target=80)
    with pytest.raises(errors.AlreadyExists, match='already published by service "other"'):
        api.assign_ingress_ports(cache, spec)
    spec = _service_spec()
    spec.endpoint.ports.add(published=9000, target=80)
    with pytest.raises(errors.AlreadyExists, match="host mode"):
        api.assign_ingress_ports(cache, spec)
    spec = _service_spec()
    spec.endpoint.ports.add(target=80)
    api.assign_ingress_ports(cache, spec)
    assert spec.endpoint.ports[0].published == 30000
    # The service's own ports are not a conflict with itself (an update).
    api.assign_ingress_ports(cache, other.spec, "s1")


def test_service_networks_are_named_by_id_and_the_ingress_network_is_not_joined_by_name() -> None:
    ingress = network("i", "ingress", "10.0.0.0/24")
    ingress.spec.ingress = True
    cache = cache_of(network("a", "front", "10.0.1.0/24"), ingress)
    spec = _service_spec()
    spec.task.networks.add(target="front")
    api.resolve_service_networks(cache, spec)
    assert spec.task.networks[0].target == "a"
    for target, message in (("ingress", "publishing a port"), ("nope", "not found")):
        spec = _service_spec()
        spec.task.networks.add(target=target)
        with pytest.raises(errors.InvalidArgument, match=message):
            api.resolve_service_networks(cache, spec)
    spec = _service_spec()
    spec.task.networks.add(target="front")
    spec.task.networks.add(target="a")
    with pytest.raises(errors.InvalidArgument, match="attached twice"):
        api.resolve_service_networks(cache, spec)


# ---- the allocator ------------------------------------------------------------------


class LandingWriter:
    """Lands every write in the cache at once (or refuses those named in `refuse`), as etcd and the watch would."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.refuse: set[str] = set()
        self.writes: list[object] = []

    async def commit_each(self, ops: list[w.Op]) -> list[bool]:
        landed = []
        for op in ops:
            assert isinstance(op, w.Put)
            if op.obj.id in self.refuse:  # type: ignore[attr-defined]
                landed.append(False)
                continue
            self.writes.append(op.obj)
            op.obj.meta.version += 1  # type: ignore[attr-defined]
            change = self.cache._set(kind_of(op.obj), op.obj.id, op.obj)  # type: ignore[attr-defined]
            self.allocator._apply(change)
            landed.append(True)
        return landed


def allocator_for(cache: Cache) -> tuple[Allocator, LandingWriter]:
    writer = LandingWriter(cache)
    alloc = Allocator(cache=cache, writer=writer, settings=LoopSettings())  # type: ignore[arg-type]
    writer.allocator = alloc  # type: ignore[attr-defined]
    from shoal.controller.allocator.view import View

    alloc._view = View.build(cache)
    alloc._services = set(cache.services)
    alloc._tasks = {t.id for t in cache.tasks.values() if t.status.state == states.NEW}
    alloc._networks = set(cache.networks)
    return alloc, writer


def service_on(nid: str, sid: str = "s1") -> objects_pb2.Service:
    s = objects_pb2.Service(id=sid, spec=_service_spec())
    s.spec.name = sid
    s.spec.task.networks.add(target=nid)
    return s


def new_task(tid: str, sid: str = "s1", node: str = "") -> objects_pb2.Task:
    return objects_pb2.Task(
        id=tid,
        service_id=sid,
        node_id=node,
        desired_state=states.RUNNING,
        status=types_pb2.TaskStatus(state=states.NEW),
    )


async def test_a_pass_gives_the_vip_and_task_addresses_and_makes_tasks_pending() -> None:
    cache = cache_of(network("a", "front", "10.0.1.0/24"), service_on("a"), new_task("t1"), new_task("t2"))
    alloc, _ = allocator_for(cache)
    await alloc._pass()
    vip = cache.services["s1"].endpoint.virtual_ips[0]
    addrs = [cache.tasks[t].networks[0].addresses[0] for t in ("t1", "t2")]
    assert vip.network_id == "a"
    assert len({vip.addr, *addrs}) == 3 and "10.0.1.1/24" not in {vip.addr, *addrs}
    assert all(cache.tasks[t].status.state == states.PENDING for t in ("t1", "t2"))


async def test_a_new_allocator_reuses_no_address_in_the_store() -> None:
    t1 = new_task("t1")
    t1.status.state = states.RUNNING  # type: ignore[assignment]
    t1.networks.add(network_id="a", addresses=["10.0.1.2/24"])
    svc = service_on("a")
    svc.endpoint.spec.CopyFrom(svc.spec.endpoint)
    svc.endpoint.virtual_ips.add(network_id="a", addr="10.0.1.3/24")
    net = network("a", "front", "10.0.1.0/24")
    net.node_addresses["n1"] = "10.0.1.4/24"
    cache = cache_of(net, svc, t1, new_task("t2"))
    alloc, _ = allocator_for(cache)
    await alloc._pass()
    assert cache.tasks["t2"].networks[0].addresses[0] == "10.0.1.5/24"


async def test_nodes_get_an_address_while_they_run_a_task_of_the_network() -> None:
    cache = cache_of(network("a", "front", "10.0.1.0/24"), service_on("a"), new_task("t1"))
    for nid in ("n1", "n2"):
        cache._set(Kind.NODE, nid, objects_pb2.Node(id=nid, name=nid))
    alloc, writer = allocator_for(cache)
    await alloc._pass()
    placed = objects_pb2.Task()
    placed.CopyFrom(cache.tasks["t1"])
    placed.node_id = "n2"
    alloc._apply(cache._set(Kind.TASK, "t1", placed))
    await alloc._pass()
    assert set(cache.networks["a"].node_addresses) == {"n2"}
    alloc._apply(cache._set(Kind.TASK, "t1", None))
    await alloc._pass()
    assert dict(cache.networks["a"].node_addresses) == {}


async def test_an_address_of_a_write_that_did_not_land_is_given_back() -> None:
    cache = cache_of(network("a", "front", "10.0.1.0/24", vni=4096), service_on("a"), new_task("t1"))
    alloc, writer = allocator_for(cache)
    writer.refuse = {"t1"}
    await alloc._pass()
    assert cache.tasks["t1"].status.state == states.NEW and "t1" in alloc._tasks
    free_before = alloc._view.pools["a"].free
    writer.refuse = set()
    await alloc._pass()
    assert cache.tasks["t1"].status.state == states.PENDING
    assert alloc._view.pools["a"].free == free_before - 1
