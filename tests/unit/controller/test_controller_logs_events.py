"""The controller's Logs merging (fake agents) and Events conversion (fake etcd watch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aetcd import rpc
from controller_fakes import DOWN, make_node, make_service, make_task

from shoal import errors, states
from shoal.controller.api import events, logs
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.events import Batch, Change
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import agent_pb2, control_pb2, objects_pb2

# ---- logs --------------------------------------------------------------------------


class Sub:
    """A cache subscription fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        self.closed = False

    def __aiter__(self) -> Sub:
        return self

    async def __anext__(self) -> Batch:
        return await self.queue.get()

    def close(self) -> None:
        self.closed = True


class Cache:
    def __init__(self, *nodes: objects_pb2.Node) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.sub = Sub()

    def subscribe(self) -> Sub:
        return self.sub


class Agents:
    """Fake agents: lines per task ID; a node in `broken` fails to answer; `held` tasks keep their stream open."""

    def __init__(self, lines: dict[str, list[bytes]], broken: set[str] = frozenset(), held: set[str] = frozenset()):  # type: ignore[assignment]
        self.lines = lines
        self.broken = broken
        self.held = held
        self.requests: list[agent_pb2.TaskLogsRequest] = []

    async def open(
        self, node: objects_pb2.Node, request: agent_pb2.TaskLogsRequest
    ) -> AsyncIterator[agent_pb2.LogLine]:
        self.requests.append(request)
        if node.id in self.broken:
            raise logs.NodeUnavailable(f"its agent at {node.status.addr} did not answer")
        if request.task_id not in self.lines:
            raise logs.TaskGone("not on this node")
        for data in self.lines[request.task_id]:
            yield agent_pb2.LogLine(task_id=request.task_id, data=data)
        if request.task_id in self.held:
            await asyncio.Event().wait()


def node(name: str, **kw: object) -> objects_pb2.Node:
    n = make_node(name, **kw)  # type: ignore[arg-type]
    n.status.addr = f"127.0.0.1:{4000 + int(name[1:])}"
    return n


async def collect(session: logs.LogSession, count: int | None = None) -> list[control_pb2.LogMessage]:
    out = []
    async with asyncio.timeout(5):
        async for msg in session.stream():
            out.append(msg)
            if count is not None and len(out) == count:
                break
    return out


async def test_lines_of_every_task_are_labelled_with_task_and_node() -> None:
    svc = make_service()
    t1, t2 = make_task(svc, 1, node="n1"), make_task(svc, 2, node="n2")
    agents = Agents({t1.id: [b"a\n", b"b\n"], t2.id: [b"c\n"]})
    request = control_pb2.LogsRequest(service_ref="web", tail=5)
    msgs = await collect(logs.LogSession(Cache(node("n1"), node("n2")), agents, request, [t1, t2]))  # type: ignore[arg-type]
    assert sorted((m.task_name, m.node_name, m.data) for m in msgs) == [
        ("web.1", "n1", b"a\n"),
        ("web.1", "n1", b"b\n"),
        ("web.2", "n2", b"c\n"),
    ]
    assert {r.tail for r in agents.requests} == {5}


async def test_an_unreachable_node_gives_one_warning_and_the_rest_goes_on() -> None:
    svc = make_service()
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n2"), make_task(svc, 3, node="n2")]
    agents = Agents({t.id: [b"x\n"] for t in tasks}, broken={"n2"})
    request = control_pb2.LogsRequest(service_ref="web")
    msgs = await collect(logs.LogSession(Cache(node("n1"), node("n2")), agents, request, tasks))  # type: ignore[arg-type]
    warnings = [m.warning for m in msgs if m.warning]
    assert warnings == [
        "node n2 is not available (its agent at 127.0.0.1:4002 did not answer): the logs of its tasks are left out"
    ]
    assert [m.task_name for m in msgs if not m.warning] == ["web.1"]


async def test_down_and_removed_nodes_are_not_even_dialled() -> None:
    svc = make_service()
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n9")]
    agents = Agents({t.id: [b"x\n"] for t in tasks})
    cache = Cache(node("n1", state=DOWN))
    msgs = await collect(logs.LogSession(cache, agents, control_pb2.LogsRequest(service_ref="web"), tasks))  # type: ignore[arg-type]
    assert sorted(m.warning for m in msgs) == [
        "node n1 is not available (it is down): the logs of its tasks are left out",
        "node n9 is not available (it was removed from the cluster): the logs of its tasks are left out",
    ]
    assert agents.requests == []


async def test_a_task_gone_from_its_node_is_skipped_quietly() -> None:
    svc = make_service()
    gone = make_task(svc, 1, node="n1")
    msgs = await collect(
        logs.LogSession(Cache(node("n1")), Agents({}), control_pb2.LogsRequest(service_ref="web"), [gone])
    )  # type: ignore[arg-type]
    assert msgs == []


async def test_following_a_service_picks_up_its_new_tasks_and_ends_with_it() -> None:
    svc = make_service()
    first = make_task(svc, 1, node="n1")
    later = make_task(svc, 2, node="n1")
    agents = Agents({first.id: [b"one\n"], later.id: [b"two\n"]}, held={first.id, later.id})
    cache = Cache(node("n1"))
    request = control_pb2.LogsRequest(service_ref="web", follow=True, tail=1)
    session = logs.LogSession(cache, agents, request, [first], svc.id)  # type: ignore[arg-type]
    stream = session.stream()
    async with asyncio.timeout(5):
        assert (await anext(stream)).data == b"one\n"
        pending = make_task(svc, 3, node="", state=states.PENDING)
        cache.sub.queue.put_nowait(Batch(10, (Change(Kind.TASK, None, pending), Change(Kind.TASK, None, later))))
        assert (await anext(stream)).data == b"two\n"
        await stream.aclose()
    assert cache.sub.closed
    assert all(r.follow for r in agents.requests) and len(agents.requests) == 2
    # A task that started while following is read from its first line: all of its output is new.
    assert [r.tail for r in agents.requests] == [1, 0]


def test_which_tasks_have_output() -> None:
    svc = make_service()
    assert logs.has_output(make_task(svc, 1, state=states.RUNNING))
    assert logs.has_output(make_task(svc, 1, state=states.COMPLETE))
    assert not logs.has_output(make_task(svc, 1, state=states.PREPARING))
    assert not logs.has_output(make_task(svc, 1, state=states.REJECTED))
    assert not logs.has_output(make_task(svc, 1, node="", state=states.PENDING))


def test_a_global_task_is_named_after_its_node() -> None:
    task = make_task(make_service(), 0, node="n1")
    assert logs.task_name(task, {"n1": make_node("n1", hostname="lab-1")}) == "web.lab-1"


# ---- events ------------------------------------------------------------------------

KEYS = Keys("/t")


def put_event(obj: objects_pb2.Service | objects_pb2.Task, kind: Kind, mod: int, create: int) -> rpc.Event:
    kv = rpc.KeyValue(
        key=KEYS.object(kind, obj.id), value=obj.SerializeToString(), mod_revision=mod, create_revision=create
    )
    return rpc.Event(type=rpc.Event.EventType.PUT, kv=kv)


def test_puts_become_create_and_update_events_with_their_revision() -> None:
    svc = make_service()
    created = events.to_event(KEYS, put_event(svc, Kind.SERVICE, 7, 7), set(events.TYPES))
    assert created is not None
    assert (created.revision, created.type, created.action, created.id, created.name) == (
        7,
        "service",
        "create",
        svc.id,
        "web",
    )
    assert created.service.meta.version == 7
    task = make_task(svc, 2)
    updated = events.to_event(KEYS, put_event(task, Kind.TASK, 9, 8), set(events.TYPES))
    assert updated is not None and (updated.action, updated.name, updated.task.id) == ("update", "web.2", task.id)


def test_a_removal_names_what_was_removed() -> None:
    svc = make_service()
    prev = rpc.KeyValue(key=KEYS.object(Kind.SERVICE, svc.id), value=svc.SerializeToString(), mod_revision=7)
    ev = rpc.Event(type=rpc.Event.EventType.DELETE, kv=rpc.KeyValue(key=prev.key, mod_revision=12), prev_kv=prev)
    removed = events.to_event(KEYS, ev, set(events.TYPES))
    assert removed is not None and (removed.revision, removed.action, removed.name) == (12, "remove", "web")


def test_other_keys_and_unwanted_kinds_are_not_events() -> None:
    svc = make_service()
    secret = rpc.Event(kv=rpc.KeyValue(key=KEYS.object(Kind.SECRET, "s1"), value=b"x", mod_revision=3))
    name = rpc.Event(kv=rpc.KeyValue(key=KEYS.name(Kind.SERVICE, "web"), value=b"x", mod_revision=3))
    assert events.to_event(KEYS, secret, set(events.DEFAULT_KINDS)) is None
    assert events.to_event(KEYS, name, set(events.TYPES)) is None
    assert events.to_event(KEYS, put_event(svc, Kind.SERVICE, 3, 3), {Kind.TASK}) is None


def test_event_types_are_checked() -> None:
    assert events.kinds_of([]) == {Kind.SERVICE, Kind.TASK, Kind.NODE}
    assert events.kinds_of(["Task"]) == {Kind.TASK}
    assert events.kinds_of(["secret", "config"]) == {Kind.SECRET, Kind.CONFIG}
    with pytest.raises(errors.InvalidArgument, match="unknown event type 'volume'"):
        events.kinds_of(["volume"])


def test_a_secret_event_never_carries_its_sealed_data() -> None:
    secret = objects_pb2.Secret(id="s1", sealed=b"ciphertext", digest="d")
    secret.spec.name = "db-password"
    kv = rpc.KeyValue(key=KEYS.object(Kind.SECRET, "s1"), value=secret.SerializeToString(), mod_revision=4)
    event = events.to_event(KEYS, rpc.Event(kv=kv), {Kind.SECRET})
    assert event is not None and (event.type, event.name, event.secret.digest) == ("secret", "db-password", "d")
    assert event.secret.sealed == b""


class Etcd:
    """A watch that plays scripted outcomes: a list of responses, or an exception, per call."""

    def __init__(self, *outcomes: list[rpc.WatchResponse] | Exception) -> None:
        self.outcomes = list(outcomes)
        self.starts: list[int] = []

    async def watch(self, prefix: bytes, start: int, *, prev_kv: bool = False) -> AsyncIterator[rpc.WatchResponse]:
        assert prev_kv
        self.starts.append(start)
        outcome = self.outcomes.pop(0) if self.outcomes else asyncio.Event()
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, asyncio.Event):
            await outcome.wait()
        for resp in outcome:  # type: ignore[union-attr]
            yield resp


async def test_a_compacted_revision_is_refused_clearly() -> None:
    stream = events.watch_events(Etcd(etcd_.Compacted(50)), KEYS, 11, set(events.TYPES))  # type: ignore[arg-type]
    with pytest.raises(errors.FailedPrecondition, match=r"revision 10 is no longer in etcd's history .* --since 49"):
        await anext(stream)


async def test_a_broken_watch_resumes_after_the_last_revision_seen() -> None:
    svc = make_service()
    first = rpc.WatchResponse(events=[put_event(svc, Kind.SERVICE, 20, 20)])
    second = rpc.WatchResponse(events=[put_event(svc, Kind.SERVICE, 25, 20)])
    etcd = Etcd([first], errors.Unavailable("member lost"), [second])
    stream = events.watch_events(etcd, KEYS, 11, set(events.TYPES))  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        assert [(await anext(stream)).revision, (await anext(stream)).revision] == [20, 25]
    assert etcd.starts == [11, 21, 21]
