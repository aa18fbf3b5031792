"""A task's mounts on the Docker Engine: the Engine's Mount objects, and the named volumes they need.

`engine_mounts` maps the spec's mounts to `HostConfig.Mounts` entries
(container_config calls it; the secret and config bind mounts are added
after). `ensure_volumes`, before the container is created, creates every named
volume the task mounts that the engine does not have yet, with the spec's
driver, options and labels plus `shoal.node.id`: that label is how the agent
knows a volume is Shoal's (volume ls/rm). Named volumes outlive their tasks,
so a replacement on the same node finds the data; an anonymous volume (no
source) is made by the engine for the container and removed with it.

A bind mount's source must exist on the node: the engine refuses the create
otherwise ("bind source path does not exist"), which rejects the task.

`list_volumes` and `remove_volume` serve the agent's ListVolumes and
RemoveVolume calls.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiodocker

from shoal.agent.executor import base
from shoal.v1 import objects_pb2, types_pb2

Mount = types_pb2.Mount
_TYPES = {Mount.VOLUME: "volume", Mount.BIND: "bind", Mount.TMPFS: "tmpfs"}


def volume_labels(spec_labels: Any, node_id: str) -> dict[str, str]:
    """The spec's volume labels plus Shoal's own (which wins)."""
    return {**dict(spec_labels), base.LABEL_NODE_ID: node_id}


def engine_mount(mount: types_pb2.Mount, node_id: str) -> dict[str, Any]:
    """One Mount object of the Engine API."""
    out: dict[str, Any] = {"Type": _TYPES[mount.type], "Target": mount.target, "ReadOnly": mount.readonly}
    if mount.type == Mount.VOLUME:
        if mount.source:
            out["Source"] = mount.source
        v = mount.volume
        options: dict[str, Any] = {"NoCopy": v.nocopy, "Labels": volume_labels(v.labels, node_id)}
        if v.driver or v.driver_opts:
            options["DriverConfig"] = {"Name": v.driver or "local", "Options": dict(v.driver_opts)}
        out["VolumeOptions"] = options
    elif mount.type == Mount.BIND:
        out["Source"] = mount.source
        if mount.bind.propagation:
            out["BindOptions"] = {"Propagation": mount.bind.propagation}
    else:
        tmpfs: dict[str, int] = {}
        if mount.tmpfs.size_bytes:
            tmpfs["SizeBytes"] = mount.tmpfs.size_bytes
        if mount.tmpfs.mode:
            tmpfs["Mode"] = mount.tmpfs.mode
        if tmpfs:
            out["TmpfsOptions"] = tmpfs
    return out


def engine_mounts(task: objects_pb2.Task) -> list[dict[str, Any]]:
    """`HostConfig.Mounts` for the task's own mounts (secrets and configs are added by the caller)."""
    return [engine_mount(m, task.node_id) for m in task.spec.container.mounts]


async def ensure_volumes(docker: aiodocker.Docker, task: objects_pb2.Task, timeout: float) -> None:
    """Create each named volume the task mounts that the engine does not have (an existing one is used as is)."""
    for mount in task.spec.container.mounts:
        if mount.type != Mount.VOLUME or not mount.source:
            continue
        async with asyncio.timeout(timeout):
            try:
                await docker._query_json(f"volumes/{mount.source}")
                continue
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise
            v = mount.volume
            body = {
                "Name": mount.source,
                "Driver": v.driver or "local",
                "DriverOpts": dict(v.driver_opts),
                "Labels": volume_labels(v.labels, task.node_id),
            }
            # The engine's create is idempotent for a name it has: two tasks racing here both succeed.
            await docker._query_json("volumes/create", "POST", data=json.dumps(body))


async def _users(docker: aiodocker.Docker) -> dict[str, list[str]]:
    """The names of the containers (running or not) that use each volume."""
    users: dict[str, list[str]] = {}
    for container in await docker._query_json("containers/json", params={"all": "1"}):
        name = (container.get("Names") or ["?"])[0].lstrip("/")
        for mount in container.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(mount["Name"], []).append(name)
    return users


def _volume(raw: dict[str, Any], users: dict[str, list[str]]) -> types_pb2.Volume:
    return types_pb2.Volume(
        name=raw.get("Name", ""),
        driver=raw.get("Driver", ""),
        mountpoint=raw.get("Mountpoint", ""),
        labels=raw.get("Labels") or {},
        options=raw.get("Options") or {},
        created_at=raw.get("CreatedAt", ""),
        scope=raw.get("Scope", ""),
        containers=sorted(users.get(raw.get("Name", ""), [])),
    )


async def list_volumes(docker: aiodocker.Docker, node_id: str, name: str = "") -> list[types_pb2.Volume]:
    """The volumes labelled with this node (only `name`, when given), with the containers using each."""
    filters: dict[str, list[str]] = {"label": [f"{base.LABEL_NODE_ID}={node_id}"]}
    if name:
        filters["name"] = [name]
    found = await docker._query_json("volumes", params={"filters": json.dumps(filters)})
    # The engine's name filter matches substrings: keep the exact name only.
    raws = [v for v in found.get("Volumes") or [] if not name or v.get("Name") == name]
    users = await _users(docker) if raws else {}
    return sorted((_volume(v, users) for v in raws), key=lambda v: v.name)


async def remove_volume(docker: aiodocker.Docker, node_id: str, name: str) -> None:
    """Remove a Shoal volume of this node: NotFound if there is none, InUse while a container uses it."""
    found = await list_volumes(docker, node_id, name)
    if not found:
        raise VolumeNotFound(f'no Shoal volume "{name}" on this node')
    if found[0].containers:
        raise VolumeInUse(f'volume "{name}" is in use by {", ".join(found[0].containers)}')
    try:
        await docker._query_json(f"volumes/{name}", "DELETE")
    except aiodocker.DockerError as exc:
        if exc.status == 409:  # a container took it meanwhile
            raise VolumeInUse(f'volume "{name}" is in use: {exc.message}') from exc
        if exc.status == 404:
            raise VolumeNotFound(f'no Shoal volume "{name}" on this node') from exc
        raise


class VolumeNotFound(base.PermanentError):
    """No Shoal volume of that name on this node."""


class VolumeInUse(base.PermanentError):
    """A container (running or not) still uses the volume."""
