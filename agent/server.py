"""The agent's own gRPC server: node-local operations the controller proxies (task logs, inspect).

It answers only for tasks this agent runs (the worker's runners) and says
NOT_FOUND for anything else, so the controller can tell "wrong node" from
"engine trouble" (UNAVAILABLE).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from shoal import authz, logs, metrics_http, tls
from shoal.agent import credentials as credentials_
from shoal.agent import runner as runner_
from shoal.agent import volumes as volumes_
from shoal.agent.executor import base
from shoal.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

_STREAMS = {"stdout": agent_pb2.LogLine.STDOUT, "stderr": agent_pb2.LogLine.STDERR}


class RunnerLookup(Protocol):
    """The worker as the server sees it."""

    def runner(self, task_id: str) -> runner_.Runner | None:
        """The runner of a task on this node, if any."""
        ...


class AgentService(agent_pb2_grpc.AgentServicer):
    """`shoal.v1.Agent` over the worker's runners."""

    def __init__(self, worker: RunnerLookup, volumes: volumes_.Volumes | None = None) -> None:
        self._worker = worker
        self._volumes = volumes

    async def _controller(self, task_id: str, context: grpc.aio.ServicerContext[Any, Any]) -> base.Controller:
        runner = self._worker.runner(task_id)
        if runner is None or runner.controller is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f'task "{task_id}" is not on this node')
        assert runner is not None and runner.controller is not None  # abort raised otherwise
        return runner.controller

    async def TaskLogs(
        self, request: agent_pb2.TaskLogsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[agent_pb2.LogLine]:
        logs.bind(task_id=request.task_id)
        ctlr = await self._controller(request.task_id, context)
        if not isinstance(ctlr, base.ControllerLogs):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this executor keeps no logs")
        assert isinstance(ctlr, base.ControllerLogs)
        since = request.since.ToDatetime(tzinfo=datetime.UTC) if request.HasField("since") else None
        try:
            async for entry in ctlr.logs(follow=request.follow, tail=request.tail, since=since):
                line = agent_pb2.LogLine(task_id=request.task_id, stream=_STREAMS[entry.stream], data=entry.data)
                if entry.timestamp is not None:
                    line.timestamp.FromDatetime(entry.timestamp)
                yield line
        except base.TemporaryError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except base.PermanentError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    async def InspectTask(
        self, request: agent_pb2.InspectTaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.InspectTaskResponse:
        logs.bind(task_id=request.task_id)
        ctlr = await self._controller(request.task_id, context)
        try:
            state = await ctlr.inspect()
        except base.TemporaryError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except base.PermanentError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        if state is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f'task "{request.task_id}" has no container')
        assert state is not None
        return agent_pb2.InspectTaskResponse(container_json=json.dumps(dict(state.raw)))

    # ---- storage (issue 18) ----

    async def ListVolumes(
        self, request: agent_pb2.ListNodeVolumesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.ListNodeVolumesResponse:
        if self._volumes is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this agent serves no volumes")
        assert self._volumes is not None
        return await self._volumes.list(request, context)

    async def RemoveVolume(
        self, request: agent_pb2.RemoveNodeVolumeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.RemoveNodeVolumeResponse:
        if self._volumes is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this agent serves no volumes")
        assert self._volumes is not None
        return await self._volumes.remove(request, context)


@contextlib.asynccontextmanager
async def serve(
    listen: str,
    worker: RunnerLookup,
    *,
    grace: float,
    credentials: credentials_.Credentials,
    volumes: volumes_.Volumes | None = None,
) -> AsyncIterator[str]:
    """Serve the Agent API on `listen`, to controllers only, while the context is open; yields the bound HOST:PORT."""
    host, _ = metrics_http.split_hostport(listen)
    serving = tls.ServingCertificate(credentials.bundle)
    credentials.on_renew.append(serving.replace)
    cluster_id = credentials.bundle.identity.cluster_id
    # Without so_reuseport=0, gRPC binds with SO_REUSEPORT and a second agent on the same port goes unnoticed.
    server = grpc.aio.server(
        interceptors=[authz.Authorizer(lambda: cluster_id, authz.AGENT_RULES)],
        options=(("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 1024 * 1024)),
    )
    agent_pb2_grpc.add_AgentServicer_to_server(AgentService(worker, volumes), server)
    try:
        port = server.add_secure_port(listen, serving.credentials())
    except RuntimeError:
        port = 0
    if not port:
        raise OSError(f"cannot listen on {listen}: address in use or not available")
    await server.start()
    try:
        yield f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    finally:
        await server.stop(grace)
