"""The agent: owns the session lifecycle and wires the agent's parts together.

`serve(settings)` is what `swarmd agent` runs: it opens the Docker executor and
calls `run(settings, executor)`, which any executor (the benchmarks' hollow
one) can be handed to. `run` loads or creates the node ID, opens the worker,
the agent's gRPC server and the metrics endpoint (an AsyncExitStack, unwound
in reverse), then loops over sessions in `Agent.run`:

- a session that fails or ends is replaced after a capped, jittered backoff
  (reset once a session was established);
- UNAVAILABLE with the leader's address in trailing metadata: use that
  address next, at once; plain UNAVAILABLE or no answer: try the next one;
- every SessionMessage's controller list replaces the known addresses.

Cancelling `run` stops everything except the containers, which a restarted
agent adopts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import NoReturn

import grpc

from shoal import backoff, errors, logs, looplag, metrics_http, remotes, units
from shoal.agent import credentials as credentials_
from shoal.agent import metrics, server, stats, volumes
from shoal.agent import reporter as reporter_
from shoal.agent import runner as runner_
from shoal.agent import session as session_
from shoal.agent import worker as worker_
from shoal.agent.executor import base, docker
from shoal.agent.settings import AgentSettings
from shoal.v1 import dispatcher_pb2

log = logging.getLogger(__name__)


def leader_hint(exc: grpc.aio.AioRpcError) -> str:
    """The leader's address a follower put in the trailing metadata, or ""."""
    for key, value in exc.trailing_metadata() or ():
        if key == errors.LEADER_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


class Agent:
    """Keeps one session with the leader alive, for as long as `run` runs."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        credentials: credentials_.Credentials,
        executor: base.Executor,
        worker: session_.AssignmentSink,
        reporter: session_.StatusSender,
        addr: str,
        metrics_addr: str = "",
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._executor = executor
        self._worker = worker
        self._reporter = reporter
        self._addr = addr
        self._metrics_addr = metrics_addr
        self.remotes = remotes.Remotes(list(settings.controllers))
        self._reconnect_cap = settings.backoff_cap
        self._open: tuple[tuple[str, object], grpc.aio.Channel] | None = None
        #: Set when `run` is cancelled; the session loop checks it after every session.
        self._stopping = False

    async def run(self) -> NoReturn:
        """Register, serve the session, and do it again when it ends; never returns."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._close_channel)
            sessions = asyncio.create_task(self._sessions(), name="agent-sessions")
            try:
                # wait(), unlike awaiting the task, takes our cancellation here without passing it on first.
                await asyncio.wait({sessions})
            except asyncio.CancelledError:
                # On Python 3.11 a session's TaskGroup raises a child's error rather than the cancellation
                # when both come at once: the loop would take our stop for a session's end and register
                # again. The flag tells it otherwise.
                self._stopping = True
                sessions.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sessions
                raise
            sessions.result()  # the loop never returns: this raises what ended it
            raise AssertionError("the session loop returned")

    async def _channel(self, target: str) -> grpc.aio.Channel:
        """The channel to `target`, kept across sessions while it is connected to the same target
        with our current certificate.

        Every new channel is a TCP connection and a TLS handshake on both ends: a fleet that
        registers again after a busy controller's hiccup must not also reconnect all at once.
        A channel that is not connected is replaced rather than left to gRPC's reconnect backoff
        (which grows to minutes), so a restarted controller is reached at once; after a renewal
        the next session uses the new certificate.
        """
        key = (target, self._credentials.bundle)
        if self._open is not None and (
            self._open[0] != key or self._open[1].get_state() != grpc.ChannelConnectivity.READY
        ):
            await self._close_channel()
        if self._open is None:
            self._open = (key, self._credentials.channel(target))
        return self._open[1]

    async def _close_channel(self) -> None:
        if self._open is not None:
            channel, self._open = self._open[1], None
            await channel.close()

    async def _sessions(self) -> NoReturn:
        delay = backoff.Backoff(base=self._settings.backoff_base, cap=self._settings.backoff_cap)
        redirects = 0
        while True:
            delay.cap = min(self._settings.backoff_cap, self._reconnect_cap)
            target = self.remotes.current
            session: session_.Session | None = None
            redirected = False
            try:
                session = session_.Session(
                    node_id=self._credentials.node_id,
                    request=await self._request(),
                    worker=self._worker,
                    reporter=self._reporter,
                    settings=self._settings,
                    on_message=self._on_message,
                    # A paused controller accepts connections but never answers: give up on it
                    # within a heartbeat period (at least a second), as the new leader's grace is short.
                    open_timeout=min(self._settings.session_open_timeout, max(1.0, self._reconnect_cap)),
                )
                await session.run(await self._channel(target))
            except (grpc.aio.AioRpcError, TimeoutError, session_.SessionEnded, base.ExecutorError) as exc:
                redirected = self._failed(target, exc, established=session is not None and session.established)
            except Exception:
                # A bug or an unforeseen library error: the node must not drop out of the cluster for it.
                log.exception("session with %s failed unexpectedly", target)
            if self._stopping:
                raise asyncio.CancelledError  # `run` was cancelled as the session failed (see run)
            if session is not None and session.established:
                delay.reset()
                redirects = 0
            if redirected:
                redirects += 1
                # Straight to the leader, unless controllers keep pointing at each other.
                if redirects <= len(self.remotes.all):
                    continue
            wait = delay.next()
            log.debug("next session attempt in %.2fs", wait)
            await asyncio.sleep(wait)

    def _failed(self, target: str, exc: Exception, *, established: bool) -> bool:
        """Log why a session with `target` ended and choose the next controller; True if redirected."""
        if isinstance(exc, session_.SessionEnded):
            log.info("session with %s ended: %s", target, exc)
        elif isinstance(exc, TimeoutError):
            log.warning("controller %s did not answer in time: %s", target, exc)
            self.remotes.failed(target)
        elif isinstance(exc, base.ExecutorError):
            log.warning("cannot describe this node: %s", exc)
        elif isinstance(exc, grpc.aio.AioRpcError):
            code, leader = exc.code(), leader_hint(exc)
            if code == grpc.StatusCode.PERMISSION_DENIED and "removed" in (exc.details() or ""):
                raise credentials_.NodeRemoved(exc.details()) from exc
            if code == grpc.StatusCode.UNAVAILABLE and leader and leader != target:
                log.info("controller %s is not the leader; following it to %s", target, leader)
                self.remotes.prefer(leader)
                return True
            if established and code in session_.STALE_CODES:
                log.info(
                    "controller %s no longer knows this session (%s); registering again",
                    target,
                    exc.details(),
                )
            elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                log.warning("controller %s: %s: %s", target, code.name, exc.details())
                self.remotes.failed(target)
            else:
                log.warning("session with %s failed: %s: %s", target, code.name, exc.details())
        return False

    async def _request(self) -> dispatcher_pb2.SessionRequest:
        """The registration request; the description is read from the engine for every attempt."""
        description = await self._executor.describe()
        description.hostname = self._settings.node_name
        description.engine.labels.update(self._settings.labels)
        request = dispatcher_pb2.SessionRequest(
            node_name=self._settings.node_name, addr=self._addr, metrics_addr=self._metrics_addr
        )
        request.description.CopyFrom(description)
        return request

    def _on_message(self, message: dispatcher_pb2.SessionMessage) -> None:
        if message.controllers:
            self.remotes.update(list(message.controllers))
        if message.HasField("heartbeat_period"):
            # Reconnect at least once per heartbeat period: after a leader change the new leader
            # waits only a few periods before it declares a silent node DOWN.
            self._reconnect_cap = max(self._settings.backoff_base, units.from_duration(message.heartbeat_period))


def new_reporter(settings: AgentSettings) -> reporter_.Reporter:
    """The status reporter, tuned by `settings`."""
    return reporter_.Reporter(
        reporter_.ReporterSettings(
            batch_size=settings.reporter_batch_size,
            flush_interval=settings.reporter_flush_interval,
            retry_base=settings.backoff_base,
            retry_cap=settings.backoff_cap,
        )
    )


def new_worker(
    settings: AgentSettings, executor: base.Executor, reporter: reporter_.Reporter, node_id: str
) -> worker_.Worker:
    """The worker of this node's runners (open it with `async with`)."""
    timings = runner_.RunnerTimings(retry_base=settings.retry_base, retry_cap=settings.retry_cap)
    # Secrets, configs and registry credentials of the assignment set (the Docker executor keeps them).
    files = getattr(executor, "assignment_sink", None) or getattr(executor, "files", None)
    return worker_.Worker(
        node_id=node_id,
        executor=executor,
        reporter=reporter,
        timings=timings,
        files=files,
        networks=getattr(executor, "networks", None),
    )


async def run_sessions(
    *,
    settings: AgentSettings,
    credentials: credentials_.Credentials,
    executor: base.Executor,
    worker: worker_.Worker,
    reporter: reporter_.Reporter,
    addr: str,
    metrics_addr: str,
) -> NoReturn:
    """Keep the node's session with the leader, and its certificate fresh, until cancelled."""
    agent = Agent(
        settings=settings,
        credentials=credentials,
        executor=executor,
        worker=worker,
        reporter=reporter,
        addr=addr,
        metrics_addr=metrics_addr,
    )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(credentials.renew_forever(lambda: agent.remotes.current), name="certificate-renewal")
            tg.create_task(agent.run(), name="sessions")
    except* (credentials_.NodeRemoved, errors.ShoalError, OSError) as group:
        # One reason to stop, said in one line by main, not a group of them.
        raise errors.first_leaf(group) from None
    raise AssertionError("unreachable")


async def run(settings: AgentSettings, executor: base.Executor) -> NoReturn:
    """Run the agent on `executor` until cancelled."""
    creds = await credentials_.load_or_join(settings)
    node_id = creds.node_id
    # Bound once here: every task the agent starts (sessions, runners, RPC handlers) inherits it.
    logs.bind(node_id=node_id)
    reporter = new_reporter(settings)
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(new_worker(settings, executor, reporter, node_id))
        addr = await stack.enter_async_context(
            server.serve(
                settings.listen,
                worker,
                grace=settings.server_grace,
                credentials=creds,
                volumes=volumes.Volumes(executor, node_id),
            )
        )
        metrics_addr = await stack.enter_async_context(metrics_http.serve(settings.metrics_listen))
        stack.enter_context(metrics.registered(metrics.TaskCollector(worker.observed_states)))
        await stack.enter_async_context(
            stats.exported(
                executor, worker, node_id=node_id, node_name=settings.node_name, interval=settings.stats_interval
            )
        )
        log.info("agent %r serving on %s, metrics on %s", settings.node_name, addr, metrics_addr)
        # Here, not in run_sessions: a process of hollow nodes runs thousands of those, and watches its loop once.
        stack.enter_context(looplag.watching(metrics.EVENT_LOOP_LAG))
        await run_sessions(
            settings=settings,
            credentials=creds,
            executor=executor,
            worker=worker,
            reporter=reporter,
            addr=addr,
            metrics_addr=metrics_http.advertised(metrics_addr, addr),
        )


async def serve(settings: AgentSettings) -> NoReturn:
    """Run the agent on the Docker Engine at `settings.docker_host` until cancelled."""
    async with docker.open_executor(settings) as executor:
        await run(settings, executor)
