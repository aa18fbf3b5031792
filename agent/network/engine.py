"""The engine side of a network: a Docker network of the bridge driver, bound to the network's own bridge.

Its gateway is the node's address on the network (so each node's containers
route through their own node, and the node's DNS server is on it), its
subnet the network's, so that a container gets exactly the address the
controller chose. It carries the label `shoal.network.id`; the agent removes
every such network it no longer wants (once no container is attached).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiodocker

from shoal.agent.network import desired

log = logging.getLogger(__name__)

BRIDGE_NAME = "com.docker.network.bridge.name"
_MTU = "com.docker.network.driver.mtu"


class EngineError(Exception):
    """The engine refused, or could not be reached; the builder tries again later."""


def config(network: desired.Network, mtu: int) -> dict[str, Any]:
    """The create-network body for `network` on this node."""
    options = {BRIDGE_NAME: network.bridge, _MTU: str(mtu)}
    if not network.internal:
        options["com.docker.network.bridge.enable_ip_masquerade"] = "true"
    return {
        "Name": docker_name(network),
        "Driver": "bridge",
        "CheckDuplicate": True,
        "Internal": network.internal,
        "Attachable": True,
        "IPAM": {
            "Driver": "default",
            "Config": [{"Subnet": str(network.subnet), "Gateway": str(network.address.ip)}],
        },
        "Options": options,
        "Labels": {desired.LABEL_NETWORK: network.id},
    }


def docker_name(network: desired.Network) -> str:
    """What `docker network ls` on the node calls it: the cluster's name for it."""
    return network.name


def _matches(found: dict[str, Any], want: dict[str, Any]) -> bool:
    ipam = ((found.get("IPAM") or {}).get("Config") or [{}])[0]
    options = found.get("Options") or {}
    return bool(
        found.get("Name") == want["Name"]
        and ipam.get("Subnet") == want["IPAM"]["Config"][0]["Subnet"]
        and ipam.get("Gateway") == want["IPAM"]["Config"][0]["Gateway"]
        and bool(found.get("Internal")) == want["Internal"]
        and options.get(BRIDGE_NAME) == want["Options"][BRIDGE_NAME]
    )


async def ours(docker: aiodocker.Docker, timeout: float) -> list[dict[str, Any]]:
    """Every Docker network this agent made (label `shoal.network.id`)."""
    try:
        async with asyncio.timeout(timeout):
            return await docker.networks.list(filters={"label": [desired.LABEL_NETWORK]})
    except (aiodocker.DockerError, OSError, TimeoutError) as exc:
        raise EngineError(f"listing networks: {exc}") from exc


async def ensure(docker: aiodocker.Docker, network: desired.Network, mtu: int, timeout: float) -> str:
    """The Docker network of `network`, made (or made again, if it differs) as `config` says; its ID."""
    want = config(network, mtu)
    for found in await ours(docker, timeout):
        if (found.get("Labels") or {}).get(desired.LABEL_NETWORK) != network.id:
            continue
        if _matches(found, want):
            return str(found["Id"])
        log.info("network %s: its Docker network differs from the item; making it again", network.name)
        await remove(docker, found, timeout)
    try:
        async with asyncio.timeout(timeout):
            made = await docker.networks.create(want)
    except aiodocker.DockerError as exc:
        if exc.status == 409:
            raise EngineError(
                f"network {network.name}: a Docker network named {want['Name']!r} that is not Shoal's exists on "
                "this node"
            ) from exc
        raise EngineError(f"network {network.name}: creating its Docker network: {exc.message}") from exc
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"network {network.name}: creating its Docker network: {exc}") from exc
    log.info("network %s: made Docker network %s on bridge %s", network.name, want["Name"], network.bridge)
    return str(made.id)


async def remove(docker: aiodocker.Docker, found: dict[str, Any], timeout: float) -> None:
    """Remove one of our Docker networks; EngineError while a container is still attached."""
    try:
        async with asyncio.timeout(timeout):
            await docker._query_json(f"networks/{found['Id']}", method="DELETE")
    except aiodocker.DockerError as exc:
        if exc.status == 404:
            return
        raise EngineError(f"removing Docker network {found.get('Name')}: {exc.message}") from exc
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"removing Docker network {found.get('Name')}: {exc}") from exc
    log.info("removed Docker network %s", found.get("Name"))
