"""Control API: nodes. Nodes are created only by the CA's Join; here they are read, changed and removed."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from shoal import errors
from shoal.controller import validation
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers, check_version
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.keys import Kind
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)


class NodeHandlers(Handlers):
    """GetNode, ListNodes, UpdateNode, RemoveNode."""

    @handle
    async def GetNode(  # noqa: N802
        self, request: control_pb2.GetNodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetNodeResponse:
        cache = self._leadership.require().cache
        return control_pb2.GetNodeResponse(node=refs.resolve("node", request.ref, cache.nodes, cache.node_by_name))

    @handle
    async def ListNodes(  # noqa: N802
        self, request: control_pb2.ListNodesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListNodesResponse:
        cache = self._leadership.require().cache
        return control_pb2.ListNodesResponse(nodes=sorted(cache.nodes.values(), key=lambda n: n.name))

    @handle
    async def UpdateNode(  # noqa: N802
        self, request: control_pb2.UpdateNodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.UpdateNodeResponse:
        term = self._leadership.require()
        node = refs.resolve("node", request.ref, term.cache.nodes, term.cache.node_by_name)
        validation.check_node_spec(node.name, request.spec)
        check_version("node", node.name, request.version, node.meta.version)
        new = objects_pb2.Node()
        new.CopyFrom(node)
        new.spec.CopyFrom(request.spec)
        try:
            await term.writer.commit([w.Put(new, request.version)])
        except errors.Conflict:
            raise errors.Conflict(f'node "{node.name}" changed since it was read; read it again') from None
        return control_pb2.UpdateNodeResponse(node=term.cache.nodes[node.id])

    @handle
    async def RemoveNode(  # noqa: N802
        self, request: control_pb2.RemoveNodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveNodeResponse:
        term = self._leadership.require()
        node = refs.resolve("node", request.ref, term.cache.nodes, term.cache.node_by_name)
        if node.status.state == types_pb2.NodeStatus.READY and not request.force:
            raise errors.FailedPrecondition(
                f'node "{node.name}" is READY: stop its agent first, or use --force to remove it anyway'
            )
        ops: list[w.Op] = [w.delete(node), w.Claim(self._keys.name(Kind.NODE, node.name), None, None)]
        cluster = term.cache.cluster
        if cluster is not None and node.id not in cluster.removed_nodes:
            # Its certificate is refused from now on: it cannot come back without joining again.
            denied = objects_pb2.Cluster()
            denied.CopyFrom(cluster)
            denied.removed_nodes.append(node.id)
            ops.append(w.put(denied))
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.Conflict(f'node "{node.name}" changed while being removed; try again') from None
        log.info("node %s (%s) removed", node.name, node.id)
        return control_pb2.RemoveNodeResponse()

