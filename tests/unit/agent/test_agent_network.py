"""The node's network plan, pure: the nftables ruleset, the DNS names and answers, and the --publish/--network flags."""

from __future__ import annotations

import pytest
from click import BadParameter
from dnslib import QTYPE, RCODE, DNSRecord

from shoal.agent.network import desired, dns
from shoal.ctl import network_flags, spec
from shoal.v1 import dispatcher_pb2, types_pb2


def item(**kw: object) -> dispatcher_pb2.NetworkAssignment:
    it = dispatcher_pb2.NetworkAssignment(
        id="a", name="front", subnet="10.0.1.0/24", vni=4097, address="10.0.1.10/24", **kw
    )
    it.peers.add(node_id="n2", underlay="10.77.0.102")
    svc = it.services.add(service_id="s1", name="db", aliases=["sql"], vip="10.0.1.2")
    svc.tasks.add(task_id="t1", name="db.1.t1", address="10.0.1.5")
    svc.tasks.add(task_id="t2", name="db.2.t2", address="10.0.1.6")
    it.services.add(service_id="s2", name="cache").tasks.add(task_id="t3", name="cache.1.t3", address="10.0.1.7")
    return it


def test_dns_names_are_the_vip_or_the_tasks() -> None:
    records = desired.dns_records(desired.from_item(item()))
    assert records["db"] == records["db.front"] == records["sql"] == ("10.0.1.2",)
    assert records["tasks.db"] == ("10.0.1.5", "10.0.1.6")
    assert records["cache"] == ("10.0.1.7",)  # dnsrr: no VIP
    assert records["db.2.t2"] == ("10.0.1.6",)
    assert desired.dns_records(desired.from_item(item(ingress=True))) == {}


def test_the_ruleset_balances_each_vip_and_filters_its_arp_at_the_vxlan_port() -> None:
    text = desired.ruleset([desired.from_item(item())])
    assert (
        'iifname "shb4097" ip daddr 10.0.1.2 dnat ip to numgen random mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }' in text
    )
    assert 'oifname "shv4097" arp operation request arp daddr ip { 10.0.1.2 } drop' in text
    assert text.index("delete table ip shoal") < text.index("table ip shoal {")


def test_the_mesh_answers_on_every_local_address_and_returns_through_this_node() -> None:
    it = item(ingress=True)
    it.services[0].ports.add(published=8080, target=80)
    del it.services[0].tasks[1:]
    text = desired.ruleset([desired.from_item(it)])
    assert "fib daddr type local tcp dport 8080 dnat ip to 10.0.1.5:80" in text
    assert 'oifname "shb4097" ct status dnat ip saddr != 10.0.1.0/24 snat to 10.0.1.10' in text
    assert "ip daddr 10.0.1.2" not in text  # nobody dials a VIP on the ingress network
    assert desired.ruleset([]) == ""


def query(name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.question(name, qtype)


def test_dns_answers_known_names_refuses_unknown_cluster_names_and_forwards_the_rest() -> None:
    zone = dns.Zone("front", desired.dns_records(desired.from_item(item())))
    reply = dns.answer(query("tasks.db."), zone)
    assert reply is not None and sorted(str(r.rdata) for r in reply.rr) == ["10.0.1.5", "10.0.1.6"]
    assert all(r.ttl == 0 for r in reply.rr)
    assert dns.answer(query("DB"), zone).rr[0].rdata.toZone() == "10.0.1.2"  # type: ignore[union-attr]
    assert dns.answer(query("db", "AAAA"), zone).rr == []  # type: ignore[union-attr]
    assert dns.answer(query("tasks.nope"), zone).header.rcode == RCODE.NXDOMAIN  # type: ignore[union-attr]
    assert dns.answer(query("x.front"), zone).header.rcode == RCODE.NXDOMAIN  # type: ignore[union-attr]
    assert dns.answer(query("example.org"), zone) is None
    assert QTYPE.A == query("db").q.qtype


def test_resolv_conf_servers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nnameserver 10.1.1.1\nsearch lab\nnameserver 10.1.1.2\n")
    assert dns.resolv_conf_servers(str(conf)) == ["10.1.1.1", "10.1.1.2"]


# ---- swarmctl's flags -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mode", "published", "target", "proto"),
    [
        ("8080:80", "ingress", 8080, 80, ""),
        ("80", "ingress", 0, 80, ""),
        ("53:53/udp", "ingress", 53, 53, "udp"),
        ("published=8080,target=80,mode=host", "host", 8080, 80, ""),
        ("target=80,mode=host", "host", 80, 80, ""),
        ("published=1,target=2,protocol=udp", "ingress", 1, 2, "udp"),
    ],
)
def test_publish_forms(text: str, mode: str, published: int, target: int, proto: str) -> None:
    got_mode, port = network_flags.PUBLISHED.convert(text, None, None)
    assert (got_mode, port.published, port.target, port.protocol) == (mode, published, target, proto)


@pytest.mark.parametrize("text", ["a:b", "published=1", "target=1,mode=bridge", "target=1,color=red"])
def test_bad_publish_values_are_usage_errors(text: str) -> None:
    with pytest.raises(BadParameter):
        network_flags.PUBLISHED.convert(text, None, None)


def test_a_port_moves_between_the_mesh_and_host_mode_and_networks_are_kept_in_order() -> None:
    s = types_pb2.ServiceSpec(name="web")
    s.endpoint.ports.add(published=8080, target=80)
    changes = spec.SpecChanges(
        publish=(network_flags.PUBLISHED.convert("published=8080,target=80,mode=host", None, None),),
        network=(
            network_flags.ATTACHMENT.convert("front,alias=www", None, None),
            network_flags.ATTACHMENT.convert("back", None, None),
        ),
        endpoint_mode="dnsrr",
    )
    out = spec.apply(s, changes)
    assert [p.published for p in out.endpoint.ports] == []
    assert [p.published for p in out.task.container.ports] == [8080]
    assert [(a.target, list(a.aliases)) for a in out.task.networks] == [("front", ["www"]), ("back", [])]
    assert out.endpoint.mode == types_pb2.EndpointSpec.DNSRR
    out = spec.apply(out, spec.SpecChanges(network_rm=("front",), publish_rm=("8080",)))
    assert [a.target for a in out.task.networks] == ["back"] and not out.task.container.ports
