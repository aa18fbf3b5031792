"""Control API: overlay networks, and the network half of service specs.

A network's subnet (from the default address pools unless given) and VNI
are chosen when it is created, under one lock per controller: only the
leader writes networks and services, and it reads its own writes before the
lock is released, so two creates never pick the same subnet. The same lock
covers every service write that publishes ports through the routing mesh,
which makes "one service per ingress port" hold, and creates the ingress
network the first time a service needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc

from shoal import errors, ids
from shoal.controller import ipam, networking
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers
from shoal.controller.context import Term
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)


def node_subnets(cache: Cache) -> list[ipaddress.IPv4Network]:
    """The subnets the nodes' data paths (underlay addresses) are on: no overlay may overlap them."""
    found = set()
    for node in cache.nodes.values():
        text = node.description.data_path_subnet
        if text:
            try:
                found.add(ipaddress.IPv4Network(text, strict=False))
            except ValueError:
                continue
    return sorted(found, key=lambda n: int(n.network_address))


def _taken(cache: Cache) -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every subnet in use, with what uses it (for the refusal)."""
    out = [(ipaddress.IPv4Network(n.subnet), f'network "{n.spec.name}"') for n in cache.networks.values() if n.subnet]
    out += [(s, "the hosts' subnet") for s in node_subnets(cache)]
    return out


def new_network(cache: Cache, spec: objects_pb2.NetworkSpec, pools: ipam.Pools) -> objects_pb2.Network:
    """A network with its subnet, gateway and VNI chosen (nothing written); InvalidArgument on an overlap."""
    what = f'network "{spec.name}"'
    taken = _taken(cache)
    if spec.subnet:
        subnet = networking.subnet_of(what, spec.subnet)
        clash = next((owner for net, owner in taken if net.overlaps(subnet)), None)
        if clash is not None:
            raise errors.InvalidArgument(f"{what}: subnet {subnet} overlaps {clash}")
    else:
        subnet = ipam.pick_subnet(pools, [net for net, _ in taken])
    gateway = networking.gateway_of(what, spec.gateway, subnet) if spec.gateway else ipam.first_host(subnet)
    vni = ipam.pick_vni({n.vni for n in cache.networks.values()})
    return objects_pb2.Network(id=ids.new_id(), spec=spec, subnet=str(subnet), gateway=str(gateway), vni=vni)


def _users(cache: Cache, network: objects_pb2.Network) -> list[str]:
    """Names of the services that use the network (for the ingress network: that publish through the mesh)."""
    if network.spec.ingress:
        return sorted(s.spec.name for s in cache.services.values() if networking.needs_ingress(s.spec))
    return sorted(s.spec.name for s in cache.services.values() if network.id in networking.network_ids(s.spec))


def resolve_service_networks(cache: Cache, spec: types_pb2.ServiceSpec) -> None:
    """Replace each attachment's network name (or ID prefix) by the network's ID; refuse what cannot be joined."""
    what = f'service "{spec.name}"'
    seen: set[str] = set()
    for attachment in spec.task.networks:
        try:
            network = refs.resolve("network", attachment.target, cache.networks, cache.network_by_name)
        except errors.NotFound:
            if attachment.target == networking.INGRESS:
                network = objects_pb2.Network(spec=objects_pb2.NetworkSpec(ingress=True))
            else:
                raise errors.InvalidArgument(f"{what}: network {attachment.target!r} not found") from None
        if network.spec.ingress:
            raise errors.InvalidArgument(
                f"{what}: the ingress network is joined by publishing a port (--publish), not with --network"
            )
        if network.id in seen:
            raise errors.InvalidArgument(f"{what}: network {network.spec.name!r} is attached twice")
        seen.add(network.id)
        attachment.target = network.id


def _published(services: Iterable[objects_pb2.Service], skip: str) -> dict[tuple[int, str], tuple[str, str]]:
    """(port, protocol) -> (service name, "ingress" or "host") for every port the other services publish."""
    out: dict[tuple[int, str], tuple[str, str]] = {}
    for s in services:
        if s.id == skip:
            continue
        for key in networking.ingress_ports(s.spec):
            out[key] = (s.spec.name, "ingress")
        for p in s.spec.task.container.ports:
            out.setdefault((p.published or p.target, p.protocol or "tcp"), (s.spec.name, "host"))
    return out


def assign_ingress_ports(cache: Cache, spec: types_pb2.ServiceSpec, service_id: str = "") -> None:
    """Choose a port for each mesh port published without one; ALREADY_EXISTS if another service has a port."""
    taken = _published(cache.services.values(), service_id)
    what = f'service "{spec.name}"'
    for p in spec.endpoint.ports:
        proto = p.protocol or "tcp"
        if p.published:
            owner = taken.get((p.published, proto))
            if owner is not None:
                raise errors.AlreadyExists(
                    f'{what}: port {p.published}/{proto} is already published by service "{owner[0]}" ({owner[1]} mode)'
                )
        else:
            free = next((n for n in networking.DYNAMIC_PORTS if (n, proto) not in taken), None)
            if free is None:
                raise errors.FailedPrecondition(f"{what}: no free port left in 30000-32767")
            p.published = free
        taken[(p.published, proto)] = (spec.name, "ingress")
    for p in spec.task.container.ports:
        owner = taken.get((p.published or p.target, p.protocol or "tcp"))
        if owner is not None and owner[1] == "ingress":
            raise errors.AlreadyExists(
                f"{what}: port {p.published or p.target}/{p.protocol or 'tcp'} is published through the routing "
                f'mesh by service "{owner[0]}"'
            )


def network_lock(handlers: object) -> asyncio.Lock:
    """The lock that serializes network creation and services' mesh ports on this controller (one per servicer)."""
    lock = handlers.__dict__.get("_network_lock")
    if lock is None:
        lock = handlers.__dict__["_network_lock"] = asyncio.Lock()
    return lock


@contextlib.asynccontextmanager
async def publishing(
    handlers: object, term: Term, keys: Keys, pools: ipam.Pools, spec: types_pb2.ServiceSpec, service_id: str = ""
) -> AsyncIterator[None]:
    """Hold the network lock while a service spec that publishes ports is checked and written.

    Mesh ports published without a number get one, ports another service
    publishes are refused, and the ingress network is made if it is missing.
    """
    if not spec.endpoint.ports and not spec.task.container.ports:
        yield
        return
    async with network_lock(handlers):
        assign_ingress_ports(term.cache, spec, service_id)
        if networking.needs_ingress(spec):
            await ensure_ingress(term, keys, pools)
        yield


async def create(term: Term, keys: Keys, network: objects_pb2.Network) -> None:
    """Write a new network and reserve its name."""
    ops: list[w.Op] = [w.create(network), w.Claim(keys.name(Kind.NETWORK, network.spec.name), network.id.encode())]
    try:
        await term.writer.commit(ops)
    except errors.Conflict:
        raise errors.AlreadyExists(f'network "{network.spec.name}" already exists') from None
    log.info("network %s (%s) created: subnet %s, VNI %d", network.spec.name, network.id, network.subnet, network.vni)


async def ensure_ingress(term: Term, keys: Keys, pools: ipam.Pools) -> objects_pb2.Network:
    """The routing mesh's network, created on first use (call with the network lock held)."""
    cache = term.cache
    found = cache.networks.get(cache.network_by_name.get(networking.INGRESS, ""))
    if found is not None:
        return found
    spec = objects_pb2.NetworkSpec(name=networking.INGRESS, driver=networking.DRIVER, ingress=True)
    network = new_network(cache, spec, pools)
    await create(term, keys, network)
    return cache.networks[network.id]


class NetworkHandlers(Handlers):
    """CreateNetwork, GetNetwork, ListNetworks, RemoveNetwork."""

    def _pools(self) -> ipam.Pools:
        return self._leadership.settings.networks.pools

    @handle
    async def CreateNetwork(  # noqa: N802
        self, request: control_pb2.CreateNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.NetworkResponse:
        spec = objects_pb2.NetworkSpec()
        spec.CopyFrom(request.spec)
        networking.apply_defaults(spec)
        networking.check_network_spec(spec)
        term = self._leadership.require()
        async with network_lock(self):
            if spec.name in term.cache.network_by_name:
                raise errors.AlreadyExists(f'network "{spec.name}" already exists')
            network = new_network(term.cache, spec, self._pools())
            await create(term, self._keys, network)
        return control_pb2.NetworkResponse(network=term.cache.networks[network.id])

    @handle
    async def GetNetwork(  # noqa: N802
        self, request: control_pb2.GetNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.NetworkResponse:
        cache = self._leadership.require().cache
        return control_pb2.NetworkResponse(
            network=refs.resolve("network", request.ref, cache.networks, cache.network_by_name)
        )

    @handle
    async def ListNetworks(  # noqa: N802
        self, request: control_pb2.ListNetworksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListNetworksResponse:
        cache = self._leadership.require().cache
        return control_pb2.ListNetworksResponse(networks=sorted(cache.networks.values(), key=lambda n: n.spec.name))

    @handle
    async def RemoveNetwork(  # noqa: N802
        self, request: control_pb2.GetNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveNetworkResponse:
        term = self._leadership.require()
        async with network_lock(self):
            network = refs.resolve("network", request.ref, term.cache.networks, term.cache.network_by_name)
            what = f'network "{network.spec.name}"'
            users = _users(term.cache, network)
            if users:
                raise errors.FailedPrecondition(f"{what} is in use by service(s) {', '.join(users)}")
            ops: list[w.Op] = [w.delete(network), w.Claim(self._keys.name(Kind.NETWORK, network.spec.name), None, None)]
            try:
                await term.writer.commit(ops)
            except errors.Conflict:
                raise errors.Conflict(f"{what} changed while being removed; try again") from None
        log.info("network %s (%s) removed", network.spec.name, network.id)
        return control_pb2.RemoveNetworkResponse()
