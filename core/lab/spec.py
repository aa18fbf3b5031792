"""What a lab is made of, and where everything in it lives.

Every host is a network namespace `<prefix>-<host>` on the bridge
`<prefix>0`, with an address in the lab's /24: the bridge (the machine
itself, where the registry and Prometheus run) is .1, etcd members .11-.19,
controllers .21-.29, nodes .101-.199. Each daemon uses the same port on its
own host. Names and addresses derive from the prefix and subnet only, so a
crashed lab can be found and removed even without its record.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib

ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
CONTROLLER_PORT, CONTROLLER_METRICS_PORT = 4240, 9420
#: Each controller's Docker Engine API (TLS, admin certificate), on Docker's own TLS port.
DOCKER_API_PORT = 2376
AGENT_PORT, AGENT_METRICS_PORT = 4250, 9430
REGISTRY_PORT = 5000
#: The name every lab etcd member's certificate carries, checked by controllers.
ETCD_SERVER_NAME = "etcd.shoal.lab"


@dataclasses.dataclass(frozen=True)
class Host:
    """One host of the lab: its name, role, namespace and address."""

    name: str
    role: str  # "etcd", "controller" or "node"
    netns: str
    ip: str
    index: int

    def addr(self, port: int) -> str:
        return f"{self.ip}:{port}"


@dataclasses.dataclass(frozen=True)
class LabSpec:
    """A lab's shape and its names; everything else is derived."""

    root: pathlib.Path
    nodes: int = 3
    controllers: int = 1
    etcd_members: int = 1
    prefix: str = "shoal"
    subnet: str = "10.77.0.0/24"
    heartbeat_period: str = "5s"

    def __post_init__(self) -> None:
        if not 1 <= self.etcd_members <= 9 or not 1 <= self.controllers <= 9 or not 1 <= self.nodes <= 99:
            raise ValueError("a lab has 1-9 etcd members, 1-9 controllers and 1-99 nodes")
        if len(self.prefix) > 8 or not self.prefix.isalnum():
            raise ValueError("the lab prefix is at most 8 letters or digits (it names interfaces)")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def ip(self, n: int) -> str:
        return str(self.network.network_address + n)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}0"

    @property
    def gateway(self) -> str:
        """The machine's own address on the lab bridge."""
        return self.ip(1)

    def _host(self, role: str, index: int, offset: int, stem: str) -> Host:
        name = f"{stem}-{index}"
        return Host(name, role, f"{self.prefix}-{name}", self.ip(offset + index), index)

    @property
    def etcd(self) -> list[Host]:
        return [self._host("etcd", i, 10, "etcd") for i in range(1, self.etcd_members + 1)]

    @property
    def controller_hosts(self) -> list[Host]:
        return [self._host("controller", i, 20, "ctl") for i in range(1, self.controllers + 1)]

    @property
    def node_hosts(self) -> list[Host]:
        return [self._host("node", i, 100, "lab") for i in range(1, self.nodes + 1)]

    @property
    def hosts(self) -> list[Host]:
        return [*self.etcd, *self.controller_hosts, *self.node_hosts]

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name!r} in this lab")

    @property
    def controller_addrs(self) -> list[str]:
        return [h.addr(CONTROLLER_PORT) for h in self.controller_hosts]

    @property
    def etcd_urls(self) -> list[str]:
        return [f"https://{h.addr(ETCD_CLIENT_PORT)}" for h in self.etcd]

    @property
    def registry(self) -> str:
        return f"{self.gateway}:{REGISTRY_PORT}"

    @property
    def image(self) -> str:
        """The demo image, as every host pulls it."""
        return f"{self.registry}/shoal/busybox:1"

    def dir(self, host: Host | str) -> pathlib.Path:
        return self.root / (host if isinstance(host, str) else host.name)

    def docker_host(self, host: Host) -> str:
        return f"unix://{self.dir(host) / 'docker.sock'}"
