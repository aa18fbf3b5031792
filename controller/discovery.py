"""Prometheus HTTP service discovery: `GET /sd/prometheus` on the controller's metrics listener.

The answer is the JSON list of target groups Prometheus's `http_sd_configs`
expects: one group per controller (from their advertisements in etcd,
members.py) and one per node whose agent registered a metrics address. Nodes
appear when they register and disappear when they are removed; a DOWN node
stays listed, so that its target shows as down and alerts fire. Any
controller answers, leader or not: the leader from its cache, a follower from
etcd. If etcd cannot be read the answer is 503, and Prometheus keeps the
targets it had.

Everything about a target is a `__meta_shoal_*` label, as Prometheus's own
discovery mechanisms do, so that the scrape configuration chooses what becomes
a target label: the shipped one keeps role, node name and node ID, which never
change for a target, and not availability or state, which would split every
series of a node each time it is drained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from shoal import errors
from shoal.controller import members
from shoal.controller.leader import LeaderInfo
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import objects_pb2, types_pb2

if TYPE_CHECKING:
    from shoal.controller.store.cache import Cache

PATH = "/sd/prometheus"
ROLE_CONTROLLER = "controller"
ROLE_AGENT = "agent"
META = "__meta_shoal_"
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")

TargetGroup = dict[str, Any]


def controller_group(member: members.Member, leader_id: str) -> TargetGroup:
    """The target group of one controller's metrics endpoint."""
    return {
        "targets": [member.metrics_addr],
        "labels": {
            META + "role": ROLE_CONTROLLER,
            META + "controller_id": member.controller_id,
            META + "controller_addr": member.addr,
            META + "controller_leader": "true" if member.controller_id == leader_id else "false",
            META + "hostname": member.hostname,
        },
    }


def node_group(node: objects_pb2.Node) -> TargetGroup | None:
    """The target group of a node's agent, or None if it registered no metrics address."""
    if not node.status.metrics_addr:
        return None
    labels = {
        META + "role": ROLE_AGENT,
        META + "node_name": node.name,
        META + "node_id": node.id,
        META + "node_availability": types_pb2.NodeSpec.Availability.Name(node.spec.availability),
        META + "node_state": types_pb2.NodeStatus.State.Name(node.status.state),
        META + "node_addr": node.status.addr,
        META + "hostname": node.description.hostname,
    }
    for key, value in node.spec.labels.items():
        labels[META + "node_label_" + _LABEL_NAME.sub("_", key)] = value
    return {"targets": [node.status.metrics_addr], "labels": labels}


def target_groups(
    controllers: Iterable[members.Member], nodes: Iterable[objects_pb2.Node], leader_id: str
) -> list[TargetGroup]:
    """Every target group: controllers by ID, then nodes by name."""
    groups = [controller_group(m, leader_id) for m in controllers if m.metrics_addr]
    for node in sorted(nodes, key=lambda n: n.name):
        group = node_group(node)
        if group is not None:
            groups.append(group)
    return groups


class Discovery:
    """Answers the discovery endpoint from the leader's cache, or from etcd on a follower."""

    def __init__(self, *, etcd: etcd_.Etcd, keys: Keys, cache: Callable[[], Cache | None]) -> None:
        self._etcd = etcd
        self._keys = keys
        self._cache = cache

    async def nodes(self) -> list[objects_pb2.Node]:
        """Every node in the store."""
        cache = self._cache()
        if cache is not None:
            return list(cache.nodes.values())
        _, kvs = await self._etcd.range_prefix(self._keys.object(Kind.NODE, ""))
        return [objects_pb2.Node.FromString(kv.value) for kv in kvs]

    async def leader_id(self) -> str:
        """The leading controller's ID, or "" when none leads."""
        kv = await self._etcd.get(self._keys.leader)
        info = LeaderInfo.decode(kv.value) if kv is not None else None
        return info.controller_id if info is not None else ""

    async def groups(self) -> list[TargetGroup]:
        """The whole answer."""
        controllers = await members.list_members(self._etcd, self._keys)
        return target_groups(controllers, await self.nodes(), await self.leader_id())

    async def handle(self, _: web.Request) -> web.Response:
        try:
            groups = await self.groups()
        except errors.ShoalError as exc:
            # Prometheus keeps its last good targets when discovery fails: better than an empty list.
            return web.Response(status=503, text=f"{exc}\n")
        return web.Response(body=json.dumps(groups).encode(), content_type="application/json")

    def routes(self) -> list[web.RouteDef]:
        """The route to hand to `metrics_http.serve`."""
        return [web.get(PATH, self.handle)]
