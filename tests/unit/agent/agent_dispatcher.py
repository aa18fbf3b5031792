"""A scripted fake of our own Dispatcher service, served by a real in-process grpc.aio server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from shoal import errors, identity, units
from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2

COMPLETE = dispatcher_pb2.AssignmentsMessage.COMPLETE
INCREMENTAL = dispatcher_pb2.AssignmentsMessage.INCREMENTAL


def complete(results_in: int, tasks: Sequence[objects_pb2.Task] = ()) -> dispatcher_pb2.AssignmentsMessage:
    return dispatcher_pb2.AssignmentsMessage(
        type=COMPLETE,
        results_in=results_in,
        changes=[dispatcher_pb2.AssignmentChange(task=t) for t in tasks],
    )


def incremental(
    applies_to: int, results_in: int, *changes: dispatcher_pb2.AssignmentChange
) -> dispatcher_pb2.AssignmentsMessage:
    return dispatcher_pb2.AssignmentsMessage(
        type=INCREMENTAL, applies_to=applies_to, results_in=results_in, changes=changes
    )


class FakeDispatcher(dispatcher_pb2_grpc.DispatcherServicer):
    """Records every call; tests script assignment streams, errors and redirects."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []  # (method, node ID from metadata)
        self.session_requests: list[dispatcher_pb2.SessionRequest] = []
        self.session_id = ""
        self.sessions_opened = 0
        self.heartbeats = 0
        self.heartbeat_period = 0.02
        self.heartbeat_errors: list[grpc.StatusCode] = []
        self.redirect_to = ""
        self.controllers: list[str] = []
        self.session_pushes: asyncio.Queue[dispatcher_pb2.SessionMessage | None] = asyncio.Queue()
        self.assignment_scripts: list[list[dispatcher_pb2.AssignmentsMessage]] = []
        self.assignment_opens = 0
        self.status_updates: list[tuple[str, str, int]] = []  # (session, task, state)
        self.on_session: Callable[[], None] | None = None

    def _record(self, method: str, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        node_id = metadata.get(identity.NODE_ID_METADATA_KEY)
        self.calls.append((method, node_id if isinstance(node_id, str) else None))

    async def _check_session(self, session_id: str, context: grpc.aio.ServicerContext) -> None:
        if session_id != self.session_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"session {session_id!r} is not current")

    async def Session(
        self, request: dispatcher_pb2.SessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[dispatcher_pb2.SessionMessage]:
        self._record("Session", context)
        if self.on_session is not None:
            self.on_session()
        if self.redirect_to:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "not the leader",
                trailing_metadata=((errors.LEADER_METADATA_KEY, self.redirect_to),),
            )
        self.session_requests.append(request)
        self.sessions_opened += 1
        self.session_id = f"session-{self.sessions_opened}"
        node_id = self.calls[-1][1] or ""
        yield dispatcher_pb2.SessionMessage(
            session_id=self.session_id,
            node=objects_pb2.Node(id=node_id, name=request.node_name),
            controllers=self.controllers,
            heartbeat_period=units.to_duration(self.heartbeat_period),
        )
        while True:
            message = await self.session_pushes.get()
            if message is None:
                return
            yield message

    async def Heartbeat(
        self, request: dispatcher_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> dispatcher_pb2.HeartbeatResponse:
        self._record("Heartbeat", context)
        await self._check_session(request.session_id, context)
        if self.heartbeat_errors:
            await context.abort(self.heartbeat_errors.pop(0), "scripted heartbeat error")
        self.heartbeats += 1
        return dispatcher_pb2.HeartbeatResponse(period=units.to_duration(self.heartbeat_period))

    async def Assignments(
        self, request: dispatcher_pb2.AssignmentsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[dispatcher_pb2.AssignmentsMessage]:
        self._record("Assignments", context)
        await self._check_session(request.session_id, context)
        self.assignment_opens += 1
        script = self.assignment_scripts.pop(0) if self.assignment_scripts else [complete(1)]
        for message in script:
            yield message
        await asyncio.Event().wait()  # keep the stream open until the agent goes away

    async def UpdateTaskStatus(
        self, request: dispatcher_pb2.UpdateTaskStatusRequest, context: grpc.aio.ServicerContext
    ) -> dispatcher_pb2.UpdateTaskStatusResponse:
        self._record("UpdateTaskStatus", context)
        await self._check_session(request.session_id, context)
        self.status_updates.extend((request.session_id, u.task_id, u.status.state) for u in request.updates)
        return dispatcher_pb2.UpdateTaskStatusResponse()

    def states_of(self, task_id: str) -> list[int]:
        return [state for _, t, state in self.status_updates if t == task_id]


@contextlib.asynccontextmanager
async def serving(dispatcher: FakeDispatcher) -> AsyncIterator[str]:
    """Serve `dispatcher` on a free loopback port; yields HOST:PORT."""
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    dispatcher_pb2_grpc.add_DispatcherServicer_to_server(dispatcher, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
