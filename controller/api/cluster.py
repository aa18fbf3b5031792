"""Control API: the cluster itself: who leads, and the join tokens."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from shoal import errors, pki
from shoal.controller import members
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.v1 import control_pb2, objects_pb2

log = logging.getLogger(__name__)


class ClusterHandlers(Handlers):
    """GetClusterInfo, GetJoinTokens, RotateJoinToken."""

    @handle
    async def GetClusterInfo(  # noqa: N802
        self, request: control_pb2.GetClusterInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetClusterInfoResponse:
        term = self._leadership.require()
        election = self._leadership.election
        etcd = self._leadership.etcd
        controllers = [control_pb2.ControllerInfo(id=election.me.controller_id, addr=election.me.addr, leader=True)]
        etcd_members = []
        if etcd is not None:
            for m in await members.list_members(etcd, self._keys):
                if m.controller_id != election.me.controller_id:
                    controllers.append(control_pb2.ControllerInfo(id=m.controller_id, addr=m.addr))
            etcd_members = [
                control_pb2.EtcdMemberInfo(
                    name=h.name, client_urls=h.client_urls, healthy=h.healthy, leader=h.leader, error=h.error
                )
                for h in await etcd.member_health()
            ]
        return control_pb2.GetClusterInfoResponse(
            cluster=term.cache.cluster,
            controllers=controllers,
            etcd_endpoints=self._leadership.settings.etcd_endpoints,
            etcd_members=etcd_members,
        )

    @handle
    async def GetJoinTokens(  # noqa: N802
        self, request: control_pb2.GetJoinTokensRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetJoinTokensResponse:
        ca = self._leadership.require().cache.ca
        if ca is None:
            raise errors.Unavailable("the cluster's CA is not loaded yet")
        return control_pb2.GetJoinTokensResponse(worker=ca.worker_token, controller=ca.controller_token)

    @handle
    async def RotateJoinToken(  # noqa: N802
        self, request: control_pb2.RotateJoinTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetJoinTokensResponse:
        if request.role not in ("worker", "controller"):
            raise errors.InvalidArgument(f"unknown role {request.role!r}: use worker or controller")
        term = self._leadership.require()
        ca = term.cache.ca
        if ca is None:
            raise errors.Unavailable("the cluster's CA is not loaded yet")
        new = objects_pb2.CertificateAuthority()
        new.CopyFrom(ca)
        setattr(new, f"{request.role}_token", pki.new_token(ca.root_cert_pem))
        try:
            await term.writer.commit([w.put(new)])
        except errors.Conflict:
            raise errors.Conflict("the join tokens changed meanwhile; try again") from None
        # Joined nodes are not disturbed: they authenticate with certificates, not tokens.
        log.info("rotated the %s join token", request.role)
        current = term.cache.ca or new
        return control_pb2.GetJoinTokensResponse(worker=current.worker_token, controller=current.controller_token)
