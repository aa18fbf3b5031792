"""Validation and defaults for networks and for the network fields of services, pure (no store).

Every check raises InvalidArgument with one line naming the object and the
field, before anything is written. What needs the store (does a network
exist, is a port free) is in controller/api/networks.py.
"""

from __future__ import annotations

import ipaddress
import re

from shoal import errors
from shoal.controller import ipam, validation
from shoal.v1 import objects_pb2, types_pb2

#: The routing mesh's network, made by the controller.
INGRESS = "ingress"
#: Names Docker gives its node-local networks: refused, so `docker network ls` on a node stays unambiguous.
RESERVED = frozenset({INGRESS, "bridge", "host", "none", "default"})
DRIVER = "overlay"
MAX_NETWORKS = 32
MAX_ALIASES = 32
MAX_DNS_ENTRIES = 8
#: Docker's range for ingress ports published without a number.
DYNAMIC_PORTS = range(30000, 32768)

_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DNS_OPTION = re.compile(r"^[A-Za-z0-9_-]{1,32}(:[0-9]{1,5})?$")


def check_network_spec(spec: objects_pb2.NetworkSpec) -> None:
    """A name that is a DNS label and not reserved, the overlay driver, a well-formed subnet and gateway."""
    validation.check_name("network", spec.name)
    what = f'network "{spec.name}"'
    if spec.name in RESERVED:
        raise errors.InvalidArgument(f"{what}: the name is reserved")
    if spec.ingress:
        raise errors.InvalidArgument(f"{what}: the ingress network is made by the cluster itself")
    if spec.driver not in ("", DRIVER):
        raise errors.InvalidArgument(f"{what}: unknown driver {spec.driver[:40]!r} (only {DRIVER!r} is supported)")
    validation.check_labels(what, spec.labels)
    if spec.gateway and not spec.subnet:
        raise errors.InvalidArgument(f"{what}: a gateway needs a subnet")
    if spec.subnet:
        subnet = subnet_of(what, spec.subnet)
        if spec.gateway:
            gateway_of(what, spec.gateway, subnet)


def subnet_of(what: str, text: str) -> ipaddress.IPv4Network:
    try:
        return ipam.parse_subnet(text)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{what}: {exc}") from None


def gateway_of(what: str, text: str, subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    try:
        gateway = ipaddress.IPv4Address(text)
    except ValueError:
        raise errors.InvalidArgument(f"{what}: invalid gateway {text[:60]!r}") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise errors.InvalidArgument(f"{what}: gateway {gateway} is not a host address of {subnet}")
    return gateway


def apply_defaults(spec: objects_pb2.NetworkSpec) -> None:
    spec.driver = spec.driver or DRIVER


def check_service_networking(what: str, spec: types_pb2.ServiceSpec) -> None:
    """The network fields of a service: attachments, endpoint mode, ingress ports, DNS settings, hostname."""
    networks = spec.task.networks
    if len(networks) > MAX_NETWORKS:
        raise errors.InvalidArgument(f"{what}: at most {MAX_NETWORKS} networks")
    for attachment in networks:
        if not attachment.target:
            raise errors.InvalidArgument(f"{what}: a network attachment needs a network name or ID")
        if len(attachment.aliases) > MAX_ALIASES:
            raise errors.InvalidArgument(f"{what}: at most {MAX_ALIASES} aliases on network {attachment.target!r}")
        for alias in attachment.aliases:
            if not _DNS_NAME.fullmatch(alias):
                raise errors.InvalidArgument(f"{what}: alias {alias[:80]!r} is not a DNS name")
    endpoint = spec.endpoint
    if endpoint.mode not in types_pb2.EndpointSpec.Mode.values():
        raise errors.InvalidArgument(f"{what}: unknown endpoint mode {endpoint.mode}")
    validation.check_ports(what, endpoint.ports, chosen=True)
    if endpoint.ports and endpoint.mode == types_pb2.EndpointSpec.DNSRR:
        raise errors.InvalidArgument(
            f"{what}: ports published through the routing mesh need endpoint mode vip (use mode=host with dnsrr)"
        )
    host = {(p.published or p.target, p.protocol or "tcp") for p in spec.task.container.ports}
    for p in endpoint.ports:
        if p.published and (p.published, p.protocol or "tcp") in host:
            raise errors.InvalidArgument(f"{what}: port {p.published}/{p.protocol or 'tcp'} is published twice")
    _check_dns(what, spec.task.container)



def _check_dns(what: str, container: types_pb2.ContainerSpec) -> None:
    dns = container.dns
    for field in ("nameservers", "search", "options"):
        if len(getattr(dns, field)) > MAX_DNS_ENTRIES:
            raise errors.InvalidArgument(f"{what}: at most {MAX_DNS_ENTRIES} DNS {field}")
    for server in dns.nameservers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise errors.InvalidArgument(f"{what}: DNS server {server[:60]!r} is not an IP address") from None
    for domain in dns.search:
        if not _DNS_NAME.fullmatch(domain):
            raise errors.InvalidArgument(f"{what}: DNS search domain {domain[:80]!r} is not a DNS name")
    for option in dns.options:
        if not _DNS_OPTION.fullmatch(option):
            raise errors.InvalidArgument(f"{what}: DNS option {option[:60]!r} is not of the form NAME or NAME:N")
    if container.hostname and not _DNS_NAME.fullmatch(container.hostname):
        raise errors.InvalidArgument(f"{what}: hostname {container.hostname[:80]!r} is not a DNS name")


def ingress_ports(spec: types_pb2.ServiceSpec) -> list[tuple[int, str]]:
    """(published, protocol) of the ports a service publishes through the routing mesh."""
    return [(p.published, p.protocol or "tcp") for p in spec.endpoint.ports]


def needs_ingress(spec: types_pb2.ServiceSpec) -> bool:
    return bool(spec.endpoint.ports)


def network_ids(spec: types_pb2.ServiceSpec) -> list[str]:
    """The IDs of the networks a (resolved) spec's tasks join, the ingress network not included."""
    return [a.target for a in spec.task.networks]


def service_networks(spec: types_pb2.ServiceSpec, ingress_id: str) -> list[str]:
    """The IDs of the networks a service's tasks join: its own, then the ingress network if it publishes there."""
    ids = network_ids(spec)
    if needs_ingress(spec) and ingress_id:
        ids.append(ingress_id)
    return ids


def task_name(task: objects_pb2.Task) -> str:
    """`<service>.<slot>.<task id>` (`<service>.<node id>.<task id>` for a global task): its container's name."""
    return f"{task.service_name}.{task.slot or task.node_id}.{task.id}"


def needs_allocation(service: objects_pb2.Service) -> bool:
    """True if the service's tasks get addresses before they can be scheduled."""
    return bool(service.spec.task.networks) or needs_ingress(service.spec)
