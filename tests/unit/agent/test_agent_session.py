"""Session and agent loop against a scripted in-process Dispatcher server, over mutual TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import grpc
import pytest
from agent_dispatcher import FakeDispatcher, complete, incremental, serving
from agent_fakes import NODE_ID, FakeExecutor, make_task, wait_until
from agent_tls import Cluster

from shoal import states, tls
from shoal.agent import agent as agent_
from shoal.agent import credentials as credentials_
from shoal.agent import reporter as reporter_
from shoal.agent import session as session_
from shoal.agent.settings import AgentSettings
from shoal.v1 import dispatcher_pb2, objects_pb2, types_pb2

UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


def _item(change: dispatcher_pb2.AssignmentChange) -> str:
    """A task change as its task ID, a file change as "secret/ID" or "config/ID"."""
    kind = change.WhichOneof("item")
    return change.task.id if kind == "task" else f"{kind}/{getattr(change, kind).id}"


class RecordingWorker:
    """An AssignmentSink that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, list[str]]] = []
        #: The secrets and configs of each COMPLETE set, as `_item` names them.
        self.files: list[list[str]] = []

    def assign(
        self, tasks: Sequence[objects_pb2.Task], files: Sequence[dispatcher_pb2.AssignmentChange] = ()
    ) -> None:
        self.events.append(("assign", [t.id for t in tasks]))
        self.files.append([_item(f) for f in files])

    def update(self, changes: Sequence[dispatcher_pb2.AssignmentChange]) -> None:
        names = {UPDATE: "update", REMOVE: "remove"}
        self.events.append(("update", [f"{names[c.action]}:{_item(c)}" for c in changes]))


def settings_for(controllers: Sequence[str], state_dir: Path) -> AgentSettings:
    return AgentSettings(
        controllers=tuple(controllers),
        node_name="node-1",
        state_dir=state_dir,
        labels={"zone": "a"},
        session_open_timeout=2.0,
        rpc_timeout=2.0,
        backoff_base=0.01,
        backoff_cap=0.05,
        reporter_flush_interval=0.001,
    )


class Running:
    """An Agent loop as a task, with the node certificate `bundle`, a recording worker and a real reporter."""

    def __init__(self, controllers: Sequence[str], state_dir: Path, bundle: tls.Bundle) -> None:
        settings = settings_for(controllers, state_dir)
        self.worker = RecordingWorker()
        self.reporter = reporter_.Reporter(reporter_.ReporterSettings(flush_interval=0.001, retry_base=0.01))
        self.agent = agent_.Agent(
            settings=settings,
            credentials=credentials_.Credentials(settings, bundle),
            executor=FakeExecutor(),
            worker=self.worker,
            reporter=self.reporter,
            addr="127.0.0.1:4250",
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self._task = asyncio.create_task(self.agent.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
async def addr(dispatcher: FakeDispatcher, cluster: Cluster) -> AsyncIterator[str]:
    async with serving(dispatcher, cluster.controller()) as bound:
        yield bound


async def test_registers_with_its_node_certificate_and_heartbeats(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    async with Running([addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.heartbeats >= 3, what="three heartbeats")

    assert dispatcher.sessions_opened == 1
    methods = {method for method, _ in dispatcher.calls}
    assert {"Session", "Report", "Assignments"} <= methods
    # The controller knows the node by its certificate's CN, on every call.
    assert all(node_id == NODE_ID for _, node_id in dispatcher.calls)
    request = dispatcher.session_requests[0]
    assert request.node_name == "node-1"
    assert request.addr == "127.0.0.1:4250"
    assert request.description.hostname == "node-1"
    assert dict(request.description.engine.labels) == {"zone": "a"}
    assert request.description.resources.nano_cpus == 4_000_000_000
    assert request.description.engine.engine_version == "20.10.24"


@pytest.mark.parametrize("counted", [True, False])
async def test_a_report_that_counts_as_a_heartbeat_puts_the_next_one_off(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle, counted: bool
) -> None:
    dispatcher.heartbeat_period = 0.05
    dispatcher.reports_beat_for = 60.0 if counted else None
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: dispatcher.heartbeats >= 2, what="heartbeats")
        running.reporter.update("t1", types_pb2.TaskStatus(state=states.RUNNING))
        await wait_until(lambda: dispatcher.states_of("t1"), what="the report")
        beats = dispatcher.heartbeats
        if not counted:
            # A controller that does not count reports as heartbeats gets them as before.
            await wait_until(lambda: dispatcher.heartbeats >= beats + 5, what="heartbeats after the report")
            return
        # 20 periods: at most the heartbeat already on its way when the answer came arrives.
        await asyncio.sleep(1.0)
        assert dispatcher.heartbeats <= beats + 1
    assert dispatcher.sessions_opened == 1


async def test_a_slow_controller_keeps_the_session(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    # Answers take longer than a period but less than two: the controller is busy, not gone, and
    # registering again would only add to its load.
    dispatcher.heartbeat_period = 0.8
    dispatcher.heartbeat_delay = 1.3
    async with Running([addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.heartbeats >= 2, timeout=20, what="two slow heartbeats")
    assert dispatcher.sessions_opened == 1


async def test_a_controller_still_talking_keeps_the_session_though_heartbeats_go_unanswered(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    # Under a burst a controller's calls queue for longer than HEARTBEAT_PATIENCE periods, while what
    # it sends on open streams still arrives: it is alive, and registering again would add to its load.
    dispatcher.heartbeat_period = 0.5
    dispatcher.heartbeat_delay = 60.0
    async with Running([addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.sessions_opened == 1, what="a session")
        for _ in range(30):  # 6 s: three times the patience of 2 s
            await dispatcher.session_pushes.put(dispatcher_pb2.SessionMessage())
            await asyncio.sleep(0.2)
        assert dispatcher.sessions_opened == 1


async def test_a_controller_that_says_nothing_is_given_up(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    dispatcher.heartbeat_period = 0.2
    dispatcher.heartbeat_delay = 60.0
    async with Running([addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.sessions_opened >= 2, timeout=20, what="a second session")


async def test_refused_statuses_keep_the_session_and_later_ones_arrive(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    # A task that moved to another node while its last statuses were on their way: the controller
    # refuses that report, and the Report stream (so the session) goes on.
    dispatcher.not_ours = {"moved"}
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: dispatcher.heartbeats >= 1, what="a session")
        running.reporter.update("moved", types_pb2.TaskStatus(state=states.RUNNING))
        await wait_until(lambda: running.reporter.pending == 0, what="the refused report")
        running.reporter.update("t1", types_pb2.TaskStatus(state=states.RUNNING))
        await wait_until(lambda: dispatcher.states_of("t1"), what="the next report")
        beats = dispatcher.heartbeats
        await wait_until(lambda: dispatcher.heartbeats > beats, what="heartbeats on the same stream")
    assert dispatcher.sessions_opened == 1
    assert not dispatcher.states_of("moved")


async def test_complete_then_incremental_assignments(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    a, b, c = make_task("a"), make_task("b"), make_task("c")
    dispatcher.assignment_scripts = [
        [
            complete(1, [a, b]),
            incremental(1, 2, dispatcher_pb2.AssignmentChange(action=UPDATE, task=c)),
            incremental(2, 3, dispatcher_pb2.AssignmentChange(action=REMOVE, task=a)),
        ]
    ]
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: len(running.worker.events) == 3, what="three assignment messages")
    assert running.worker.events == [("assign", ["a", "b"]), ("update", ["update:c"]), ("update", ["remove:a"])]
    assert dispatcher.assignment_opens == 1


async def test_a_sequence_gap_reopens_the_assignment_stream(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    x = make_task("x")
    dispatcher.assignment_scripts = [
        [complete(1), incremental(7, 8, dispatcher_pb2.AssignmentChange(action=UPDATE, task=x))],
        [complete(9, [x])],
    ]
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: len(running.worker.events) == 2, what="a fresh complete set")
    assert running.worker.events == [("assign", []), ("assign", ["x"])]
    assert dispatcher.assignment_opens == 2
    assert dispatcher.sessions_opened == 1  # only the stream was reopened


async def test_an_incremental_first_message_is_a_gap(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    dispatcher.assignment_scripts = [[incremental(1, 2)], [complete(3)]]
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: running.worker.events, what="a complete set")
    assert running.worker.events == [("assign", [])]


async def test_follows_the_leader_named_in_trailing_metadata(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle, cluster: Cluster
) -> None:
    follower = FakeDispatcher()
    follower.redirect_to = addr
    async with (
        serving(follower, cluster.controller()) as follower_addr,
        Running([follower_addr], tmp_path, node_bundle) as running,
    ):
        await wait_until(lambda: dispatcher.heartbeats >= 1, what="a session with the leader")
        assert running.agent.remotes.current == addr
    assert [m for m, _ in follower.calls] == ["Session"]
    assert follower.calls[0][1] == NODE_ID


async def test_skips_an_unreachable_controller(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle, cluster: Cluster
) -> None:
    async with serving(FakeDispatcher(), cluster.controller()) as gone:
        pass  # a port that nothing listens on any more
    async with Running([gone, addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.heartbeats >= 1, what="a session with the live controller")


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT])
async def test_a_stale_session_registers_again(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, code: grpc.StatusCode, node_bundle: tls.Bundle
) -> None:
    dispatcher.heartbeat_errors = [code]
    async with Running([addr], tmp_path, node_bundle):
        await wait_until(lambda: dispatcher.heartbeats >= 1, what="a heartbeat in a new session")
    assert dispatcher.sessions_opened == 2


async def test_statuses_are_resent_after_the_session_ends(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    async with Running([addr], tmp_path, node_bundle) as running:
        running.reporter.update("t1", types_pb2.TaskStatus(state=states.RUNNING))
        await wait_until(lambda: dispatcher.states_of("t1"), what="the first report")
        assert all(node_id == NODE_ID for method, node_id in dispatcher.calls if method == "Report")

        dispatcher.session_pushes.put_nowait(None)  # the controller ends the session
        await wait_until(lambda: dispatcher.sessions_opened == 2, what="a second session")
        await wait_until(lambda: len(dispatcher.states_of("t1")) == 2, what="the re-sent report")
    sessions = [session for session, task, _ in dispatcher.status_updates if task == "t1"]
    assert sessions == ["session-1", "session-2"]


async def test_controller_list_comes_from_session_messages(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    dispatcher.controllers = [addr, "10.0.0.2:4240"]
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: len(running.agent.remotes.all) == 2, what="the controller list")
        assert running.agent.remotes.all == [addr, "10.0.0.2:4240"]
        dispatcher.session_pushes.put_nowait(
            dispatcher_pb2.SessionMessage(controllers=[addr, "10.0.0.2:4240", "10.0.0.3:4240"])
        )
        await wait_until(lambda: len(running.agent.remotes.all) == 3, what="a pushed controller list")


async def test_files_come_with_the_complete_set_and_in_incremental_changes(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    a = make_task("a")
    secret = dispatcher_pb2.AssignmentChange(secret=dispatcher_pb2.AssignedFile(id="s1", name="db", data=b"pw"))
    config = dispatcher_pb2.AssignmentChange(config=dispatcher_pb2.AssignedFile(id="c1", name="app", data=b"x"))
    gone = dispatcher_pb2.AssignmentChange(action=REMOVE, secret=dispatcher_pb2.AssignedFile(id="s1"))
    dispatcher.assignment_scripts = [[complete(1, [a], [secret]), incremental(1, 2, config, gone)]]
    async with Running([addr], tmp_path, node_bundle) as running:
        await wait_until(lambda: len(running.worker.events) == 2, what="both assignment messages")
    assert running.worker.events == [("assign", ["a"]), ("update", ["update:config/c1", "remove:secret/s1"])]
    assert running.worker.files == [["secret/s1"]]


@pytest.mark.parametrize(
    "impostor",
    [
        pytest.param(lambda cluster: Cluster.new("cluster0000000000000000002").controller(), id="another-cluster"),
        pytest.param(lambda cluster: cluster.node("node0000000000000000000002"), id="a-node-certificate"),
    ],
)
async def test_a_server_that_is_not_a_controller_of_the_cluster_is_skipped(
    dispatcher: FakeDispatcher,
    addr: str,
    tmp_path: Path,
    node_bundle: tls.Bundle,
    cluster: Cluster,
    impostor: Callable[[Cluster], tls.Bundle],
) -> None:
    # The agent checks the server's chain against its CA and the name against pki.CONTROLLER_NAME.
    stranger = FakeDispatcher()
    async with (
        serving(stranger, impostor(cluster)) as stranger_addr,
        Running([stranger_addr, addr], tmp_path, node_bundle) as running,
    ):
        await wait_until(lambda: dispatcher.heartbeats >= 1, what="a session with the real controller")
        assert running.agent.remotes.current == addr
    assert stranger.calls == []
    assert stranger.session_requests == []


async def test_a_removed_node_stops_the_agent(
    dispatcher: FakeDispatcher, addr: str, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    dispatcher.removed.add(NODE_ID)
    agent = Running([addr], tmp_path, node_bundle).agent

    with pytest.raises(credentials_.NodeRemoved, match=f"node {NODE_ID} was removed"):
        async with asyncio.timeout(30):  # a guard only: without it, a regression would hang until pytest's timeout
            await agent.run()
    assert dispatcher.calls == []



async def test_a_stop_that_comes_as_the_session_fails_stops_the_agent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, node_bundle: tls.Bundle
) -> None:
    # Python 3.11's TaskGroup raises a child's error instead of the cancellation when both come at
    # once: the first session ends with an ordinary error although the agent was told to stop.
    started: list[int] = []

    async def session(self: session_.Session, channel: object) -> None:
        started.append(1)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if len(started) == 1:
                raise session_.SessionEnded("the stream ended as the session was torn down") from None
            raise

    monkeypatch.setattr(session_.Session, "run", session)
    task = asyncio.create_task(Running(["127.0.0.1:1"], tmp_path, node_bundle).agent.run())
    try:
        await wait_until(lambda: bool(started), what="a session")
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
        assert len(started) == 1  # no second session
    finally:
        task.cancel()  # without the fix, the agent runs a second session: this one stops it
        await asyncio.gather(task, return_exceptions=True)
