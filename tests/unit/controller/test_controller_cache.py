"""The cache: list at R, watch from R+1, resume after a break, re-list after compaction.

Driven by a scripted fake of our own etcd adapter (range_pages and watch), so each path of
`Cache.run` is exercised deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aetcd import rpc

from shoal import errors
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.cache import Cache
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import objects_pb2

KEYS = Keys("/t")


def kv(service: objects_pb2.Service, revision: int) -> rpc.KeyValue:
    return rpc.KeyValue(key=KEYS.of(service), value=service.SerializeToString(), mod_revision=revision)


def put(service: objects_pb2.Service, revision: int) -> rpc.WatchResponse:
    resp = rpc.WatchResponse()
    resp.header.revision = revision
    resp.events.add(type=rpc.Event.EventType.PUT, kv=kv(service, revision))
    return resp


def delete(service: objects_pb2.Service, revision: int) -> rpc.WatchResponse:
    resp = rpc.WatchResponse()
    resp.header.revision = revision
    resp.events.add(type=rpc.Event.EventType.DELETE, kv=rpc.KeyValue(key=KEYS.of(service), mod_revision=revision))
    return resp


def svc(sid: str, name: str) -> objects_pb2.Service:
    s = objects_pb2.Service(id=sid)
    s.spec.name = name
    return s


class ScriptedEtcd:
    """Listings and watch streams handed out in order; a stream ends with its exception."""

    def __init__(self, listings, streams) -> None:  # type: ignore[no-untyped-def]
        self.listings = list(listings)
        self.streams = list(streams)
        self.watched_from: list[int] = []
        self.done = asyncio.Event()

    async def range_pages(self, prefix: bytes) -> AsyncIterator[tuple[int, list[rpc.KeyValue]]]:
        revision, kvs = self.listings.pop(0)
        yield revision, kvs

    async def watch(self, prefix: bytes, start: int) -> AsyncIterator[rpc.WatchResponse]:
        self.watched_from.append(start)
        if not self.streams:
            self.done.set()
            await asyncio.Event().wait()
        responses, end = self.streams.pop(0)
        for resp in responses:
            yield resp
        raise end


async def run_until_done(cache: Cache, fake: ScriptedEtcd) -> None:
    task = asyncio.create_task(cache.run())
    try:
        async with asyncio.timeout(10):
            await fake.done.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_list_then_watch_from_the_next_revision_and_resume_after_a_break() -> None:
    a, b = svc("a", "web"), svc("b", "api")
    fake = ScriptedEtcd(
        [(10, [kv(a, 10)])],
        [([put(b, 11)], errors.Unavailable("stream broke")), ([delete(a, 12)], errors.Unavailable("again"))],
    )
    cache = Cache(fake, KEYS)  # type: ignore[arg-type]
    sub = cache.subscribe()
    await run_until_done(cache, fake)
    # Resumed right after the last revision seen, without listing again.
    assert fake.watched_from == [11, 12, 13]
    assert set(cache.services) == {"b"} and cache.service_by_name == {"api": "b"}
    assert cache.revision == 12
    changes = [(c.kind, c.created, c.deleted, c.obj.id) for batch in sub.drain() for c in batch.changes]
    assert changes == [
        (Kind.SERVICE, True, False, "a"),
        (Kind.SERVICE, True, False, "b"),
        (Kind.SERVICE, False, True, "a"),
    ]


async def test_a_compacted_watch_means_a_full_relist_published_as_the_difference() -> None:
    a, b, c = svc("a", "web"), svc("b", "api"), svc("c", "db")
    renamed = svc("b", "api2")
    fake = ScriptedEtcd(
        [(10, [kv(a, 5), kv(b, 10)]), (40, [kv(a, 5), kv(renamed, 33), kv(c, 40)])],
        [([], etcd_.Compacted(30))],
    )
    cache = Cache(fake, KEYS)  # type: ignore[arg-type]
    sub = cache.subscribe()
    await run_until_done(cache, fake)
    assert fake.watched_from == [11, 41]
    assert {s.spec.name for s in cache.services.values()} == {"web", "api2", "db"}
    assert cache.service_by_name == {"web": "a", "api2": "b", "db": "c"}
    assert cache.services["b"].meta.version == 33
    batches = sub.drain()
    relist = [(c.created, c.obj.id) for c in batches[-1].changes]
    # Only what differs: b changed, c appeared; a (same mod_revision) is not republished.
    assert sorted(relist) == [(False, "b"), (True, "c")]


def task_kv(task: objects_pb2.Task, revision: int) -> rpc.KeyValue:
    return rpc.KeyValue(key=KEYS.of(task), value=task.SerializeToString(), mod_revision=revision)


async def test_task_tallies_follow_every_change_and_match_a_recount() -> None:
    """The metrics' tallies are kept by the cache as it applies changes; they must equal a fresh count."""
    from shoal import states
    from shoal.controller.store.tallies import TaskTallies

    def task(tid: str, state: int, node: str = "n1", cpus: int = 500_000_000) -> objects_pb2.Task:
        t = objects_pb2.Task(id=tid, service_id="s1", node_id=node, desired_state=states.RUNNING)
        t.status.state = state
        t.spec.resources.reservations.nano_cpus = cpus
        return t

    def watched(revision: int, puts: list[objects_pb2.Task], deletes: list[objects_pb2.Task]) -> rpc.WatchResponse:
        resp = rpc.WatchResponse()
        resp.header.revision = revision
        for t in puts:
            resp.events.add(type=rpc.Event.EventType.PUT, kv=task_kv(t, revision))
        for t in deletes:
            resp.events.add(type=rpc.Event.EventType.DELETE, kv=rpc.KeyValue(key=KEYS.of(t), mod_revision=revision))
        return resp

    a, b, c = task("a", states.ASSIGNED), task("b", states.RUNNING), task("c", states.PENDING, node="")
    fake = ScriptedEtcd(
        [(10, [task_kv(a, 10), task_kv(b, 10), task_kv(c, 10)])],
        [
            (
                [
                    watched(11, [task("a", states.RUNNING), task("c", states.ASSIGNED, node="n2")], []),
                    watched(12, [task("b", states.COMPLETE)], [task("a", states.RUNNING)]),
                ],
                errors.Unavailable("end"),
            )
        ],
    )
    cache = Cache(fake, KEYS)  # type: ignore[arg-type]
    await run_until_done(cache, fake)
    recount = TaskTallies()
    for t in cache.tasks.values():
        recount.add(t)
    assert cache.tallies.states == recount.states == {states.ASSIGNED: 1, states.COMPLETE: 1}
    assert cache.tallies.by_service == recount.by_service
    # b finished (its reservation is free), a is gone: only c holds CPU, on n2.
    assert cache.tallies.reserved == recount.reserved == {"n2": [500_000_000, 0]}
    # Every change of a reservation was counted (the node metrics are rebuilt after one).
    # (a's report moved no reservation, so it is no change: the node metrics are not rebuilt for it).
    assert cache.tallies.reserved_changes == 5  # a, b listed; c in; b out; a out
    # A report keeps a task in its indexes; a move to a node re-indexes it; a deletion drops it.
    assert cache.tasks_by_node == {"n1": {"b"}, "n2": {"c"}}
    assert cache.tasks_by_service == {"s1": {"b", "c"}}


async def test_node_changes_are_counted_and_each_cache_is_a_new_generation() -> None:
    """The node metrics are cached on (generation, node_changes): every set or delete of a node must count."""

    def node_kv(node: objects_pb2.Node, revision: int) -> rpc.KeyValue:
        return rpc.KeyValue(key=KEYS.of(node), value=node.SerializeToString(), mod_revision=revision)

    n1, n2 = objects_pb2.Node(id="n1", name="a"), objects_pb2.Node(id="n2", name="b")
    gone = rpc.WatchResponse()
    gone.header.revision = 12
    gone.events.add(type=rpc.Event.EventType.DELETE, kv=rpc.KeyValue(key=KEYS.of(n1), mod_revision=12))
    changed = rpc.WatchResponse()
    changed.header.revision = 11
    changed.events.add(type=rpc.Event.EventType.PUT, kv=node_kv(n2, 11))
    fake = ScriptedEtcd([(10, [node_kv(n1, 10), node_kv(n2, 10)])], [([changed, gone], errors.Unavailable("end"))])
    cache = Cache(fake, KEYS)  # type: ignore[arg-type]
    await run_until_done(cache, fake)
    assert set(cache.nodes) == {"n2"}
    assert cache.node_changes == 4  # two listed, one changed, one deleted
    assert Cache(fake, KEYS).generation != cache.generation  # type: ignore[arg-type]


def test_replacing_a_tally_equals_counting_out_and_in() -> None:
    """The shortcut for a report and the long way agree, for reports and for moves alike."""
    from shoal import states
    from shoal.controller.store.tallies import TaskTallies

    def task(state: int, node: str = "n1", service: str = "s1", version: int = 1) -> objects_pb2.Task:
        t = objects_pb2.Task(id="t", service_id=service, node_id=node, desired_state=states.RUNNING)
        t.status.state = state
        t.spec_version = version
        t.spec.resources.reservations.memory_bytes = 64
        return t

    cases = [
        (task(states.ASSIGNED), task(states.RUNNING)),
        (task(states.RUNNING), task(states.COMPLETE)),
        (task(states.PENDING, node=""), task(states.ASSIGNED)),
        (task(states.RUNNING), task(states.RUNNING, node="n2")),
        (task(states.RUNNING), task(states.RUNNING, service="s2")),
        (task(states.RUNNING), task(states.RUNNING, version=2)),
    ]
    for old, new in cases:
        short, long = TaskTallies(), TaskTallies()
        for tallies in (short, long):
            tallies.add(task(states.RUNNING, node="n3"))
            tallies.add(old)
        short.replace(old, new)
        long.add(old, -1)
        long.add(new, +1)
        assert (short.states, short.by_service, short.reserved) == (long.states, long.by_service, long.reserved)
