"""The agent's volume calls (ListVolumes, RemoveVolume): this node's Shoal volumes, for the controller.

The executor does the engine's part (executor/dockermounts.py); this module
checks the request and maps the outcome to status codes: NOT_FOUND for a
volume this node does not have as Shoal's, FAILED_PRECONDITION while a
container uses it, UNAVAILABLE when the engine does not answer, UNIMPLEMENTED
for an executor without volumes.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import grpc

from shoal.agent.executor import base, dockermounts
from shoal.v1 import agent_pb2, types_pb2

#: The engine's volume name rule: also keeps a name from reaching any other engine URL.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


@runtime_checkable
class VolumeExecutor(Protocol):
    """An executor whose engine keeps volumes (the Docker executor)."""

    async def list_volumes(self, node_id: str, name: str = "") -> list[types_pb2.Volume]: ...

    async def remove_volume(self, node_id: str, name: str) -> None: ...


class Volumes:
    """ListVolumes and RemoveVolume over one executor, for one node."""

    def __init__(self, executor: object, node_id: str) -> None:
        self._executor = executor if isinstance(executor, VolumeExecutor) else None
        self._node_id = node_id

    async def _usable(self, name: str, context: grpc.aio.ServicerContext[Any, Any]) -> VolumeExecutor:
        if self._executor is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this node's executor keeps no volumes")
        if name and not _NAME.fullmatch(name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid volume name {name[:80]!r}")
        assert self._executor is not None
        return self._executor

    async def list(
        self, request: agent_pb2.ListNodeVolumesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.ListNodeVolumesResponse:
        executor = await self._usable(request.name, context)
        try:
            found = await executor.list_volumes(self._node_id, request.name)
        except base.ExecutorError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return agent_pb2.ListNodeVolumesResponse(volumes=found)

    async def remove(
        self, request: agent_pb2.RemoveNodeVolumeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.RemoveNodeVolumeResponse:
        executor = await self._usable(request.name, context)
        if not request.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a volume name is required")
        try:
            await executor.remove_volume(self._node_id, request.name)
        except dockermounts.VolumeNotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except dockermounts.VolumeInUse as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except base.TemporaryError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except base.ExecutorError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return agent_pb2.RemoveNodeVolumeResponse()
