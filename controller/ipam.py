"""IP address management, pure: subnets from address pools, VNIs, and the addresses of one subnet.

Everything here works on what the caller says is taken (read from the store),
so it keeps no state of its own beyond one subnet's `Addresses`, which the
allocator builds from the store.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Collection, Iterable, Sequence

from shoal import errors

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

#: VXLAN network identifiers handed out (24 bits; the low ones are left to other tools, as Docker does).
VNI_FIRST = 4096
VNI_LAST = (1 << 24) - 1
#: Subnets between /8 and /29: a /29 holds 5 addresses beyond its network, broadcast and gateway.
MIN_PREFIX, MAX_PREFIX = 8, 29


@dataclasses.dataclass(frozen=True)
class Pools:
    """Where subnets come from when a network is created without one (Docker's --default-addr-pool)."""

    networks: tuple[IPv4Network, ...] = (IPv4Network("10.0.0.0/8"),)
    size: int = 24

    @classmethod
    def parse(cls, cidrs: Sequence[str], size: int) -> Pools:
        """Pools from the controller's flags; ValueError names the bad one."""
        nets = tuple(parse_subnet(c) for c in cidrs) or cls.networks
        for net in nets:
            if not net.prefixlen <= size <= MAX_PREFIX:
                raise ValueError(f"pool size /{size} does not fit in pool {net} (use /{net.prefixlen}-/{MAX_PREFIX})")
        return cls(nets, size)


def parse_subnet(text: str) -> IPv4Network:
    """An IPv4 network in CIDR form whose host bits are zero; ValueError says what is wrong."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid subnet {text[:60]!r}: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise ValueError(f"subnet {text!r} is not IPv4")
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise ValueError(f"subnet {text!r} must be between /{MIN_PREFIX} and /{MAX_PREFIX}")
    return net


def overlapping(subnet: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first of `taken` that shares an address with `subnet`."""
    return next((t for t in taken if t.overlaps(subnet)), None)


def pick_subnet(pools: Pools, taken: Sequence[IPv4Network]) -> IPv4Network:
    """The first subnet of the pools' size that overlaps nothing taken."""
    ordered = sorted(taken, key=lambda n: int(n.network_address))
    for pool in pools.networks:
        step = 1 << (32 - pools.size)
        start, end = int(pool.network_address), int(pool.broadcast_address)
        candidate = start
        while candidate + step - 1 <= end:
            net = IPv4Network((candidate, pools.size))
            clash = overlapping(net, ordered)
            if clash is None:
                return net
            # Jump past the clash, to the next boundary of the pool's size.
            past = int(clash.broadcast_address) + 1
            candidate = max(candidate + step, (past + step - 1) // step * step)
    raise errors.FailedPrecondition(
        f"the default address pools ({', '.join(map(str, pools.networks))}) have no free /{pools.size} left"
    )


def pick_vni(used: Collection[int]) -> int:
    """The next VNI after the highest in use (a freed one is not reused at once), wrapping round."""
    top = max(used, default=VNI_FIRST - 1)
    if top < VNI_LAST:
        return max(top + 1, VNI_FIRST)
    free = next((v for v in range(VNI_FIRST, VNI_LAST + 1) if v not in used), None)
    if free is None:
        raise errors.FailedPrecondition("every VXLAN network identifier is in use")
    return free


def first_host(subnet: IPv4Network) -> IPv4Address:
    """The subnet's first usable address: the default gateway, as Docker reserves it."""
    return subnet.network_address + 1


def with_prefix(addr: IPv4Address, subnet: IPv4Network) -> str:
    """ "10.0.1.5/24": how stored objects write an address."""
    return f"{addr}/{subnet.prefixlen}"


def address_of(cidr: str) -> IPv4Address:
    """The address part of "10.0.1.5/24"."""
    return IPv4Address(cidr.partition("/")[0])


class Addresses:
    """The used and free addresses of one subnet.

    Hands out the next free address after the last one it gave, round the
    subnet, so an address just freed (whose node may still be letting go of
    it) is the last to come back.
    """

    def __init__(self, subnet: IPv4Network, reserved: Iterable[IPv4Address] = ()) -> None:
        self.subnet = subnet
        self._first = int(subnet.network_address) + 1
        self._last = int(subnet.broadcast_address) - 1
        self._used: set[int] = {int(a) for a in reserved}
        self._cursor = self._first - 1

    def __contains__(self, addr: IPv4Address) -> bool:
        return int(addr) in self._used

    @property
    def free(self) -> int:
        """How many addresses are left."""
        taken = sum(1 for a in self._used if self._first <= a <= self._last)
        return self._last - self._first + 1 - taken

    def use(self, addr: IPv4Address) -> None:
        """Mark an address taken (read from the store); the cursor moves past it."""
        value = int(addr)
        self._used.add(value)
        if self._first <= value <= self._last:
            self._cursor = max(self._cursor, value)

    def release(self, addr: IPv4Address) -> None:
        self._used.discard(int(addr))

    def allocate(self) -> IPv4Address | None:
        """The next free address after the cursor (None when the subnet is full)."""
        span = self._last - self._first + 1
        for step in range(1, span + 1):
            value = self._first + (self._cursor - self._first + step) % span
            if value not in self._used:
                self._used.add(value)
                self._cursor = value
                return IPv4Address(value)
        return None
