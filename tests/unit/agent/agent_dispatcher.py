"""A scripted fake of our own Dispatcher service, served by a real in-process grpc.aio server.

It is served with mutual TLS behind the controller's `authz.Authorizer`
(`agent_tls.serving_controller`), so it knows its caller as the controller
does: by the CN of the client certificate (`authz.node_caller()`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from agent_tls import serving_controller

from shoal import authz, errors, tls, units
from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2

COMPLETE = dispatcher_pb2.AssignmentsMessage.COMPLETE
INCREMENTAL = dispatcher_pb2.AssignmentsMessage.INCREMENTAL


def complete(
    results_in: int,
    tasks: Sequence[objects_pb2.Task] = (),
    files: Sequence[dispatcher_pb2.AssignmentChange] = (),
) -> dispatcher_pb2.AssignmentsMessage:
    return dispatcher_pb2.AssignmentsMessage(
        type=COMPLETE,
        results_in=results_in,
        changes=[*files, *(dispatcher_pb2.AssignmentChange(task=t) for t in tasks)],
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
        self.calls: list[tuple[str, str]] = []  # (method, node ID: the CN of the caller's certificate)
        self.session_requests: list[dispatcher_pb2.SessionRequest] = []
        self.session_id = ""  # the latest session opened, of any node
        self.sessions: dict[str, str] = {}  # node ID -> its current session
        self.sessions_opened = 0
        self.heartbeats = 0
        self.heartbeat_period = 0.02
        self.heartbeat_errors: list[grpc.StatusCode] = []
        #: Seconds each heartbeat takes to be answered (a busy controller).
        self.heartbeat_delay = 0.0
        #: If set, a status report counts as a heartbeat and puts the next off by this many seconds.
        self.reports_beat_for: float | None = None
        self.redirect_to = ""
        self.controllers: list[str] = []
        self.session_pushes: asyncio.Queue[dispatcher_pb2.SessionMessage | None] = asyncio.Queue()
        self.assignment_scripts: list[list[dispatcher_pb2.AssignmentsMessage]] = []
        self.assignment_opens = 0
        self.status_updates: list[tuple[str, str, int]] = []  # (session, task, state)
        #: Task IDs whose statuses are refused, as for tasks assigned to another node.
        self.not_ours: set[str] = set()
        self.on_session: Callable[[], None] | None = None
        #: Node IDs whose certificates the Authorizer refuses, as for a node removed from the cluster.
        self.removed: set[str] = set()

    def _record(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.calls.append((method, authz.node_caller().id))

    async def _check_session(self, session_id: str, context: grpc.aio.ServicerContext) -> None:
        # Per node, as a controller keeps them: two nodes' sessions must not replace each other.
        if session_id != self.sessions.get(authz.node_caller().id):
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
        node_id = self.calls[-1][1]
        self.sessions[node_id] = self.session_id
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

    async def Report(
        self, requests: AsyncIterator[dispatcher_pb2.ReportRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[dispatcher_pb2.ReportResponse]:
        self._record("Report", context)
        async for request in requests:
            if request.HasField("heartbeat"):
                await self._check_session(request.heartbeat.session_id, context)
                if self.heartbeat_errors:
                    await context.abort(self.heartbeat_errors.pop(0), "scripted heartbeat error")
                await asyncio.sleep(self.heartbeat_delay)
                self.heartbeats += 1
                yield dispatcher_pb2.ReportResponse(
                    heartbeat=dispatcher_pb2.HeartbeatResponse(period=units.to_duration(self.heartbeat_period))
                )
                continue
            await self._check_session(request.statuses.session_id, context)
            updates = request.statuses.updates
            theirs = [u.task_id for u in updates if u.task_id in self.not_ours]
            if theirs:
                yield dispatcher_pb2.ReportResponse(refused=f"cannot update task {theirs[0]}: not this node's")
                continue
            self.status_updates.extend((request.statuses.session_id, u.task_id, u.status.state) for u in updates)
            answer = dispatcher_pb2.UpdateTaskStatusResponse()
            if self.reports_beat_for is not None:
                answer.heartbeat_period.CopyFrom(units.to_duration(self.reports_beat_for))
            yield dispatcher_pb2.ReportResponse(statuses=answer)

    def states_of(self, task_id: str) -> list[int]:
        return [state for _, t, state in self.status_updates if t == task_id]


@contextlib.asynccontextmanager
async def serving(dispatcher: FakeDispatcher, bundle: tls.Bundle) -> AsyncIterator[str]:
    """Serve `dispatcher` with mutual TLS as a controller with `bundle`, on a free loopback port; yields HOST:PORT."""
    async with serving_controller(bundle, dispatcher=dispatcher, removed=dispatcher.removed.__contains__) as bound:
        yield bound.addr
