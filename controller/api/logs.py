"""Control API: Logs, a service's or a task's output, read from the agents that run the tasks.

The leader knows where every task runs; it dials each node's agent at the
address the node registered (`status.addr`), over mutual TLS with its own
controller certificate, and checks the agent's certificate against a name
only that node's certificate carries (`pki.node_server_name`), so the
handshake proves it reached the node it meant to. One stream per task
(`Agent/TaskLogs`) feeds one merged stream, each line labelled with its task
and node.

A node that is gone, DOWN, or does not answer within a few seconds yields one
warning message (per node, however many of its tasks are asked for), and the
stream goes on with the others: `docker service logs` fails as a whole
instead (moby/moby#37336, #33183). With `follow`, a service's new tasks
(restarts, scale-ups, updates) are added as they start, until the client
cancels or the service is removed; a task's stream ends when its container
has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

import grpc

from shoal import errors, pki, states, tls
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.store.cache import Cache, Subscription
from shoal.controller.store.keys import Kind
from shoal.v1 import agent_pb2, agent_pb2_grpc, control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)

#: How long an agent has to accept the connection before its node is reported unavailable.
CONNECT_TIMEOUT = 3.0
#: Deadline of one task's stream when not following: a slow node must not hold the whole answer.
READ_TIMEOUT = 60.0
#: Task streams read at once when not following.
CONCURRENCY = 16
#: Lines buffered between the agents' streams and the client: backpressure beyond this.
QUEUE_SIZE = 1000


class NodeUnavailable(Exception):
    """The node's agent cannot be read: gone, DOWN, unreachable, or it broke off."""


class TaskGone(Exception):
    """The agent no longer has the task (removed meanwhile): nothing to show, nothing to warn about."""


class LogOpener(Protocol):
    """Reads one task's output from the agent of the node it runs on."""

    def open(self, node: objects_pb2.Node, request: agent_pb2.TaskLogsRequest) -> AsyncIterator[agent_pb2.LogLine]:
        """The task's lines; raises NodeUnavailable or TaskGone."""
        ...


class AgentLogs:
    """Dials agents with the controller's certificate: one channel per node for the life of one request."""

    def __init__(self, bundle: Callable[[], tls.Bundle]) -> None:
        self._bundle = bundle
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def _ready(self, node: objects_pb2.Node) -> grpc.aio.Channel:
        channel = self._channels.get(node.id)
        if channel is None:
            channel = tls.secure_channel(
                node.status.addr, self._bundle(), server_name=pki.node_server_name(node.id)
            )
            self._channels[node.id] = channel
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await channel.channel_ready()
        except TimeoutError:
            raise NodeUnavailable(
                f"its agent at {node.status.addr} did not answer within {CONNECT_TIMEOUT:g}s"
            ) from None
        return channel

    async def open(
        self, node: objects_pb2.Node, request: agent_pb2.TaskLogsRequest
    ) -> AsyncIterator[agent_pb2.LogLine]:
        channel = await self._ready(node)
        call = agent_pb2_grpc.AgentStub(channel).TaskLogs(
            request, timeout=None if request.follow else READ_TIMEOUT
        )
        try:
            async for line in call:
                yield line
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise TaskGone(exc.details()) from None
            raise NodeUnavailable(f"its agent broke off: {exc.code().name}: {exc.details()}") from None
        finally:
            call.cancel()


def task_name(task: objects_pb2.Task, nodes: dict[str, objects_pb2.Node]) -> str:
    """`<service>.<slot>`, or `<service>.<node name>` for a task made for one node, as `service ps` names it."""
    if task.slot:
        return f"{task.service_name}.{task.slot}"
    node = nodes.get(task.node_id)
    return f"{task.service_name}.{node.name if node is not None else task.node_id}"


def has_output(task: objects_pb2.Task) -> bool:
    """True if the task's container may have written something: it was started (or is running)."""
    return bool(task.node_id) and states.RUNNING <= task.status.state and task.status.state != states.REJECTED


def unavailable_reason(node: objects_pb2.Node | None) -> str:
    """Why a node cannot be read without even trying, or "" if it should be tried."""
    if node is None:
        return "it was removed from the cluster"
    if node.status.state == types_pb2.NodeStatus.DOWN:
        return "it is down"
    if not node.status.addr:
        return "its agent registered no address"
    return ""


_FINISHED = object()


class LogSession:
    """One Logs call: a pump per task into one queue, and (following a service) a watch for its new tasks."""

    def __init__(
        self,
        cache: Cache,
        opener: LogOpener,
        request: control_pb2.LogsRequest,
        tasks: Iterable[objects_pb2.Task],
        service_id: str = "",
    ) -> None:
        self._cache = cache
        self._opener = opener
        self._agent_request = agent_pb2.TaskLogsRequest(follow=request.follow, tail=request.tail)
        if request.HasField("since"):
            self._agent_request.since.CopyFrom(request.since)
        # Subscribed with no await since `tasks` were listed, so no task that starts meanwhile is missed.
        self._sub: Subscription | None = cache.subscribe() if request.follow and service_id else None
        self._service_id = service_id
        self._initial = sorted(tasks, key=lambda t: (t.slot, t.node_id, t.meta.created_at.ToNanoseconds()))
        self._queue: asyncio.Queue[control_pb2.LogMessage | object] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._limit = asyncio.Semaphore(CONCURRENCY if not request.follow else 1 << 30)
        self._started: set[str] = set()
        self._warned: set[str] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._watching = self._sub is not None

    async def stream(self) -> AsyncIterator[control_pb2.LogMessage]:
        """Every line of every task, as they arrive, and one warning per unreadable node."""
        watcher = asyncio.create_task(self._watch()) if self._sub is not None else None
        try:
            for task in self._initial:
                self._start(task)
            while self._pumps or self._watching or not self._queue.empty():
                item = await self._queue.get()
                if isinstance(item, control_pb2.LogMessage):
                    yield item
        finally:
            if self._sub is not None:
                self._sub.close()
            pending = [*self._pumps, *([watcher] if watcher is not None else [])]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _start(self, task: objects_pb2.Task, *, new: bool = False) -> None:
        """Read a task's output; a `new` one (started while following) from its first line, whatever --tail says."""
        if task.id in self._started:
            return
        self._started.add(task.id)
        pump = asyncio.create_task(self._pump(task, new), name=f"logs-{task.id}")
        self._pumps.add(pump)
        pump.add_done_callback(self._finished)

    def _finished(self, pump: asyncio.Task[None]) -> None:
        self._pumps.discard(pump)
        if not pump.cancelled() and pump.exception() is not None:
            log.error("reading task logs failed", exc_info=pump.exception())
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_FINISHED)  # wakes the reader to see whether everything is done

    async def _pump(self, task: objects_pb2.Task, new: bool) -> None:
        nodes = self._cache.nodes
        node = nodes.get(task.node_id)
        name = task_name(task, nodes)
        node_name = node.name if node is not None else task.node_id
        reason = unavailable_reason(node)
        if reason:
            await self._warn(task.node_id, node_name, reason)
            return
        assert node is not None
        request = agent_pb2.TaskLogsRequest()
        request.CopyFrom(self._agent_request)
        request.task_id = task.id
        if new:
            request.tail = 0
        async with self._limit:
            try:
                async for line in self._opener.open(node, request):
                    msg = control_pb2.LogMessage(
                        task_id=task.id,
                        task_name=name,
                        node_id=node.id,
                        node_name=node_name,
                        stream=line.stream,
                        data=line.data,
                    )
                    if line.HasField("timestamp"):
                        msg.timestamp.CopyFrom(line.timestamp)
                    await self._queue.put(msg)
            except TaskGone as exc:
                log.debug("logs of task %s: %s", task.id, exc)
            except NodeUnavailable as exc:
                await self._warn(node.id, node_name, str(exc))

    async def _warn(self, node_id: str, node_name: str, reason: str) -> None:
        if node_id in self._warned:
            return
        self._warned.add(node_id)
        text = f"node {node_name} is not available ({reason}): the logs of its tasks are left out"
        await self._queue.put(control_pb2.LogMessage(node_id=node_id, node_name=node_name, warning=text))

    async def _watch(self) -> None:
        """Start the pump of each new task of the service as it starts; end with the service."""
        assert self._sub is not None
        try:
            async for batch in self._sub:
                for change in batch.changes:
                    if change.kind is Kind.SERVICE and change.deleted and change.obj.id == self._service_id:  # type: ignore[attr-defined]
                        return
                    task = change.new
                    if (
                        change.kind is Kind.TASK
                        and task is not None
                        and task.service_id == self._service_id  # type: ignore[attr-defined]
                        and has_output(task)  # type: ignore[arg-type]
                    ):
                        self._start(task, new=True)  # type: ignore[arg-type]
        finally:
            self._watching = False
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_FINISHED)


def select(cache: Cache, request: control_pb2.LogsRequest) -> tuple[list[objects_pb2.Task], str]:
    """The tasks to read and, for a service, its ID; InvalidArgument unless exactly one ref is given."""
    if bool(request.service_ref) == bool(request.task_ref):
        raise errors.InvalidArgument("logs: give exactly one of a service and a task")
    if request.task_ref:
        task = refs.resolve("task", request.task_ref, cache.tasks)
        if not task.node_id:
            raise errors.FailedPrecondition(f"task {task.id} was never assigned to a node: it has no logs")
        return [task], ""
    service = refs.resolve("service", request.service_ref, cache.services, cache.service_by_name)
    return [t for t in cache.tasks_of_service(service.id) if has_output(t)], service.id


class LogsHandlers(Handlers):
    """Logs (and the controller's client certificate it dials agents with)."""

    def __init__(self, *args, agent_bundle: Callable[[], tls.Bundle] | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._agent_bundle = agent_bundle

    @handle
    async def Logs(  # noqa: N802
        self, request: control_pb2.LogsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[control_pb2.LogMessage]:
        cache = self._leadership.require().cache
        if self._agent_bundle is None:
            raise errors.FailedPrecondition("this controller has no certificate to reach agents with")
        tasks, service_id = select(cache, request)
        opener = AgentLogs(self._agent_bundle)
        try:
            async for message in LogSession(cache, opener, request, tasks, service_id).stream():
                yield message
        finally:
            await opener.close()
