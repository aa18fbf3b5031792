"""The kernel side of a network, over netlink (pyroute2): its bridge, VXLAN device, forwarding entries, addresses.

Each function makes one piece match what is wanted and leaves it alone when
it already does, so calling them again is cheap and a restarted agent keeps
the links (and the containers on them) it made before.
"""

from __future__ import annotations

import ipaddress
import logging
import pathlib
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from shoal.agent.network import desired

log = logging.getLogger(__name__)

#: The all-zero MAC: a forwarding entry with it sends broadcasts and unknown unicast to that peer.
FLOOD = "00:00:00:00:00:00"
_ENOENT, _ENODEV = 2, 19


async def _index(ipr: AsyncIPRoute, name: str) -> int | None:
    found = await ipr.link_lookup(ifname=name)
    return found[0] if found else None


async def _get_link(ipr: AsyncIPRoute, index: int) -> list[Any]:
    # pyroute2 answers "get" with a list, and "dump" with an async iterator.
    found = await ipr.link("get", index=index)
    return list(found) if isinstance(found, list | tuple) else [link async for link in found]


async def _vxlan_matches(ipr: AsyncIPRoute, index: int, vni: int, local: str) -> bool:
    links = await _get_link(ipr, index)
    info = links[0].get_attr("IFLA_LINKINFO") if links else None
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    if data is None:
        return False
    return bool(data.get_attr("IFLA_VXLAN_ID") == vni and data.get_attr("IFLA_VXLAN_LOCAL") == local)


async def ensure_links(ipr: AsyncIPRoute, network: desired.Network, *, local: str, mtu: int) -> None:
    """The bridge and the VXLAN device of `network`, enslaved and up, with `mtu`."""
    bridge = await _index(ipr, network.bridge)
    if bridge is None:
        await ipr.link("add", ifname=network.bridge, kind="bridge")
        bridge = await _index(ipr, network.bridge)
        log.info("network %s: made bridge %s", network.name, network.bridge)
    vxlan = await _index(ipr, network.vxlan)
    if vxlan is not None and not await _vxlan_matches(ipr, vxlan, network.vni, local):
        await ipr.link("del", index=vxlan)
        vxlan = None
    if vxlan is None:
        await ipr.link(
            "add",
            ifname=network.vxlan,
            kind="vxlan",
            vxlan_id=network.vni,
            vxlan_local=local,
            vxlan_port=desired.VXLAN_PORT,
            vxlan_learning=1,
            # pyroute2 turns outer UDP checksums on; the inner frames carry their own, as with Docker's overlay.
            vxlan_udp_csum=0,
        )
        vxlan = await _index(ipr, network.vxlan)
        log.info("network %s: made VXLAN device %s (VNI %d)", network.name, network.vxlan, network.vni)
    await ipr.link("set", index=vxlan, master=bridge, mtu=mtu, state="up")
    await ipr.link("set", index=bridge, mtu=mtu, state="up")
    _disable_ipv6(network.bridge)
    _disable_ipv6(network.vxlan)


def _disable_ipv6(ifname: str) -> None:
    # Overlays are IPv4 here; without this every bridge and container port sends IPv6 router
    # solicitations and duplicate-address probes to every peer.
    path = pathlib.Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")
    try:
        if path.read_text().strip() != "1":
            path.write_text("1")
    except OSError:
        pass


async def sync_peers(ipr: AsyncIPRoute, network: desired.Network) -> None:
    """One flooding entry per peer on the VXLAN device, none for a node that left."""
    index = await _index(ipr, network.vxlan)
    if index is None:
        return
    have = set()
    async for entry in await ipr.fdb("dump", ifindex=index):
        if entry.get("NDA_LLADDR") == FLOOD and entry.get("NDA_DST"):
            have.add(entry.get("NDA_DST"))
    for peer in sorted(set(network.peers) - have):
        await ipr.fdb("append", ifindex=index, lladdr=FLOOD, dst=peer)
    for peer in sorted(have - set(network.peers)):
        await ipr.fdb("del", ifindex=index, lladdr=FLOOD, dst=peer)


async def bridge_addresses(ipr: AsyncIPRoute, name: str) -> list[ipaddress.IPv4Interface]:
    """The IPv4 addresses on a link."""
    index = await _index(ipr, name)
    if index is None:
        return []
    found = []
    async for msg in await ipr.addr("dump", index=index, family=2):
        found.append(ipaddress.IPv4Interface(f"{msg.get('address')}/{msg.get('prefixlen')}"))
    return found


async def sync_vips(ipr: AsyncIPRoute, network: desired.Network) -> None:
    """Every virtual IP of the network as a /32 on its bridge (so the node answers for it); no other /32s."""
    index = await _index(ipr, network.bridge)
    if index is None:
        return
    have = {a.ip for a in await bridge_addresses(ipr, network.bridge) if a.network.prefixlen == 32}
    want = {ipaddress.IPv4Address(v) for v in network.vips}
    for addr in sorted(want - have):
        await ipr.addr("add", index=index, address=str(addr), prefixlen=32)
    for addr in sorted(have - want):
        try:
            await ipr.addr("del", index=index, address=str(addr), prefixlen=32)
        except NetlinkError as exc:
            if exc.code != _ENOENT:
                raise


async def remove(ipr: AsyncIPRoute, name: str) -> None:
    """Delete a link if it exists."""
    index = await _index(ipr, name)
    if index is None:
        return
    try:
        await ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code not in (_ENOENT, _ENODEV):
            raise
    log.info("removed link %s", name)


async def ours(ipr: AsyncIPRoute) -> list[str]:
    """Names of the links this agent makes (bridges and VXLAN devices named after a VNI)."""
    names = []
    async for link in await ipr.link("dump"):
        name = link.get("ifname") or ""
        for prefix in (desired.BRIDGE_PREFIX, desired.VXLAN_PREFIX):
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                names.append(name)
    return names


async def underlay(ipr: AsyncIPRoute, address: str) -> tuple[ipaddress.IPv4Network, int]:
    """The subnet and MTU of the interface that holds `address`; LookupError if none does."""
    wanted = ipaddress.IPv4Address(address)
    async for msg in await ipr.addr("dump", family=2):
        if ipaddress.IPv4Address(msg.get("address")) == wanted:
            iface = ipaddress.IPv4Interface(f"{wanted}/{msg.get('prefixlen')}")
            links = await _get_link(ipr, msg["index"])
            return iface.network, int(links[0].get("mtu") or 1500)
    raise LookupError(f"no interface of this host has the address {address}")
