"""Control API: volumes. The Shoal volumes on each node, read from (and removed through) its agent.

Volumes are node-local engine volumes; the store knows nothing of them. So,
as for logs, the leader dials each node's agent at the address it registered,
with its controller certificate, checking that it reached that node
(logs.AgentLogs does the dialing), a few nodes at a time with a short
deadline. A node that is DOWN, has no agent address, or does not answer is
named in `unreachable` and the others are listed; simulated (hollow) nodes
have no engine and are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from shoal import errors
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers
from shoal.controller.api.logs import AgentLogs, NodeUnavailable, unavailable_reason
from shoal.controller.rpcerrors import handle
from shoal.v1 import agent_pb2, agent_pb2_grpc, control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)

#: Deadline of one node's answer: a listing must not wait on a dead node.
CALL_TIMEOUT = 5.0
#: Nodes asked at once.
CONCURRENCY = 16

#: gRPC codes of an agent's refusal and the error each one becomes.
_REFUSALS: dict[grpc.StatusCode, type[errors.ShoalError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
}


class AgentVolumes(AgentLogs):
    """The agents' volume calls, over the same verified channels as their logs."""

    async def list(self, node: objects_pb2.Node, name: str) -> list[types_pb2.Volume]:
        channel = await self._ready(node)
        try:
            reply = await agent_pb2_grpc.AgentStub(channel).ListVolumes(
                agent_pb2.ListNodeVolumesRequest(name=name), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            raise NodeUnavailable(f"its agent answered {exc.code().name}: {exc.details()}") from None
        return list(reply.volumes)

    async def remove(self, node: objects_pb2.Node, name: str) -> None:
        channel = await self._ready(node)
        try:
            await agent_pb2_grpc.AgentStub(channel).RemoveVolume(
                agent_pb2.RemoveNodeVolumeRequest(name=name), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            refusal = _REFUSALS.get(exc.code())
            if refusal is not None:
                raise refusal(f"node {node.name}: {exc.details()}") from None
            raise errors.Unavailable(f"node {node.name} cannot be asked: {exc.code().name}: {exc.details()}") from None


def _askable(node: objects_pb2.Node) -> bool:
    return node.description.executor != "hollow"


class VolumeHandlers(Handlers):
    """ListVolumes, RemoveVolume (they dial agents with LogsHandlers' `_agent_bundle`)."""

    def _dialer(self) -> AgentVolumes:
        bundle = getattr(self, "_agent_bundle", None)
        if bundle is None:
            raise errors.FailedPrecondition("this controller has no certificate to reach agents with")
        return AgentVolumes(bundle)

    @handle
    async def ListVolumes(  # noqa: N802
        self, request: control_pb2.ListVolumesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListVolumesResponse:
        cache = self._leadership.require().cache
        if request.node_refs:
            nodes = [refs.resolve("node", r, cache.nodes, cache.node_by_name) for r in request.node_refs]
        else:
            nodes = sorted((n for n in cache.nodes.values() if _askable(n)), key=lambda n: n.name)
        reply = control_pb2.ListVolumesResponse()
        dialer = self._dialer()
        limit = asyncio.Semaphore(CONCURRENCY)

        async def ask(node: objects_pb2.Node) -> None:
            reason = unavailable_reason(node)
            if not reason:
                async with limit:
                    try:
                        found = await dialer.list(node, request.name)
                    except NodeUnavailable as exc:
                        reason = str(exc)
            if reason:
                reply.unreachable.add(node_id=node.id, node_name=node.name, error=reason)
                return
            for volume in found:
                volume.node_id, volume.node_name = node.id, node.name
                reply.volumes.append(volume)

        try:
            await asyncio.gather(*(ask(n) for n in nodes))
        finally:
            await dialer.close()
        reply.volumes.sort(key=lambda v: (v.node_name, v.name))
        reply.unreachable.sort(key=lambda u: u.node_name)
        return reply

    @handle
    async def RemoveVolume(  # noqa: N802
        self, request: control_pb2.RemoveVolumeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveVolumeResponse:
        cache = self._leadership.require().cache
        if not request.name or not request.node_ref:
            raise errors.InvalidArgument("remove volume: give the volume's name and its node")
        node = refs.resolve("node", request.node_ref, cache.nodes, cache.node_by_name)
        reason = unavailable_reason(node)
        if reason:
            raise errors.Unavailable(f"node {node.name} cannot be asked: {reason}")
        dialer = self._dialer()
        try:
            await dialer.remove(node, request.name)
        except NodeUnavailable as exc:
            raise errors.Unavailable(f"node {node.name} cannot be asked: {exc}") from None
        finally:
            await dialer.close()
        log.info("volume %s removed from node %s (%s)", request.name, node.name, node.id)
        return control_pb2.RemoveVolumeResponse()
