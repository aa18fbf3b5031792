"""The fenced writer: size-bounded transactions, dropping only stale groups, the leadership fence.

`MemoryEtcd` is a fake of the `txn` call only: a dict of keys with their create
and mod revisions that evaluates compares the way etcd does and answers with
real aetcd `TxnResponse` messages.
"""

from __future__ import annotations

import asyncio

import pytest
from aetcd import rpc

from shoal import errors
from shoal.controller.store import keys, window, writer
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2

K = keys.Keys("/t")
EQUAL = rpc.Compare.CompareResult.EQUAL
MOD = rpc.Compare.CompareTarget.MOD
CREATE = rpc.Compare.CompareTarget.CREATE


class MemoryEtcd:
    """Keys -> (value, create_revision, mod_revision); one revision per successful write txn."""

    def __init__(self) -> None:
        self.kv: dict[bytes, tuple[bytes, int, int]] = {}
        self.revision = 1
        self.txns: list[rpc.TxnRequest] = []

    def seed(self, key: bytes, value: bytes = b"x") -> int:
        self.revision += 1
        create = self.kv[key][1] if key in self.kv else self.revision
        self.kv[key] = (value, create, self.revision)
        return self.revision

    def _holds(self, c: rpc.Compare) -> bool:
        assert c.result == EQUAL
        _, create, mod = self.kv.get(c.key, (b"", 0, 0))
        return (mod == c.mod_revision) if c.target == MOD else (create == c.create_revision)

    def _range(self, key: bytes) -> rpc.ResponseOp:
        kvs = []
        if key in self.kv:
            value, create, mod = self.kv[key]
            kvs.append(rpc.KeyValue(key=key, value=value, create_revision=create, mod_revision=mod))
        return rpc.ResponseOp(response_range=rpc.RangeResponse(kvs=kvs))

    async def txn(self, compare, success, failure=()):  # type: ignore[no-untyped-def]
        self.txns.append(rpc.TxnRequest(compare=compare, success=success, failure=failure))
        ok = all(self._holds(c) for c in compare)
        ops = success if ok else failure
        writes = any(op.WhichOneof("request") != "request_range" for op in ops)
        if writes:
            self.revision += 1
        responses = []
        for op in ops:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                create = self.kv[op.request_put.key][1] if op.request_put.key in self.kv else self.revision
                self.kv[op.request_put.key] = (op.request_put.value, create, self.revision)
                responses.append(rpc.ResponseOp(response_put=rpc.PutResponse()))
            elif kind == "request_delete_range":
                self.kv.pop(op.request_delete_range.key, None)
                responses.append(rpc.ResponseOp(response_delete_range=rpc.DeleteRangeResponse()))
            else:
                responses.append(self._range(op.request_range.key))
        return rpc.TxnResponse(succeeded=ok, header=rpc.ResponseHeader(revision=self.revision), responses=responses)

    async def send_txn(self, req: rpc.TxnRequest) -> rpc.TxnResponse:
        return await self.txn(req.compare, req.success, req.failure)

    def task(self, task_id: str) -> objects_pb2.Task:
        return objects_pb2.Task.FromString(self.kv[K.object(Kind.TASK, task_id)][0])

    def ops_per_txn(self) -> list[int]:
        """Operations of each writing transaction (the reads after a conflict left out)."""
        return [len(t.success) for t in self.txns if not _reads_only(t)]


def _reads_only(txn: rpc.TxnRequest) -> bool:
    return all(op.WhichOneof("request") == "request_range" for op in txn.success)


class WaitingCache:
    """The cache's read-your-writes wait, recorded."""

    def __init__(self) -> None:
        self.waited: list[int] = []

    async def wait_for(self, revision: int, timeout: float | None = 10.0) -> None:
        self.waited.append(revision)


@pytest.fixture
def etcd() -> MemoryEtcd:
    return MemoryEtcd()


@pytest.fixture
def cache() -> WaitingCache:
    return WaitingCache()


def make_writer(
    etcd: MemoryEtcd, cache: WaitingCache, *, max_ops: int = 100, fenced: bool = True, **bounds: object
) -> writer.Writer:
    """A writer on the fake; `bounds`: its concurrency and window, when a test sets them."""
    fence = writer.Fence(K.leader, etcd.seed(K.leader, b"me")) if fenced else None
    return writer.Writer(etcd, K, cache, fence, max_ops=max_ops, **bounds)  # type: ignore[arg-type]


def stored(etcd: MemoryEtcd, task_id: str, image: str = "old") -> objects_pb2.Task:
    """A task already in etcd, as the cache would hand it out (meta.version = mod_revision)."""
    task = objects_pb2.Task(id=task_id)
    task.spec.container.image = image
    task.meta.version = etcd.seed(K.object(Kind.TASK, task_id), task.SerializeToString())
    return task


def edited(task: objects_pb2.Task, image: str = "new") -> writer.Put:
    new = objects_pb2.Task()
    new.CopyFrom(task)
    new.spec.container.image = image
    return writer.put(new)


def created(task_id: str) -> writer.Put:
    return writer.create(objects_pb2.Task(id=task_id))


async def test_groups_that_fit_go_in_one_fenced_transaction(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a = stored(etcd, "a")
    landed = await wr.commit_groups([[edited(a), created("b")], [created("c")]])
    assert landed == [True, True]
    assert etcd.ops_per_txn() == [3]
    (txn,) = etcd.txns
    assert any(c.key == K.leader and c.target == CREATE for c in txn.compare)
    assert etcd.task("a").spec.container.image == "new"
    assert cache.waited == [etcd.revision]


async def test_stored_objects_carry_timestamps_and_never_a_version(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a = stored(etcd, "a")
    op = edited(a)
    await wr.commit_groups([[op], [created("b")]])
    assert etcd.task("a").meta.version == 0
    assert etcd.task("a").meta.HasField("updated_at")
    assert not etcd.task("a").meta.HasField("created_at")  # only a creation stamps created_at
    assert etcd.task("b").meta.HasField("created_at")
    assert op.obj.meta.version == a.meta.version  # the caller's message is left alone
    assert not op.obj.meta.HasField("updated_at")


async def test_groups_are_split_by_max_ops_and_never_cut(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache, max_ops=3)
    groups = [[created(f"{g}{i}") for i in range(n)] for g, n in zip("abcde", [2, 1, 2, 1, 3], strict=True)]
    assert await wr.commit_groups(groups) == [True] * 5
    assert etcd.ops_per_txn() == [3, 3, 3]
    assert cache.waited == [etcd.revision]  # waits once, for the last revision


async def test_a_group_larger_than_a_transaction_is_refused(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache, max_ops=2)
    with pytest.raises(ValueError, match="does not fit"):
        await wr.commit_groups([[created("a"), created("b"), created("c")]])
    assert etcd.txns == []


async def test_only_stale_groups_are_dropped_and_the_rest_retried(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a, b, c = stored(etcd, "a"), stored(etcd, "b"), stored(etcd, "c")
    stored(etcd, "b", image="changed-meanwhile")
    landed = await wr.commit_groups([[edited(a)], [edited(b)], [edited(c), created("d")]])
    assert landed == [True, False, True]
    assert etcd.ops_per_txn() == [4, 3]
    assert etcd.task("b").spec.container.image == "changed-meanwhile"
    assert etcd.task("a").spec.container.image == etcd.task("c").spec.container.image == "new"


async def test_one_stale_op_drops_its_whole_group(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    x, y = stored(etcd, "x"), stored(etcd, "y")
    stored(etcd, "y", image="changed-meanwhile")
    assert await wr.commit_groups([[edited(x), edited(y)], [created("z")]]) == [False, True]
    assert etcd.task("x").spec.container.image == "old"


async def test_a_creation_of_an_existing_key_is_stale(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    stored(etcd, "a")
    assert await wr.commit_groups([[created("a")], [created("b")]]) == [False, True]


async def test_when_every_group_is_stale_nothing_is_awaited(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a = stored(etcd, "a")
    stored(etcd, "a", image="changed")
    assert await wr.commit_groups([[edited(a)]]) == [False]
    assert cache.waited == []


async def test_a_lost_fence_raises_not_leader(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a = stored(etcd, "a")
    del etcd.kv[K.leader]
    etcd.seed(K.leader, b"someone-else")  # re-created: a new create revision
    with pytest.raises(errors.NotLeader):
        await wr.commit_groups([[edited(a)]])
    assert etcd.task("a").spec.container.image == "old"
    with pytest.raises(errors.NotLeader):
        await wr.commit([edited(a)])


async def test_a_lost_fence_wins_over_stale_ops(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    a = stored(etcd, "a")
    stored(etcd, "a", image="changed")
    del etcd.kv[K.leader]
    with pytest.raises(errors.NotLeader):
        await wr.commit_groups([[edited(a)]])


async def test_commit_is_all_or_nothing(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache, max_ops=2)
    a, b = stored(etcd, "a"), stored(etcd, "b")
    stored(etcd, "b", image="changed")
    with pytest.raises(errors.Conflict):
        await wr.commit([edited(a), edited(b)])
    assert etcd.task("a").spec.container.image == "old"
    with pytest.raises(ValueError):
        await wr.commit([created("x"), created("y"), created("z")])
    revision = await wr.commit([edited(a)])
    assert revision == etcd.revision and cache.waited == [revision]


async def test_commit_each_reports_each_op(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache, fenced=False)
    a, b = stored(etcd, "a"), stored(etcd, "b")
    stored(etcd, "a", image="changed")
    assert await wr.commit_each([edited(a), writer.delete(b)]) == [False, True]
    assert K.object(Kind.TASK, "b") not in etcd.kv
    assert all(c.key != K.leader for t in etcd.txns for c in t.compare)  # unfenced


async def test_claims_reserve_and_release_names(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    wr = make_writer(etcd, cache)
    name = K.name(Kind.SERVICE, "web")
    assert await wr.commit_groups([[writer.Claim(name, b"s1")]]) == [True]
    assert await wr.commit_groups([[writer.Claim(name, b"s2")]]) == [False]  # taken
    assert etcd.kv[name][0] == b"s1"
    assert await wr.commit_groups([[writer.Claim(name, None, expect=None)]]) == [True]
    assert name not in etcd.kv
    assert [c.key for c in etcd.txns[-1].compare] == [K.leader]  # expect=None compares nothing


def counting(etcd: MemoryEtcd) -> list[int]:
    """Make etcd slow, and count its transactions in flight: [now, most]."""
    seen = [0, 0]
    plain_txn = etcd.txn

    async def slow_txn(compare, success, failure=()):  # type: ignore[no-untyped-def]
        seen[0] += 1
        seen[1] = max(seen[1], seen[0])
        await asyncio.sleep(0.01)  # etcd is busy: every waiting transaction piles up if it may
        try:
            return await plain_txn(compare, success, failure)
        finally:
            seen[0] -= 1

    etcd.txn = slow_txn  # type: ignore[method-assign]
    return seen


def fixed(n: int) -> window.Window:
    """A window that stays at `n` places, however slow the fake is."""
    return window.Window(initial=n, floor=n, ceiling=n)


async def test_batched_writes_of_every_caller_share_one_bound(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    """Two bulk writers at once still put at most the window's limit of transactions into etcd together."""
    seen = counting(etcd)
    w = make_writer(etcd, cache, max_ops=2, concurrency=3, window=fixed(3))
    first = [created(f"a{i}") for i in range(20)]
    second = [created(f"b{i}") for i in range(20)]
    landed = await asyncio.gather(w.commit_each(first), w.commit_each(second))
    assert all(landed[0]) and all(landed[1])
    assert seen[1] == 3  # not 3 per call


async def test_urgent_writes_count_in_the_window_and_go_first(etcd: MemoryEtcd, cache: WaitingCache) -> None:
    seen = counting(etcd)
    w = make_writer(etcd, cache, max_ops=2, concurrency=2, window=fixed(2))
    bulk = [created(f"a{i}") for i in range(20)]
    statuses = [created(f"b{i}") for i in range(4)]
    bulk_write = asyncio.create_task(w.commit_each(bulk))
    for _ in range(100):  # a few turns of the loop: the bulk write takes both places
        if seen[0] == 2:
            break
        await asyncio.sleep(0)
    assert seen[0] == 2
    landed = await w.commit_each(statuses, urgent=True)
    assert all(landed) and all(await bulk_write)
    assert seen[1] == 2
    # The urgent write's two transactions came right after the two bulk ones in flight, not after all ten.
    firsts = [t.success[0].request_put.key.rsplit(b"/", 1)[-1][:1] for t in etcd.txns]
    assert firsts[:4] == [b"a", b"a", b"b", b"b"]
