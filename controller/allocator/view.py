"""The allocator's view of the store: which addresses of each network are used, and which nodes are on it.

Built from the cache when the allocator starts and kept current from the
cache's changes, so it always equals what the store holds plus the
allocations the allocator has decided and not yet seen come back. Nothing in
it is kept anywhere else: a new leader builds the same view from etcd.
"""

from __future__ import annotations

import collections
import ipaddress

from shoal.controller import ipam
from shoal.controller.store.cache import Cache
from shoal.v1 import objects_pb2


def _addresses(obj: objects_pb2.Service | objects_pb2.Task | objects_pb2.Network) -> list[tuple[str, str]]:
    """(network ID, CIDR) of every address an object holds."""
    if isinstance(obj, objects_pb2.Task):
        return [(a.network_id, cidr) for a in obj.networks for cidr in a.addresses]
    if isinstance(obj, objects_pb2.Service):
        return [(v.network_id, v.addr) for v in obj.endpoint.virtual_ips]
    return [(obj.id, cidr) for cidr in obj.node_addresses.values()]


def task_memberships(task: objects_pb2.Task | None) -> list[tuple[str, str]]:
    """(network ID, node ID) pairs a task puts a node on: one per network it has an address on, once placed."""
    if task is None or not task.node_id:
        return []
    return [(a.network_id, task.node_id) for a in task.networks]


class View:
    """Used addresses per network and the nodes that run tasks of each network."""

    def __init__(self) -> None:
        self.pools: dict[str, ipam.Addresses] = {}
        #: (network ID, node ID) -> tasks in the store that put the node on the network.
        self.members: collections.Counter[tuple[str, str]] = collections.Counter()

    @classmethod
    def build(cls, cache: Cache) -> View:
        view = cls()
        for network in cache.networks.values():
            view.add_network(network)
        for service in cache.services.values():
            view.hold(service, +1)
        for task in cache.tasks.values():
            if task.networks:
                view.hold(task, +1)
        return view

    def add_network(self, network: objects_pb2.Network) -> None:
        """A network (new, or read at start): its pool, with its gateway and node addresses taken."""
        if network.id in self.pools or not network.subnet:
            return
        subnet = ipaddress.IPv4Network(network.subnet)
        gateway = ipaddress.IPv4Address(network.gateway) if network.gateway else ipam.first_host(subnet)
        self.pools[network.id] = ipam.Addresses(subnet, reserved=[gateway])
        self._mark(network, +1)

    def drop_network(self, network_id: str) -> None:
        self.pools.pop(network_id, None)
        for key in [k for k in self.members if k[0] == network_id]:
            del self.members[key]

    def hold(self, obj: objects_pb2.Service | objects_pb2.Task | objects_pb2.Network | None, sign: int) -> None:
        """Count an object's addresses in (+1) or out (-1) of the used sets, and a task's memberships."""
        if obj is None:
            return
        self._mark(obj, sign)
        if isinstance(obj, objects_pb2.Task):
            for key in task_memberships(obj):
                self.members[key] += sign
                if self.members[key] <= 0:
                    del self.members[key]

    def _mark(self, obj: objects_pb2.Service | objects_pb2.Task | objects_pb2.Network, sign: int) -> None:
        for network_id, cidr in _addresses(obj):
            pool = self.pools.get(network_id)
            if pool is None:
                continue
            addr = ipam.address_of(cidr)
            if sign > 0:
                pool.use(addr)
            else:
                pool.release(addr)

    def change(
        self,
        old: objects_pb2.Service | objects_pb2.Task | objects_pb2.Network | None,
        new: objects_pb2.Service | objects_pb2.Task | objects_pb2.Network | None,
    ) -> None:
        """An object changed in the store: what it held before is released, what it holds now is used."""
        self.hold(old, -1)
        self.hold(new, +1)

    def nodes_on(self, network_id: str) -> set[str]:
        """Nodes that run (or ran, while the task is kept) a task with an address on the network."""
        return {node for (net, node), n in self.members.items() if net == network_id and n > 0}

    def allocate(self, network_id: str) -> str | None:
        """A free address of the network, as CIDR, now counted as used (None: no pool, or full)."""
        pool = self.pools.get(network_id)
        if pool is None:
            return None
        addr = pool.allocate()
        return None if addr is None else ipam.with_prefix(addr, pool.subnet)

    def release(self, network_id: str, cidr: str) -> None:
        """Give back an address allocated for a write that did not land."""
        pool = self.pools.get(network_id)
        if pool is not None:
            pool.release(ipam.address_of(cidr))
