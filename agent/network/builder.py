"""The network builder: reconciles this node's links, Docker networks, NAT and DNS to its network items.

The worker hands it the network items of the assignment set (`replace` for
a COMPLETE set, `apply` for changes), as it hands files to the file store;
both only record what is wanted and wake the reconcile loop. Each pass
builds every wanted network (links, peers, Docker network, virtual IPs, DNS
server), then replaces the NAT tables with what all of them need, then,
once the node has heard a whole assignment set, removes what is not wanted.
A failing piece is logged and tried again with backoff; a pass also runs
every `resync` seconds, so drift (a link deleted by hand, dockerd restarted)
is repaired.

The executor waits in `attachments` until a task's networks are built, and
gets what the container needs to join them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import Sequence
from types import TracebackType

import aiodocker
from pyroute2 import AsyncIPRoute

from shoal import backoff
from shoal.agent.executor import base
from shoal.agent.network import desired, dns, engine, links, nat
from shoal.v1 import dispatcher_pb2, objects_pb2

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Attachment:
    """What a container needs to join one network: the Docker network, its address, and its resolver."""

    network_id: str
    docker_network: str
    address: str
    aliases: tuple[str, ...]
    dns_server: str


@dataclasses.dataclass(frozen=True)
class BuilderSettings:
    #: Underlay address of this node: the local end of every VXLAN device.
    data_path_addr: str
    #: The underlay interface's subnet (reported to the controller) and MTU.
    data_path_subnet: str = ""
    underlay_mtu: int = 1500
    #: How long a task waits for its networks to be built before its prepare is retried.
    attach_timeout: float = 30.0
    #: A pass runs at least this often, to repair drift.
    resync: float = 15.0
    engine_timeout: float = 10.0


class NetworkBuilder:
    """This node's overlay networks; use as `async with NetworkBuilder(...) as builder`."""

    def __init__(self, docker: aiodocker.Docker, settings: BuilderSettings) -> None:
        self._docker = docker
        self.settings = settings
        self._wanted: dict[str, desired.Network] = {}
        self._built: dict[str, desired.Network] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._dns: dict[str, dns.DnsServer] = {}
        #: Source address of a local task -> the upstream DNS servers its spec names.
        self._upstreams: dict[str, tuple[str, ...]] = {}
        self._synced = False
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self.passes = 0

    @property
    def mtu(self) -> int:
        return self.settings.underlay_mtu - desired.VXLAN_OVERHEAD

    async def __aenter__(self) -> NetworkBuilder:
        self._loop = asyncio.create_task(self._run(), name="network-builder")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the loop and the DNS servers; the links, Docker networks and NAT stay for the running containers."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for server in self._dns.values():
            await server.stop()
        self._dns.clear()

    # ---- the assignment set -----------------------------------------------------

    def replace(self, changes: Sequence[dispatcher_pb2.AssignmentChange]) -> None:
        """Take the network items of a COMPLETE set: exactly these are wanted from now on."""
        self._wanted = {}
        self._synced = True
        self.apply(changes)

    def apply(self, changes: Sequence[dispatcher_pb2.AssignmentChange]) -> None:
        """Take network changes (UPDATE with the whole item, or REMOVE)."""
        for change in changes:
            if change.WhichOneof("item") != "network":
                continue
            if change.action == dispatcher_pb2.AssignmentChange.REMOVE:
                self._wanted.pop(change.network.id, None)
                continue
            try:
                self._wanted[change.network.id] = desired.from_item(change.network)
            except ValueError as exc:
                log.error("network %s: unusable item: %s", change.network.name, exc)
        self._wake.set()

    # ---- what the executor asks -------------------------------------------------------

    async def attachments(self, task: objects_pb2.Task) -> list[Attachment]:
        """The task's attachments, once its networks are built here; TemporaryError if they are not in time."""
        out = []
        for a in task.networks:
            ready = self._ready.setdefault(a.network_id, asyncio.Event())
            try:
                async with asyncio.timeout(self.settings.attach_timeout):
                    await ready.wait()
            except TimeoutError:
                raise base.TemporaryError(f"exec: network {a.network_id} is not built on this node yet") from None
            network = self._built.get(a.network_id)
            if network is None:
                raise base.TemporaryError(f"exec: network {a.network_id} is no longer on this node")
            out.append(
                Attachment(
                    network_id=a.network_id,
                    docker_network=engine.docker_name(network),
                    address=a.addresses[0].partition("/")[0] if a.addresses else "",
                    aliases=tuple(a.aliases),
                    dns_server=str(network.address.ip),
                )
            )
        if out:
            self._upstreams[out[0].address] = tuple(task.spec.container.dns.nameservers)
        return out

    def forget(self, task: objects_pb2.Task) -> None:
        """The task's container is gone: its DNS settings go too."""
        for a in task.networks:
            for cidr in a.addresses:
                self._upstreams.pop(cidr.partition("/")[0], None)

    def upstreams(self, source: str) -> Sequence[str]:
        return self._upstreams.get(source) or dns.resolv_conf_servers()

    # ---- the loop ---------------------------------------------------------------

    async def _run(self) -> None:
        retry = backoff.Backoff(base=0.2, cap=5.0)
        while True:
            wait = self.settings.resync
            try:
                ok = await self.reconcile()
            except Exception:  # noqa: BLE001 - the builder must outlive any one failure
                log.exception("network reconcile failed")
                ok = False
            if ok:
                retry.reset()
            else:
                wait = min(wait, retry.next())
            self._wake.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def reconcile(self) -> bool:
        """One pass; True if everything wanted was built (and everything unwanted removed)."""
        self.passes += 1
        wanted = dict(self._wanted)
        ok = True
        async with AsyncIPRoute() as ipr:
            for network in wanted.values():
                try:
                    await self._build(ipr, network)
                except (engine.EngineError, OSError, ValueError) as exc:
                    log.warning("network %s: %s", network.name, exc)
                    ok = False
            try:
                await self._nat([self._built[n] for n in wanted if n in self._built])
            except nat.NatError as exc:
                log.warning("network NAT: %s", exc)
                ok = False
            if self._synced:
                ok = await self._remove_unwanted(ipr, wanted) and ok
        return ok

    async def _build(self, ipr: AsyncIPRoute, network: desired.Network) -> None:
        await links.ensure_links(ipr, network, local=self.settings.data_path_addr, mtu=self.mtu)
        await links.sync_peers(ipr, network)
        await engine.ensure(self._docker, network, self.mtu, self.settings.engine_timeout)
        await links.sync_vips(ipr, network)
        await self._serve_dns(network)
        self._built[network.id] = network
        self._ready.setdefault(network.id, asyncio.Event()).set()

    async def _serve_dns(self, network: desired.Network) -> None:
        if network.ingress:
            return
        zone = dns.Zone(network.name, desired.dns_records(network))
        server = self._dns.get(network.id)
        address = str(network.address.ip)
        if server is not None and server.address != address:
            await server.stop()
            server = None
        if server is None:
            server = dns.DnsServer(address, zone, self.upstreams)
            await server.start()
            self._dns[network.id] = server
        server.zone = zone

    async def _nat(self, networks: list[desired.Network]) -> None:
        if networks:
            await nat.load(desired.ruleset(networks))
        else:
            await nat.clear()
        await nat.allow_forwarding(bool(networks))

    async def _remove_unwanted(self, ipr: AsyncIPRoute, wanted: dict[str, desired.Network]) -> bool:
        ok = True
        for network_id in [n for n in self._built if n not in wanted]:
            del self._built[network_id]
            self._ready.pop(network_id, None)
        for network_id in [n for n in self._dns if n not in wanted]:
            await self._dns.pop(network_id).stop()
        keep = {name for n in wanted.values() for name in (n.bridge, n.vxlan)}
        try:
            found = await engine.ours(self._docker, self.settings.engine_timeout)
        except engine.EngineError as exc:
            log.info("%s; trying again later", exc)
            return False
        for net in found:
            if (net.get("Labels") or {}).get(desired.LABEL_NETWORK) in wanted:
                continue
            try:
                await engine.remove(self._docker, net, self.settings.engine_timeout)
            except engine.EngineError as exc:
                # Most often a container that is still being removed: its links stay until the next pass.
                log.info("%s; trying again later", exc)
                bridge = (net.get("Options") or {}).get(engine.BRIDGE_NAME, "")
                keep.update({bridge, bridge.replace(desired.BRIDGE_PREFIX, desired.VXLAN_PREFIX, 1)})
                ok = False
        for name in sorted(set(await links.ours(ipr)) - keep, key=lambda n: not n.startswith(desired.VXLAN_PREFIX)):
            await links.remove(ipr, name)
        return ok


async def underlay(address: str) -> tuple[str, int]:
    """The subnet (CIDR) and MTU of the interface that holds `address`."""
    async with AsyncIPRoute() as ipr:
        subnet, mtu = await links.underlay(ipr, address)
    return str(subnet), mtu


def data_path_address(listen: str) -> str:
    """The address to carry VXLAN traffic on when none is given: `--listen`'s host, unless it is loopback or any."""
    host = listen.rpartition(":")[0].strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if addr.version != 4 or addr.is_loopback or addr.is_unspecified:
        return ""
    return host
