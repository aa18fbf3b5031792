"""What each node must know of the overlay networks it is on, derived from the cache.

A node is on a network when the allocator gave it an address there
(`Network.node_addresses`: nodes that run a task of it, and every node with a
data path on the ingress network while a service publishes through the
mesh). It receives the network whole, as one assignment item: its subnet and
VNI, its own address, the other nodes' underlay addresses (its VXLAN peers),
and the services on it with their virtual IPs and running tasks (what its DNS
server answers and its NAT balances over). Whenever anything of that
changes, the item is built again and sent to every node on the network; a
node that left it, or a network that is gone, gets a removal.

Nothing here is written to the store: it is a view of it, so a new leader
sends the same items.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal import states
from shoal.controller import networking
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.v1 import dispatcher_pb2, objects_pb2

#: (node ID, network ID, the item to send, or None for a removal).
Delivery = tuple[str, str, dispatcher_pb2.NetworkAssignment | None]


def is_backend(task: objects_pb2.Task | None) -> bool:
    """True for a task that answers on its networks: running (and so healthy) and meant to run."""
    return task is not None and task.status.state == states.RUNNING and task.desired_state == states.RUNNING


def _bare(cidr: str) -> str:
    return cidr.partition("/")[0]


class NetworkDirectory:
    """The network items of every node, rebuilt for the networks that changes touch."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._dirty: set[str] = set()
        #: Network ID -> the nodes that were last sent its item.
        self._members: dict[str, set[str]] = {}

    def _ingress_id(self) -> str:
        return self._cache.network_by_name.get(networking.INGRESS, "")

    def _networks_of(self, service: objects_pb2.Service) -> set[str]:
        found = set(networking.service_networks(service.spec, self._ingress_id()))
        found.update(v.network_id for v in service.endpoint.virtual_ips)
        return found

    # ---- changes ------------------------------------------------------------

    def change(self, change: Change) -> None:
        """Mark the networks whose items a change of the store alters."""
        kind = change.kind
        if kind is Kind.TASK and not self._cache.networks:
            # No network, no item: a cluster without networks pays one check a change, at scale.
            return
        if kind is Kind.TASK:
            old, new = _task(change.old), _task(change.new)
            if not (old is not None and old.networks) and not (new is not None and new.networks):
                return
            if is_backend(old) != is_backend(new) or (
                is_backend(new) and old is not None and new is not None and old.networks != new.networks
            ):
                for t in (old, new):
                    if t is not None:
                        self._dirty.update(a.network_id for a in t.networks)
        elif kind is Kind.SERVICE:
            before, after = _service(change.old), _service(change.new)
            if before is not None and after is not None and _same_endpoint(before, after):
                return
            for s in (before, after):
                if s is not None:
                    self._dirty.update(self._networks_of(s))
        elif kind is Kind.NETWORK:
            self._dirty.add(change.obj.id)  # type: ignore[attr-defined]
        elif kind is Kind.NODE:
            was, now = change.old, change.new
            if (
                not isinstance(was, objects_pb2.Node)
                or not isinstance(now, objects_pb2.Node)
                or was.description.data_path_addr != now.description.data_path_addr
            ):
                node_id = change.obj.id  # type: ignore[attr-defined]
                self._dirty.update(n for n, members in self._members.items() if node_id in members)
                self._dirty.update(n.id for n in self._cache.networks.values() if node_id in n.node_addresses)

    def flush(self) -> list[Delivery]:
        """The items to send for every network marked since the last flush."""
        out: list[Delivery] = []
        dirty, self._dirty = self._dirty, set()
        for network_id in dirty:
            network = self._cache.networks.get(network_id)
            before = self._members.pop(network_id, set())
            now = set(network.node_addresses) if network is not None else set()
            out.extend((node_id, network_id, None) for node_id in before - now)
            if network is None or not now:
                continue
            self._members[network_id] = now
            base = self._build(network)
            out.extend((node_id, network_id, self._for_node(base, network, node_id)) for node_id in sorted(now))
        return out

    def for_node(self, node_id: str) -> list[dispatcher_pb2.NetworkAssignment]:
        """Every item a node needs now (the start of its assignment stream)."""
        items = []
        for network in self._cache.networks.values():
            if node_id in network.node_addresses:
                self._members.setdefault(network.id, set()).add(node_id)
                items.append(self._for_node(self._build(network), network, node_id))
        return items

    # ---- items ----------------------------------------------------------------

    def _build(self, network: objects_pb2.Network) -> dispatcher_pb2.NetworkAssignment:
        """The item of a network as every node sees it, but for `address` and the peers (`_for_node`)."""
        item = dispatcher_pb2.NetworkAssignment(
            id=network.id,
            name=network.spec.name,
            subnet=network.subnet,
            vni=network.vni,
            internal=network.spec.internal,
            ingress=network.spec.ingress,
        )
        nodes = self._cache.nodes
        for node_id in sorted(network.node_addresses):
            node = nodes.get(node_id)
            if node is not None and node.description.data_path_addr:
                item.peers.add(node_id=node_id, underlay=node.description.data_path_addr)
        for service in sorted(self._cache.services.values(), key=lambda s: s.spec.name):
            if network.id in networking.service_networks(service.spec, self._ingress_id()):
                item.services.append(self._endpoint(service, network))
        return item

    def _endpoint(self, service: objects_pb2.Service, network: objects_pb2.Network) -> dispatcher_pb2.ServiceEndpoint:
        endpoint = dispatcher_pb2.ServiceEndpoint(service_id=service.id, name=service.spec.name)
        for attachment in service.spec.task.networks:
            if attachment.target == network.id:
                endpoint.aliases.extend(attachment.aliases)
        vip = next((v.addr for v in service.endpoint.virtual_ips if v.network_id == network.id), "")
        endpoint.vip = _bare(vip)
        for task in _backends(self._cache.tasks_of_service(service.id)):
            address = next((a.addresses[0] for a in task.networks if a.network_id == network.id and a.addresses), "")
            if address:
                endpoint.tasks.add(task_id=task.id, name=networking.task_name(task), address=_bare(address))
        if network.spec.ingress:
            endpoint.ports.extend(service.spec.endpoint.ports)
        return endpoint

    @staticmethod
    def _for_node(
        base: dispatcher_pb2.NetworkAssignment, network: objects_pb2.Network, node_id: str
    ) -> dispatcher_pb2.NetworkAssignment:
        item = dispatcher_pb2.NetworkAssignment()
        item.CopyFrom(base)
        item.address = network.node_addresses[node_id]
        del item.peers[:]
        item.peers.extend(p for p in base.peers if p.node_id != node_id)
        return item


def _task(obj: object) -> objects_pb2.Task | None:
    return obj if isinstance(obj, objects_pb2.Task) else None


def _service(obj: object) -> objects_pb2.Service | None:
    return obj if isinstance(obj, objects_pb2.Service) else None


def _backends(tasks: Iterable[objects_pb2.Task]) -> list[objects_pb2.Task]:
    return sorted((t for t in tasks if is_backend(t)), key=lambda t: (t.slot, t.node_id, t.id))


def _same_endpoint(old: objects_pb2.Service, new: objects_pb2.Service) -> bool:
    """True if nothing a network item shows of the service changed (status and rollout writes)."""
    return (
        old.spec.name == new.spec.name
        and old.spec.endpoint == new.spec.endpoint
        and old.spec.task.networks == new.spec.task.networks
        and old.endpoint == new.endpoint
    )
