"""Prometheus HTTP service discovery: target groups for controllers and nodes, from the cache or etcd."""

from __future__ import annotations

import json

import pytest
from aetcd import rpc
from controller_fakes import DOWN, DRAIN, make_node

from shoal import errors, metrics_http
from shoal.controller import discovery, members
from shoal.controller.leader import LeaderInfo
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import objects_pb2

KEYS = Keys("/t")


def node(node_id: str, name: str, metrics_addr: str = "", **kw: object) -> objects_pb2.Node:
    n = make_node(node_id, hostname=name, **kw)  # type: ignore[arg-type]
    n.status.metrics_addr = metrics_addr
    n.status.addr = "10.0.0.1:4250"
    return n


class FakeEtcd:
    """The etcd adapter's reads, over a dict of keys."""

    def __init__(self, kvs: dict[bytes, bytes], *, down: bool = False) -> None:
        self.kvs = kvs
        self.down = down

    def _check(self) -> None:
        if self.down:
            raise errors.Unavailable("etcd unavailable during range")

    async def range_prefix(self, prefix: bytes) -> tuple[int, list[rpc.KeyValue]]:
        self._check()
        return 9, [rpc.KeyValue(key=k, value=v) for k, v in sorted(self.kvs.items()) if k.startswith(prefix)]

    async def get(self, key: bytes) -> rpc.KeyValue | None:
        self._check()
        return rpc.KeyValue(key=key, value=self.kvs[key]) if key in self.kvs else None


def test_an_agent_target_carries_name_id_role_availability_and_labels() -> None:
    n = node("id1", "n1", "127.0.0.1:9431", availability=DRAIN, labels={"zone": "east", "team.name": "a"})
    group = discovery.node_group(n)
    assert group is not None
    assert group["targets"] == ["127.0.0.1:9431"]
    labels = group["labels"]
    assert labels["__meta_shoal_role"] == "agent"
    assert labels["__meta_shoal_node_name"] == "n1"
    assert labels["__meta_shoal_node_id"] == "id1"
    assert labels["__meta_shoal_node_availability"] == "DRAIN"
    assert labels["__meta_shoal_node_state"] == "READY"
    assert labels["__meta_shoal_node_label_zone"] == "east"
    assert labels["__meta_shoal_node_label_team_name"] == "a"
    assert all(isinstance(v, str) for v in labels.values())


def test_a_node_without_a_metrics_address_is_not_a_target() -> None:
    assert discovery.node_group(node("id1", "n1")) is None


def test_groups_list_controllers_then_nodes_by_name_and_mark_the_leader() -> None:
    controllers = [members.Member("c1", "127.0.0.1:4240", "127.0.0.1:9420"), members.Member("c2", "h:4240", "h:9420")]
    nodes = [node("id2", "n2", "127.0.0.1:9432", state=DOWN), node("id1", "n1", "127.0.0.1:9431")]
    groups = discovery.target_groups(controllers, nodes, leader_id="c2")
    assert [g["targets"][0] for g in groups] == ["127.0.0.1:9420", "h:9420", "127.0.0.1:9431", "127.0.0.1:9432"]
    assert [g["labels"]["__meta_shoal_controller_leader"] for g in groups[:2]] == ["false", "true"]
    # A DOWN node stays listed, so that Prometheus sees its target down.
    assert groups[3]["labels"]["__meta_shoal_node_state"] == "DOWN"


def etcd_with(nodes: list[objects_pb2.Node], leader: str = "c1") -> FakeEtcd:
    kvs = {KEYS.object(Kind.NODE, n.id): n.SerializeToString() for n in nodes}
    member = members.Member("c1", "127.0.0.1:4240", "127.0.0.1:9420", "host1")
    kvs[members.prefix(KEYS) + b"c1"] = member.encode()
    kvs[KEYS.leader] = LeaderInfo(leader, "127.0.0.1:4240").encode()
    return FakeEtcd(kvs)


async def test_a_follower_answers_from_etcd() -> None:
    etcd = etcd_with([node("id1", "n1", "127.0.0.1:9431")])
    sd = discovery.Discovery(etcd=etcd, keys=KEYS, cache=lambda: None)  # type: ignore[arg-type]
    resp = await sd.handle(None)  # type: ignore[arg-type]
    assert resp.status == 200
    assert resp.content_type == "application/json"
    groups = json.loads(resp.body)  # type: ignore[arg-type]
    assert [(g["labels"]["__meta_shoal_role"], g["targets"]) for g in groups] == [
        ("controller", ["127.0.0.1:9420"]),
        ("agent", ["127.0.0.1:9431"]),
    ]
    assert groups[0]["labels"]["__meta_shoal_controller_leader"] == "true"


async def test_the_leader_answers_nodes_from_its_cache() -> None:
    class Cache:
        nodes = {"id7": node("id7", "n7", "127.0.0.1:9437")}

    etcd = etcd_with([node("id1", "n1", "127.0.0.1:9431")])
    sd = discovery.Discovery(etcd=etcd, keys=KEYS, cache=lambda: Cache())  # type: ignore[arg-type,return-value]
    names = [g["labels"].get("__meta_shoal_node_name") for g in await sd.groups()]
    assert names == [None, "n7"]


async def test_etcd_down_is_503_so_prometheus_keeps_its_targets() -> None:
    etcd = etcd_with([])
    etcd.down = True
    sd = discovery.Discovery(etcd=etcd, keys=KEYS, cache=lambda: None)  # type: ignore[arg-type]
    resp = await sd.handle(None)  # type: ignore[arg-type]
    assert resp.status == 503


def test_member_advertisements_round_trip_and_garbage_is_ignored() -> None:
    member = members.Member("c1", "127.0.0.1:4240", "127.0.0.1:9420", "host1")
    assert members.Member.decode(member.encode()) == member
    assert members.Member.decode(b"not json") is None
    assert members.Member.decode(b'{"addr": "x"}') is None


@pytest.mark.parametrize(
    ("bound", "other", "expected"),
    [
        ("127.0.0.1:9420", "127.0.0.1:4240", "127.0.0.1:9420"),
        ("0.0.0.0:9420", "10.1.2.3:4240", "10.1.2.3:9420"),
        ("[::]:9420", "[fd00::1]:4240", "[fd00::1]:9420"),
        ("0.0.0.0:9420", "0.0.0.0:4240", "0.0.0.0:9420"),
    ],
)
def test_a_wildcard_metrics_address_is_advertised_with_the_grpc_host(bound: str, other: str, expected: str) -> None:
    assert metrics_http.advertised(bound, other) == expected
    assert members.local("c1", other, bound).metrics_addr == expected
