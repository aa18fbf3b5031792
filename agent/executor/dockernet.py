"""How a task's network attachments appear in the Engine's container config.

The network builder says which Docker network and address each attachment
is (`builder.Attachment`); this module only writes that into the
create-container body (the first network, whose node address is also the
container's resolver) and the bodies that connect the others before the
container starts (an Engine before API 1.44 takes one network at create).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal.agent.network.builder import Attachment
from shoal.v1 import objects_pb2


def endpoint(a: Attachment) -> dict[str, Any]:
    config: dict[str, Any] = {"IPAMConfig": {"IPv4Address": a.address}}
    if a.aliases:
        config["Aliases"] = list(a.aliases)
    return config


def apply(config: dict[str, Any], task: objects_pb2.Task, attachments: Sequence[Attachment]) -> None:
    """Join the first network at create: its mode, address and resolver; DNS search and options from the spec."""
    if not attachments:
        return
    first = attachments[0]
    host = config["HostConfig"]
    host["NetworkMode"] = first.docker_network
    # Docker's embedded resolver answers the container and forwards the rest here: the node's DNS server.
    host["Dns"] = [first.dns_server]
    dns = task.spec.container.dns
    if dns.search:
        host["DnsSearch"] = list(dns.search)
    if dns.options:
        host["DnsOptions"] = list(dns.options)
    config["NetworkingConfig"] = {"EndpointsConfig": {first.docker_network: endpoint(first)}}


def missing(attachments: Sequence[Attachment], inspected: dict[str, Any]) -> list[Attachment]:
    """The attachments a created container is not connected to yet (from its inspect document)."""
    joined = set(((inspected.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    return [a for a in attachments if a.docker_network not in joined]
