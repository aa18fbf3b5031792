"""The allocator loop: virtual IPs for services, addresses for tasks and for the nodes that run them.

It follows the skeleton of every control loop (STYLE H2): a view built from
the cache, one pass, then passes after bursts of changes. A pass

1. gives each service in vip mode a virtual IP on each of its networks (and
   on the ingress network, when it publishes ports through the routing
   mesh), and releases those of networks it left;
2. gives each NEW task an address on each of its networks, and makes it
   PENDING in the same write: only then does the scheduler see it (as in
   SwarmKit, the allocator runs before the scheduler);
3. gives each node that runs a task of a network an address of its own there
   (its containers' gateway, the source of its NAT), every node with a data
   path one on the ingress network while a service publishes through the
   mesh, and takes back the address of a node that no longer needs it.

Every write compares versions, so a stale decision is dropped and made again
from the next event; addresses of writes that did not land are released.
"""

from __future__ import annotations

import logging
import time
from typing import NoReturn

from shoal import states
from shoal.controller import loops, metrics, networking
from shoal.controller.allocator.view import View
from shoal.controller.settings import LoopSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.events import Change
from shoal.controller.store.keys import Kind
from shoal.units import to_timestamp
from shoal.v1 import objects_pb2, types_pb2

log = logging.getLogger(__name__)

VIP = types_pb2.EndpointSpec.VIP


def ingress_of(cache: Cache) -> objects_pb2.Network | None:
    return cache.networks.get(cache.network_by_name.get(networking.INGRESS, ""))


def wanted_networks(cache: Cache, service: objects_pb2.Service) -> list[str]:
    """IDs of the networks the service's tasks join: its own, then the ingress network if it publishes there."""
    ingress = ingress_of(cache)
    return networking.service_networks(service.spec, ingress.id if ingress is not None else "")


class Allocator:
    """The loop (leader only)."""

    def __init__(self, *, cache: Cache, writer: w.Writer, settings: LoopSettings) -> None:
        self._cache = cache
        self._writer = writer
        self._settings = settings
        self._view = View()
        self._services: set[str] = set()
        self._tasks: set[str] = set()
        self._networks: set[str] = set()

    async def run(self) -> NoReturn:
        sub = self._cache.subscribe()
        self._view = View.build(self._cache)
        self._services = set(self._cache.services)
        self._tasks = {t.id for t in self._cache.tasks.values() if t.status.state == states.NEW}
        self._networks = set(self._cache.networks)
        while True:
            if self._services or self._tasks or self._networks:
                await self._pass()
            for batch in await loops.gather(sub, self._settings):
                for change in batch.changes:
                    self._apply(change)

    # ---- events -------------------------------------------------------------

    def _apply(self, change: Change) -> None:
        kind = change.kind
        if kind is Kind.TASK and not self._cache.networks:
            # No task has an address to give or take back (a cluster without networks: most changes, at scale).
            return
        if kind is Kind.TASK:
            old, new = change.old, change.new
            if not (old is not None and old.networks) and not (new is not None and new.networks):  # type: ignore[attr-defined]
                if new is not None and new.status.state == states.NEW:  # type: ignore[attr-defined]
                    self._tasks.add(new.id)  # type: ignore[attr-defined]
                return
            self._view.change(old, new)  # type: ignore[arg-type]
            if new is not None and new.status.state == states.NEW:  # type: ignore[attr-defined]
                self._tasks.add(new.id)  # type: ignore[attr-defined]
            if old is None or new is None or old.node_id != new.node_id:  # type: ignore[attr-defined]
                self._networks.update(a.network_id for t in (old, new) if t is not None for a in t.networks)  # type: ignore[attr-defined]
        elif kind is Kind.SERVICE:
            self._view.change(change.old, change.new)  # type: ignore[arg-type]
            if change.new is not None:
                self._services.add(change.new.id)  # type: ignore[attr-defined]
            if any(s is not None and networking.needs_ingress(s.spec) for s in (change.old, change.new)):  # type: ignore[attr-defined]
                ingress = ingress_of(self._cache)
                if ingress is not None:
                    self._networks.add(ingress.id)
        elif kind is Kind.NETWORK:
            if change.deleted:
                self._view.drop_network(change.old.id)  # type: ignore[union-attr]
                return
            if change.created:
                self._view.add_network(change.new)  # type: ignore[arg-type]
                # Services and tasks may have waited for it.
                self._services.update(self._cache.services)
                self._tasks.update(t.id for t in self._cache.tasks.values() if t.status.state == states.NEW)
            else:
                self._view.change(change.old, change.new)  # type: ignore[arg-type]
            self._networks.add(change.new.id)  # type: ignore[union-attr]
        elif kind is Kind.NODE:
            old, new = change.old, change.new
            if old is None or new is None or old.description.data_path_addr != new.description.data_path_addr:  # type: ignore[attr-defined]
                self._networks.update(self._cache.networks)

    # ---- a pass -------------------------------------------------------------

    async def _pass(self) -> None:
        start = time.perf_counter()
        services, self._services = self._services, set()
        tasks, self._tasks = self._tasks, set()
        networks, self._networks = self._networks, set()
        service_ops = [op for op in (self._service_endpoint(sid) for sid in services) if op is not None]
        task_ops = [op for op in (self._task_addresses(tid) for tid in tasks) if op is not None]
        network_ops = [op for op in (self._node_addresses(nid) for nid in networks) if op is not None]
        metrics.LOOP_DURATION.labels("allocator").observe(time.perf_counter() - start)
        for ops, retry in ((service_ops, self._services), (task_ops, self._tasks), (network_ops, self._networks)):
            if ops:
                await self._write(ops, retry)

    async def _write(self, decisions: list[tuple[w.Put, list[tuple[str, str]]]], retry: set[str]) -> None:
        """Write the decisions; give back the addresses of those that did not land and look at them again."""
        landed = await self._writer.commit_each([op for op, _ in decisions])
        for (op, fresh), ok in zip(decisions, landed, strict=True):
            if not ok:
                for network_id, cidr in fresh:
                    self._view.release(network_id, cidr)
                retry.add(op.obj.id)  # type: ignore[attr-defined]

    def _service_endpoint(self, service_id: str) -> tuple[w.Put, list[tuple[str, str]]] | None:
        """The service with a virtual IP on each network it needs (vip mode), or None if it has them."""
        service = self._cache.services.get(service_id)
        if service is None:
            return None
        wanted = wanted_networks(self._cache, service) if service.spec.endpoint.mode == VIP else []
        have = {v.network_id: v.addr for v in service.endpoint.virtual_ips}
        if list(have) == wanted and service.endpoint.spec == service.spec.endpoint:
            return None
        fresh: list[tuple[str, str]] = []
        vips = []
        for network_id in wanted:
            addr = have.get(network_id) or self._view.allocate(network_id)
            if addr is None:
                log.warning(
                    "service %s: no free address on network %s for its virtual IP", service.spec.name, network_id
                )
                continue
            if network_id not in have:
                fresh.append((network_id, addr))
            vips.append(objects_pb2.VirtualIP(network_id=network_id, addr=addr))
        new = objects_pb2.Service()
        new.CopyFrom(service)
        new.endpoint.spec.CopyFrom(service.spec.endpoint)
        del new.endpoint.virtual_ips[:]
        new.endpoint.virtual_ips.extend(vips)
        return w.put(new), fresh

    def _task_addresses(self, task_id: str) -> tuple[w.Put, list[tuple[str, str]]] | None:
        """A NEW task with an address on each of its service's networks, made PENDING; None if it must wait."""
        task = self._cache.tasks.get(task_id)
        if task is None or task.status.state != states.NEW or task.desired_state > states.RUNNING:
            return None
        service = self._cache.services.get(task.service_id)
        if service is None:
            return None
        aliases = {a.target: list(a.aliases) for a in task.spec.networks}
        fresh: list[tuple[str, str]] = []
        attachments = []
        for network_id in wanted_networks(self._cache, service):
            addr = self._view.allocate(network_id)
            if addr is None:
                for nid, cidr in fresh:
                    self._view.release(nid, cidr)
                log.warning("task %s: network %s is missing or full; it stays NEW", task.id, network_id)
                return None
            fresh.append((network_id, addr))
            attachments.append(
                objects_pb2.NetworkAttachment(
                    network_id=network_id, addresses=[addr], aliases=aliases.get(network_id, [])
                )
            )
        new = objects_pb2.Task()
        new.CopyFrom(task)
        del new.networks[:]
        new.networks.extend(attachments)
        new.status.CopyFrom(
            types_pb2.TaskStatus(
                state=states.PENDING, timestamp=to_timestamp(time.time()), message="pending task scheduling"
            )
        )
        return w.put(new), fresh

    def _node_addresses(self, network_id: str) -> tuple[w.Put, list[tuple[str, str]]] | None:
        """The network with an address for exactly the nodes on it; None if it has them."""
        network = self._cache.networks.get(network_id)
        if network is None:
            return None
        wanted = self._nodes_wanted(network)
        have = dict(network.node_addresses)
        if set(have) == wanted:
            return None
        fresh: list[tuple[str, str]] = []
        new = objects_pb2.Network()
        new.CopyFrom(network)
        for node_id in set(have) - wanted:
            del new.node_addresses[node_id]
        for node_id in sorted(wanted - set(have)):
            addr = self._view.allocate(network_id)
            if addr is None:
                log.warning("network %s is full: node %s gets no address on it", network.spec.name, node_id)
                continue
            fresh.append((network_id, addr))
            new.node_addresses[node_id] = addr
        return w.put(new), fresh

    def _nodes_wanted(self, network: objects_pb2.Network) -> set[str]:
        if network.spec.ingress:
            if not any(networking.needs_ingress(s.spec) for s in self._cache.services.values()):
                return set()
            return {n.id for n in self._cache.nodes.values() if n.description.data_path_addr}
        return {n for n in self._view.nodes_on(network.id) if n in self._cache.nodes}
