"""The dispatcher of one leadership term, and the gRPC servicer agents call.

`Dispatcher.run` routes the cache's task and node changes to the open
assignment streams, marks nodes DOWN when their heartbeats stop, and flushes
status reports. The servicer checks the caller's identity and session on
every call and hands the work to the current term's dispatcher.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NoReturn, cast

import grpc
from google.protobuf import timestamp_pb2

from shoal import authz, errors, ids, logs, units
from shoal.controller import metrics
from shoal.controller.context import Leadership
from shoal.controller.dispatcher.assignments import AssignmentStream, FileSource
from shoal.controller.dispatcher.heartbeat import Heartbeats
from shoal.controller.dispatcher.ingest import StatusIngest
from shoal.controller.rpcerrors import handle
from shoal.controller.settings import DispatcherSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache, Subscription
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2, types_pb2

log = logging.getLogger(__name__)

READY = types_pb2.NodeStatus.READY
DOWN = types_pb2.NodeStatus.DOWN

#: A node may register at most this many times per window (SwarmKit: 3 per 8 s),
#: so a crash-looping agent cannot flood etcd with node writes.
REGISTRATIONS_PER_WINDOW = 3
REGISTRATION_WINDOW = 8.0

#: How late the heartbeat check may run before its lateness is added to every node's deadline.
LAG_TOLERANCE = 0.5


@dataclasses.dataclass
class Session:
    """One agent's registration; ended by replacement, node removal or the end of the term."""

    id: str
    node_id: str
    ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    reason: BaseException | None = None
    stream: AssignmentStream | None = None

    def end(self, reason: BaseException) -> None:
        self.reason = reason
        self.ended.set()
        if self.stream is not None:
            self.stream.close(reason)


class Dispatcher:
    """Sessions, liveness, assignments and status ingestion for one leadership term."""

    def __init__(
        self,
        *,
        cache: Cache,
        writer: w.Writer,
        keys: Keys,
        settings: DispatcherSettings,
        controllers: Callable[[], list[str]],
        files: FileSource | None = None,
    ) -> None:
        self._files = files
        self._cache = cache
        self._writer = writer
        self._keys = keys
        self.settings = settings
        self._controllers = controllers
        self.heartbeats = Heartbeats(settings.heartbeat_period, settings.grace, settings.max_heartbeats_per_second)
        self.ingest = StatusIngest(cache, writer, settings)
        self._sessions: dict[str, Session] = {}
        self._registrations: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    async def run(self) -> NoReturn:
        """Route changes, check heartbeats and flush status, until cancelled."""
        subscription = self._cache.subscribe()
        # A new leader cannot know who heartbeated its predecessor: every live
        # node gets a longer grace to find us before it is declared DOWN.
        self.heartbeats.watch(
            [node.id for node in self._cache.nodes.values() if node.status.state != DOWN],
            self.settings.failover_grace_multiplier,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._route(subscription), name="dispatcher-route")
                tg.create_task(self._check_heartbeats(), name="dispatcher-heartbeats")
                tg.create_task(self.ingest.run(), name="dispatcher-ingest")
        finally:
            subscription.close()
            for session in list(self._sessions.values()):
                session.end(errors.Unavailable("the controller is no longer the leader"))
            self._sessions.clear()
            metrics.SESSIONS.set(0)
        raise AssertionError("unreachable")

    async def _route(self, subscription: Subscription) -> NoReturn:
        async for batch in subscription:
            for change in batch.changes:
                if change.kind is Kind.TASK:
                    old, new = cast(objects_pb2.Task | None, change.old), cast(objects_pb2.Task | None, change.new)
                    for node_id in {old.node_id if old else "", new.node_id if new else ""}:
                        session = self._sessions.get(node_id)
                        if session is not None and session.stream is not None:
                            session.stream.change(old, new)
                elif change.kind is Kind.NODE and change.deleted:
                    node_id = cast(objects_pb2.Node, change.obj).id
                    self.heartbeats.forget(node_id)
                    session = self._sessions.pop(node_id, None)
                    if session is not None:
                        session.end(errors.NotFound("this node was removed from the cluster"))
        raise AssertionError("unreachable")

    async def _check_heartbeats(self) -> NoReturn:
        interval = min(1.0, self.heartbeats.base_period / 4)
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            lag = loop.time() - due
            if lag > LAG_TOLERANCE:
                # This event loop was too busy to run on time, so it may not have read heartbeats that
                # arrived on time either: a node is DOWN when it stops beating, not when we fall behind.
                self.heartbeats.extend(lag)
                metrics.HEARTBEAT_CHECK_LAG.observe(lag)
                log.warning("heartbeat check ran %.1fs late; every deadline moves by as much", lag)
            arriving = self.heartbeats.arriving()
            late = self.heartbeats.expired()
            if late and not arriving:
                # Too few heartbeats reach us for a missed one to mean a dead node: look again a period on.
                for node_id in late:
                    self.heartbeats.beat(node_id, self.heartbeats.period)
                metrics.NODES_DOWN_DEFERRED.inc(len(late))
                log.warning(
                    "%d nodes missed their heartbeat deadline, but so few heartbeats reach this controller "
                    "that the fault is likely its own; none is marked DOWN yet",
                    len(late),
                )
            elif late:
                await self._mark_down(late)

    async def _mark_down(self, node_ids: list[str]) -> None:
        ops, names = [], []
        for node_id in node_ids:
            session = self._sessions.pop(node_id, None)
            if session is not None:
                session.end(errors.Unavailable("heartbeat deadline passed"))
            node = self._cache.nodes.get(node_id)
            if node is None or node.status.state == DOWN:
                continue
            new = objects_pb2.Node()
            new.CopyFrom(node)
            new.status.state = DOWN
            new.status.message = "heartbeat failure"
            units.stamp_now(new.status.timestamp)
            ops.append(w.put(new))
            names.append(node.name)
        if ops:
            landed = await self._writer.commit_each(ops, urgent=True)
            for ok, name, op in zip(landed, names, ops, strict=True):
                if ok:
                    metrics.NODES_DOWN.inc()
                    log.warning("node %s is DOWN: no heartbeat for %.1fs", name, self.heartbeats.grace)
                else:
                    # It changed meanwhile (maybe it re-registered); look again next pass.
                    self.heartbeats.beat(op.obj.id, 0.0)  # type: ignore[attr-defined]
        metrics.SESSIONS.set(len(self._sessions))

    # ---- called by the servicer ---------------------------------------------

    def _rate_limit(self, node_id: str) -> None:
        now = time.monotonic()
        times = self._registrations[node_id]
        while times and times[0] < now - REGISTRATION_WINDOW:
            times.popleft()
        if len(times) >= REGISTRATIONS_PER_WINDOW:
            raise errors.Unavailable("node is registering too often; back off and try again")
        times.append(now)

    async def register(self, node_id: str, request: dispatcher_pb2.SessionRequest) -> tuple[Session, objects_pb2.Node]:
        """Mark the node READY with its latest description, replacing any earlier session.

        Nodes are created only when they join (the CA's Join); a certificate
        whose node is gone must join again.
        """
        self._rate_limit(node_id)
        node = self._cache.nodes.get(node_id)
        if node is None:
            raise errors.NotFound(f"node {node_id} is not part of the cluster; join it again with a token")
        if node.name != request.node_name:
            raise errors.InvalidArgument(f'node {node_id} joined as "{node.name}", not "{request.node_name}"')
        new = objects_pb2.Node()
        new.CopyFrom(node)
        # The description is the agent's to report; the spec (labels, availability) is not.
        new.description.CopyFrom(request.description)
        new.status.CopyFrom(
            types_pb2.NodeStatus(
                state=READY,
                addr=request.addr,
                metrics_addr=request.metrics_addr,
                timestamp=_now(),
                message="registered",
            )
        )
        try:
            await self._writer.commit([w.put(new)])
        except errors.Conflict:
            raise errors.Unavailable("the node changed during registration; try again") from None
        old = self._sessions.get(node_id)
        if old is not None:
            old.end(errors.Unavailable("replaced by a newer session of the same node"))
        session = Session(ids.new_id(), node_id)
        self._sessions[node_id] = session
        self.heartbeats.beat(node_id)
        metrics.SESSIONS.set(len(self._sessions))
        metrics.REGISTRATIONS.inc()
        with logs.context(node_id=node_id):
            log.info("node %s registered", request.node_name)
        return session, self._cache.nodes[node_id]

    def end_session(self, session: Session) -> None:
        """The agent closed its session stream: forget the session (liveness is left to heartbeats)."""
        if self._sessions.get(session.node_id) is session:
            del self._sessions[session.node_id]
            metrics.SESSIONS.set(len(self._sessions))

    def session(self, node_id: str, session_id: str) -> Session:
        """The live session with this ID for this node, or NotFound (register again)."""
        session = self._sessions.get(node_id)
        if session is None or session.id != session_id:
            raise errors.NotFound("session not found or replaced; register again")
        return session

    def heartbeat(self, node_id: str, session_id: str) -> float:
        """Record a heartbeat; returns the period until the next one."""
        self.session(node_id, session_id)
        self.heartbeats.beat(node_id)
        return self.heartbeats.next_period(node_id)

    def first_message(self, session: Session, node: objects_pb2.Node) -> dispatcher_pb2.SessionMessage:
        return dispatcher_pb2.SessionMessage(
            session_id=session.id,
            node=node,
            controllers=self._controllers(),
            heartbeat_period=units.to_duration(self.heartbeats.next_period(session.node_id)),
        )

    def assigned(self, node_id: str) -> list[objects_pb2.Task]:
        """Every task the cache has on this node (the stream keeps those in the set)."""
        return self._cache.tasks_of_node(node_id)

    def open_stream(self, session: Session) -> AssignmentStream:
        """Attach a new assignment stream to the session, replacing an older one."""
        if session.stream is not None:
            session.stream.close(errors.Unavailable("replaced by a newer assignments stream"))
        session.stream = AssignmentStream(session.node_id, self.settings, self._files)
        return session.stream

    def report(self, node_id: str, updates: Sequence[dispatcher_pb2.TaskStatusUpdate]) -> None:
        """Queue status reports; all are refused (nothing queued) if any is for another node's task."""
        for u in updates:
            task = self._cache.tasks.get(u.task_id)
            if task is not None and task.node_id != node_id:
                raise errors.PermissionDenied(f"cannot update task {u.task_id}: it is not assigned to this node")
        for u in updates:
            self.ingest.add(u.task_id, u.status)

    def answer(self, node_id: str, request: dispatcher_pb2.ReportRequest) -> dispatcher_pb2.ReportResponse:
        """The answer to one message of a node's Report stream.

        A session that is not (or no longer) the node's raises NotFound, which ends the stream:
        the agent registers again. Refused statuses are answered as such and the stream goes on,
        since a task may leave a node while its last statuses are on their way.
        """
        which = request.WhichOneof("report")
        if which == "heartbeat":
            period = units.to_duration(self.heartbeat(node_id, request.heartbeat.session_id))
            return dispatcher_pb2.ReportResponse(heartbeat=dispatcher_pb2.HeartbeatResponse(period=period))
        if which == "statuses":
            # A report is as good a sign of life as a heartbeat: it counts as one, and the answer says when
            # the next heartbeat is due, so a node that reports often sends few (half the messages on the
            # stream were heartbeats while 1,000 nodes filled up, bench/placement.py).
            period = units.to_duration(self.heartbeat(node_id, request.statuses.session_id))
            try:
                self.report(node_id, request.statuses.updates)
            except errors.PermissionDenied as exc:
                return dispatcher_pb2.ReportResponse(refused=str(exc))
            return dispatcher_pb2.ReportResponse(
                statuses=dispatcher_pb2.UpdateTaskStatusResponse(heartbeat_period=period)
            )
        raise errors.InvalidArgument("a report must hold a heartbeat or task statuses")


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    units.stamp_now(ts)
    return ts


class DispatcherServicer(dispatcher_pb2_grpc.DispatcherServicer):
    """The Dispatcher API; every call is answered by the current term's dispatcher."""

    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership
        self.current: Dispatcher | None = None

    def _dispatcher(self) -> Dispatcher:
        self._leadership.require()
        if self.current is None:
            raise errors.Unavailable("the dispatcher is starting; try again")
        return self.current

    @handle
    async def Session(  # noqa: N802
        self, request: dispatcher_pb2.SessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[dispatcher_pb2.SessionMessage]:
        caller = authz.node_caller()
        dispatcher = self._dispatcher()
        session, node = await dispatcher.register(caller.id, request)
        try:
            yield dispatcher.first_message(session, node)
            await session.ended.wait()
            if session.reason is not None:
                raise session.reason
        finally:
            dispatcher.end_session(session)

    @handle
    async def Assignments(  # noqa: N802
        self, request: dispatcher_pb2.AssignmentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[dispatcher_pb2.AssignmentsMessage]:
        caller = authz.node_caller()
        dispatcher = self._dispatcher()
        session = dispatcher.session(caller.id, request.session_id)
        stream = dispatcher.open_stream(session)
        async for message in stream.messages(dispatcher.assigned(caller.id)):
            yield message

    @handle
    async def Report(  # noqa: N802
        self, requests: AsyncIterator[dispatcher_pb2.ReportRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[dispatcher_pb2.ReportResponse]:
        caller = authz.node_caller()
        async for request in requests:
            # The term may have ended since the last message: then the stream ends as a call would.
            yield self._dispatcher().answer(caller.id, request)
