"""What the node should have, derived from the network items: pure, so it is tested without a kernel.

`Network` is one item as the builder uses it; `dns_records` the names its DNS
server answers; `ruleset` the whole nftables text for every network (the
builder replaces the node's tables with it in one transaction).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Sequence

from shoal.v1 import dispatcher_pb2

#: Interface names: the bridge and VXLAN device of a network are named after its VNI (15 characters at most).
BRIDGE_PREFIX, VXLAN_PREFIX = "shb", "shv"
#: The IANA VXLAN port.
VXLAN_PORT = 4789
#: Outer IPv4, UDP, VXLAN and inner Ethernet headers.
VXLAN_OVERHEAD = 50
#: The label the agent puts on the Docker networks it makes.
LABEL_NETWORK = "shoal.network.id"
#: The nftables tables the agent owns (family ip: NAT; family bridge: ARP filtering).
TABLE = "shoal"
#: Before Docker's own NAT (iptables-nft's nat chains run at priority -100 and 100).
DNAT_PRIORITY, SNAT_PRIORITY = -101, 99


@dataclasses.dataclass(frozen=True)
class Backend:
    task_id: str
    name: str
    address: str


@dataclasses.dataclass(frozen=True)
class Service:
    id: str
    name: str
    aliases: tuple[str, ...]
    vip: str
    backends: tuple[Backend, ...]
    #: Routing-mesh ports (ingress network only): (published, target, protocol).
    ports: tuple[tuple[int, int, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Network:
    """One overlay network as this node builds it."""

    id: str
    name: str
    vni: int
    subnet: ipaddress.IPv4Network
    #: This node's address on the network (its containers' gateway, its DNS server, its NAT source).
    address: ipaddress.IPv4Interface
    internal: bool
    ingress: bool
    peers: tuple[str, ...]
    services: tuple[Service, ...]

    @property
    def bridge(self) -> str:
        return f"{BRIDGE_PREFIX}{self.vni}"

    @property
    def vxlan(self) -> str:
        return f"{VXLAN_PREFIX}{self.vni}"

    @property
    def vips(self) -> tuple[str, ...]:
        """The virtual IPs this node answers on the network (none on the ingress network: nobody dials those)."""
        if self.ingress:
            return ()
        return tuple(sorted({s.vip for s in self.services if s.vip}))


def from_item(item: dispatcher_pb2.NetworkAssignment) -> Network:
    """The builder's view of one network item; ValueError if it is malformed."""
    services = tuple(
        Service(
            id=s.service_id,
            name=s.name,
            aliases=tuple(s.aliases),
            vip=s.vip,
            backends=tuple(Backend(t.task_id, t.name, t.address) for t in s.tasks),
            ports=tuple((p.published, p.target, p.protocol or "tcp") for p in s.ports),
        )
        for s in item.services
    )
    return Network(
        id=item.id,
        name=item.name,
        vni=item.vni,
        subnet=ipaddress.IPv4Network(item.subnet),
        address=ipaddress.IPv4Interface(item.address),
        internal=item.internal,
        ingress=item.ingress,
        peers=tuple(sorted({p.underlay for p in item.peers if p.underlay})),
        services=services,
    )


def dns_records(network: Network) -> dict[str, tuple[str, ...]]:
    """Lower-case names (no trailing dot) -> IPv4 addresses, as the network's DNS server answers them.

    `SERVICE`, `SERVICE.NETWORK` and each alias: the virtual IP (vip mode) or
    the running tasks (dnsrr); `tasks.SERVICE` (and `.NETWORK`): the running
    tasks; each task by its container name. The ingress network serves none.
    """
    if network.ingress:
        return {}
    records: dict[str, tuple[str, ...]] = {}
    net = network.name.lower()
    for s in network.services:
        tasks = tuple(b.address for b in s.backends)
        answer = (s.vip,) if s.vip else tasks
        for name in (s.name, *s.aliases):
            name = name.lower()
            records[name] = answer
            records[f"{name}.{net}"] = answer
        records[f"tasks.{s.name.lower()}"] = tasks
        records[f"tasks.{s.name.lower()}.{net}"] = tasks
        for b in s.backends:
            records[b.name.lower()] = (b.address,)
    return records


def _dnat(addresses: Sequence[str]) -> str:
    """A DNAT to one of `addresses` (each "A" or "A . PORT"), chosen at random per connection."""
    if len(addresses) == 1:
        # A concatenation ("A . PORT") is for maps; a single target is written "A:PORT".
        return f"dnat ip to {addresses[0].replace(' . ', ':')}"
    choices = ", ".join(f"{n} : {a}" for n, a in enumerate(addresses))
    return f"dnat ip to numgen random mod {len(addresses)} map {{ {choices} }}"


def _vip_rules(network: Network) -> list[str]:
    if network.ingress:
        return []
    rules = []
    for s in sorted(network.services, key=lambda s: s.vip):
        backends = sorted({b.address for b in s.backends}, key=lambda a: ipaddress.IPv4Address(a))
        if s.vip and backends:
            rules.append(f'iifname "{network.bridge}" ip daddr {s.vip} {_dnat(backends)}')
    return rules


def _mesh_rules(network: Network) -> list[str]:
    rules = []
    for s in network.services:
        backends = sorted({b.address for b in s.backends}, key=lambda a: ipaddress.IPv4Address(a))
        for published, target, proto in s.ports:
            if backends:
                targets = [f"{a} . {target}" for a in backends]
                rules.append(f"fib daddr type local {proto} dport {published} {_dnat(targets)}")
    return rules


def ruleset(networks: Iterable[Network]) -> str:
    """The nftables script that replaces the agent's tables with exactly what `networks` need ("" for none)."""
    nets = sorted(networks, key=lambda n: n.vni)
    if not nets:
        return ""
    pre: list[str] = []
    out: list[str] = []
    post: list[str] = []
    arp: list[tuple[str, str]] = []
    for n in nets:
        pre += _vip_rules(n)
        if n.ingress:
            mesh = _mesh_rules(n)
            pre += mesh
            out += mesh
            # Traffic the mesh sends into the network leaves with this node's address, so replies come back here.
            post.append(f'oifname "{n.bridge}" ct status dnat ip saddr != {n.subnet} snat to {n.address.ip}')
        if n.vips:
            arp.append((n.vxlan, ", ".join(n.vips)))
    lines = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        *_chain("prerouting", "nat", "prerouting", DNAT_PRIORITY, pre),
        *_chain("output", "nat", "output", DNAT_PRIORITY, out),
        *_chain("postrouting", "nat", "postrouting", SNAT_PRIORITY, post),
        "}",
        # A virtual IP is an address of every node's bridge: only the node's own may answer its containers' ARP.
        f"table bridge {TABLE}",
        f"delete table bridge {TABLE}",
        f"table bridge {TABLE} {{",
        *_chain(
            "arp_out",
            "filter",
            "forward",
            0,
            [f'oifname "{v}" arp operation request arp daddr ip {{ {a} }} drop' for v, a in arp],
        ),
        *_chain(
            "arp_in",
            "filter",
            "prerouting",
            0,
            [f'iifname "{v}" arp operation request arp daddr ip {{ {a} }} drop' for v, a in arp],
        ),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _chain(name: str, kind: str, hook: str, priority: int, rules: Sequence[str]) -> list[str]:
    return [
        f"  chain {name} {{",
        f"    type {kind} hook {hook} priority {priority}; policy accept;",
        *(f"    {r}" for r in rules),
        "  }",
    ]


def teardown_script() -> str:
    """The nftables script that removes the agent's tables (whether or not they exist)."""
    return (
        "\n".join(
            [f"table ip {TABLE}", f"delete table ip {TABLE}", f"table bridge {TABLE}", f"delete table bridge {TABLE}"]
        )
        + "\n"
    )

