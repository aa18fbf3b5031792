"""One registration round with the controller's dispatcher (SwarmKit's agent/session.go).

`Session.run(channel)` opens `Dispatcher.Session`; the first message, due
within the open timeout, carries the session ID, the Node object and the
heartbeat period. Then `Report` opens (one stream for heartbeats and status
reports, see reports.py) and five loops run in one TaskGroup:

- reports: reads the Report stream's answers; its end ends the session;
- heartbeat: a heartbeat at once, then every period the answer names;
- assignments: `Assignments`, first a COMPLETE set, then INCREMENTAL changes
  chained by `applies_to`/`results_in`; a gap reopens the stream for a fresh
  COMPLETE set. Messages go to the worker;
- listen: the rest of the Session stream (controller list, node updates);
  its end means the session is over;
- report: the reporter sends task statuses through the Report stream.

Any error ends the whole session, and `run` raises it (a single exception,
not a group) for the agent to decide where to reconnect. Who this node is,
the controller reads from the channel's client certificate; every heartbeat and
report waits for its answer for a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, Protocol

import grpc

from shoal import backoff, units
from shoal.agent import metrics
from shoal.agent.reports import ReportStream, StreamEnded
from shoal.agent.settings import AgentSettings
from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2

log = logging.getLogger(__name__)

#: Heartbeat replies that mean the controller no longer knows this session: register again.
STALE_CODES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


#: Heartbeat periods without hearing from the controller after which the session is given up on a
#: connected controller.
HEARTBEAT_PATIENCE = 4


class SessionEnded(Exception):
    """The controller closed a stream of the session without an error."""


class AssignmentSink(Protocol):
    """The worker as the session sees it."""

    def assign(
        self, tasks: Sequence[objects_pb2.Task], files: Sequence[dispatcher_pb2.AssignmentChange] = ()
    ) -> None:
        """Apply a COMPLETE assignment set (its secrets and configs, then its tasks)."""
        ...

    def update(self, changes: Sequence[dispatcher_pb2.AssignmentChange]) -> None:
        """Apply INCREMENTAL changes."""
        ...


class StatusSender(Protocol):
    """The reporter as the session sees it."""

    async def run(self, send: Callable[[Sequence[dispatcher_pb2.TaskStatusUpdate]], Awaitable[None]]) -> NoReturn:
        """Send statuses through `send` until cancelled."""
        ...


class Session:
    """One registration round; build a new one for every attempt."""

    def __init__(
        self,
        *,
        node_id: str,
        request: dispatcher_pb2.SessionRequest,
        worker: AssignmentSink,
        reporter: StatusSender,
        settings: AgentSettings,
        on_message: Callable[[dispatcher_pb2.SessionMessage], None],
        open_timeout: float | None = None,
    ) -> None:
        self._node_id = node_id
        self._request = request
        self._worker = worker
        self._reporter = reporter
        self._settings = settings
        self._on_message = on_message
        #: How long the first SessionMessage may take; the agent shortens it to the heartbeat period.
        self._open_timeout = open_timeout or settings.session_open_timeout
        self._stub: dispatcher_pb2_grpc.DispatcherAsyncStub | None = None
        self._reports: ReportStream | None = None
        self.session_id = ""
        self.node: objects_pb2.Node | None = None
        #: When this session last heard from the controller (loop time): any answer, not only a heartbeat's.
        self._heard = 0.0
        #: When the next heartbeat is due (loop time): a status report the controller counted as one moves it.
        self._beat_due = 0.0

    @property
    def established(self) -> bool:
        """True once the controller answered with a session ID."""
        return bool(self.session_id)

    async def run(self, channel: grpc.aio.Channel) -> NoReturn:
        """Register on `channel` and serve the session until it fails; always raises."""
        self._stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        call = self._stub.Session(self._request)
        try:
            first = await self._first_message(call, channel)
            if not isinstance(first, dispatcher_pb2.SessionMessage):  # grpc.aio.EOF
                raise SessionEnded("session stream ended before registration")
            self._accept(first)
            period = units.from_duration(first.heartbeat_period) or self._settings.default_heartbeat_period
            metrics.SESSION_CONNECTED.set(1)
            log.info("session %s registered as node %r", self.session_id, self._request.node_name)
            reports = self._stub.Report()
            self._reports = ReportStream(reports)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._reports.run(), name="session-reports")
                    group.create_task(self._heartbeat(period), name="session-heartbeat")
                    group.create_task(self._assignments(), name="session-assignments")
                    group.create_task(self._listen(call), name="session-listen")
                    group.create_task(self._reporter.run(self._send_statuses), name="session-report")
            except BaseExceptionGroup as group_error:
                first = _first_leaf(group_error)
                if isinstance(first, StreamEnded):
                    raise SessionEnded(str(first)) from None
                raise first from None
            finally:
                reports.cancel()
            raise SessionEnded("session loops returned")  # unreachable: every loop runs until it fails
        finally:
            metrics.SESSION_CONNECTED.set(0)
            call.cancel()

    async def _first_message(
        self, call: grpc.aio.UnaryStreamCall[dispatcher_pb2.SessionRequest, dispatcher_pb2.SessionMessage],
        channel: grpc.aio.Channel,
    ) -> object:
        """The session's first message, within the open timeout, or longer while the connection stands.

        A controller that is paused or cut off never completes the connection, or loses it to the
        keepalive; one that is connected but busy gets `session_open_patience` to answer, since
        giving up and registering again would only queue another registration behind this one.
        """
        read = asyncio.ensure_future(call.read())
        try:
            done, _ = await asyncio.wait({read}, timeout=self._open_timeout)
            if not done and channel.get_state() == grpc.ChannelConnectivity.READY:
                log.info("the controller is connected but slow to open the session; waiting longer")
                done, _ = await asyncio.wait({read}, timeout=self._settings.session_open_patience)
            if not done:
                raise TimeoutError("the controller did not open the session in time")
            return read.result()
        finally:
            read.cancel()

    def _accept(self, message: dispatcher_pb2.SessionMessage) -> None:
        if message.session_id:
            self.session_id = message.session_id
        if message.HasField("node"):
            if message.node.id and message.node.id != self._node_id:
                log.warning("controller knows this node as %s", message.node.id)
            self.node = message.node
        self._on_message(message)

    def _heard_from_controller(self) -> None:
        self._heard = asyncio.get_running_loop().time()

    async def _heartbeat(self, period: float) -> NoReturn:
        assert self._reports is not None
        loop = asyncio.get_running_loop()
        self._heard_from_controller()
        while True:
            # A controller that is gone, cut off or paused is noticed by the channel's keepalive (and
            # a stale session ends the Report stream with NOT_FOUND: register again), so an unanswered
            # heartbeat means a controller that is connected but busy: ask again rather than register
            # again, which would add a registration and a full assignment set to its load. If it cannot
            # hear us for its grace it ends the session itself. The session is given up only after
            # HEARTBEAT_PATIENCE periods without hearing anything from the controller: assignments and
            # status answers still arriving show it is alive and serving this session.
            deadline = min(self._settings.rpc_timeout, max(1.0, 2 * period))
            try:
                with metrics.HEARTBEAT_DURATION.time():
                    reply = await self._reports.heartbeat(self.session_id, deadline)
            except TimeoutError:
                waited = loop.time() - self._heard
                if waited > HEARTBEAT_PATIENCE * period:
                    raise TimeoutError(f"no word from the controller for {waited:.1f}s") from None
                log.info("heartbeat unanswered; heard from the controller %.1fs ago, asking again", waited)
                continue
            self._heard_from_controller()
            period = units.from_duration(reply.period) or period
            self._beat_due = loop.time() + period
            await self._until_beat_due()

    async def _until_beat_due(self) -> None:
        """Sleep until the next heartbeat is due; status reports that count as heartbeats put it off."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self._beat_due - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _assignments(self) -> NoReturn:
        assert self._stub is not None
        request = dispatcher_pb2.AssignmentsRequest(session_id=self.session_id)
        reopen = backoff.Backoff(base=self._settings.backoff_base, cap=self._settings.backoff_cap)
        while True:
            call = self._stub.Assignments(request)
            try:
                await self._follow(call, reopen)
            finally:
                call.cancel()
            await asyncio.sleep(reopen.next())

    async def _follow(
        self,
        call: grpc.aio.UnaryStreamCall[dispatcher_pb2.AssignmentsRequest, dispatcher_pb2.AssignmentsMessage],
        reopen: backoff.Backoff,
    ) -> None:
        """Apply one Assignments stream's messages; return on a sequence gap, raise when it ends."""
        last: int | None = None
        async for message in call:
            self._heard_from_controller()
            if message.type == dispatcher_pb2.AssignmentsMessage.COMPLETE:
                tasks = [c.task for c in message.changes if c.WhichOneof("item") == "task"]
                files = [c for c in message.changes if c.WhichOneof("item") != "task"]
                self._worker.assign(tasks, files)
                reopen.reset()
            elif last is None or message.applies_to != last:
                log.warning("assignment gap (applies to %s, have %s); reopening the stream", message.applies_to, last)
                return
            else:
                self._worker.update(message.changes)
            last = message.results_in
        raise SessionEnded("assignment stream ended")

    async def _listen(
        self, call: grpc.aio.UnaryStreamCall[dispatcher_pb2.SessionRequest, dispatcher_pb2.SessionMessage]
    ) -> NoReturn:
        while True:
            message = await call.read()
            if not isinstance(message, dispatcher_pb2.SessionMessage):  # grpc.aio.EOF
                raise SessionEnded("controller closed the session")
            self._heard_from_controller()
            self._accept(message)

    async def _send_statuses(self, updates: Sequence[dispatcher_pb2.TaskStatusUpdate]) -> None:
        assert self._reports is not None
        reply = await self._reports.statuses(self.session_id, list(updates), self._settings.rpc_timeout)
        self._heard_from_controller()
        if reply.HasField("heartbeat_period"):
            self._beat_due = asyncio.get_running_loop().time() + units.from_duration(reply.heartbeat_period)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
