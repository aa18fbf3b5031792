"""Fenced, optimistic, size-bounded writes to etcd.

Every write compares each object's mod_revision with the version the caller
read (0 for "must not exist yet") and the leadership key's create revision
with the one this controller won: a deposed leader's writes cannot land
(reference/reliability.md §1). Large writes are split into transactions of at
most `max_ops` operations; when a compare fails, a second request reads the
keys back so that only the stale operations are dropped and the rest are
retried at once. After a commit the writer waits until the cache has seen it,
so a caller reads its own writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from google.protobuf import message, timestamp_pb2

from shoal import errors, units
from shoal.controller import metrics
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.cache import Cache
from shoal.controller.store.keys import Keys, Kind, kind_of
from shoal.controller.store.window import Window

log = logging.getLogger(__name__)
T = TypeVar("T")

#: etcd refuses transactions with more than --max-txn-ops (default 128)
#: operations; one slot is the fence compare.
DEFAULT_MAX_OPS = 100

#: Transactions of one large write in flight at once (see `Writer.commit_groups`); every caller
#: together is bounded by the writer's window (store/window.py).
DEFAULT_CONCURRENCY = 8


async def _bounded(
    gate: asyncio.Semaphore, window: Window, urgent: bool, jobs: Sequence[Callable[[], Coroutine[Any, Any, T]]]
) -> list[T]:
    """Run `jobs`, each holding the call's gate and a place in the shared window; their results in order
    (the first error wins)."""

    async def one(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async with gate, window.slot(urgent):
            return await job()

    if len(jobs) <= 1:
        return [await one(job) for job in jobs]

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(job)) for job in jobs]
    except BaseExceptionGroup as group:
        # Callers handle NotLeader, Unavailable ... one at a time, as from a single transaction.
        raise errors.first_leaf(group) from None
    return [t.result() for t in tasks]


@dataclasses.dataclass(frozen=True, slots=True)
class Put:
    """Create or replace `obj`; `expect` is the version read (0: must not exist)."""

    obj: message.Message
    expect: int


@dataclasses.dataclass(frozen=True, slots=True)
class Delete:
    """Delete an object; `expect` is the version read."""

    kind: Kind
    obj_id: str
    expect: int


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """Write a plain key (a name reservation), or delete it (value None).

    `expect` is the key's mod_revision to compare (0: must not exist); None
    compares nothing (releasing a name together with its object).
    """

    key: bytes
    value: bytes | None
    expect: int | None = 0


Op = Put | Delete | Claim


@dataclasses.dataclass(frozen=True, slots=True)
class Fence:
    """Proof of leadership: the leader key as this controller created it."""

    key: bytes
    create_revision: int


class Writer:
    """Writes through etcd transactions fenced by the leadership key."""

    def __init__(
        self,
        etcd: etcd_.Etcd,
        keys: Keys,
        cache: Cache,
        fence: Fence | None,
        max_ops: int = DEFAULT_MAX_OPS,
        concurrency: int = DEFAULT_CONCURRENCY,
        window: Window | None = None,
    ):
        self._etcd = etcd
        self._keys = keys
        self._cache = cache
        self._fence = fence
        self._max_ops = max_ops
        self._concurrency = concurrency
        #: Shared by every batched write: the loops' bursts queue here, not in etcd's apply.
        self._window = window if window is not None else Window()

    def _key(self, op: Op) -> bytes:
        if isinstance(op, Put):
            return self._keys.of(op.obj)
        if isinstance(op, Delete):
            return self._keys.object(op.kind, op.obj_id)
        return op.key

    def _value(self, op: Put | Claim, now: timestamp_pb2.Timestamp) -> bytes | None:
        """What a put writes (None: the op deletes its key)."""
        if isinstance(op, Claim):
            return op.value
        # Callers hand in cache-owned messages too: stamp a copy.
        obj = type(op.obj)()
        obj.CopyFrom(op.obj)
        meta = obj.meta  # type: ignore[attr-defined]
        meta.updated_at.CopyFrom(now)
        if op.expect == 0:
            meta.created_at.CopyFrom(now)
        # The stored version is always the key's mod_revision; never persist a stale copy of it.
        meta.version = 0
        return obj.SerializeToString()

    async def commit(self, ops: Sequence[Op]) -> int:
        """All of `ops` in one transaction, or none: raises Conflict if any object changed.

        Returns the revision of the commit, once the cache has seen it.
        """
        if len(ops) > self._max_ops:
            raise ValueError(f"{len(ops)} operations do not fit one transaction (max {self._max_ops})")
        ok, revision, stale = await self._txn(ops)
        if not ok:
            metrics.TXN_CONFLICTS.inc(len(stale))
            raise errors.Conflict(f"{len(stale)} object(s) changed since they were read")
        with metrics.COMMIT_ECHO_WAIT.time():
            await self._cache.wait_for(revision)
        return revision

    async def commit_each(self, ops: Sequence[Op], *, urgent: bool = False) -> list[bool]:
        """Each op on its own terms, batched: returns which ops landed (stale ones are dropped)."""
        return await self.commit_groups([[op] for op in ops], urgent=urgent)

    async def commit_groups(self, groups: Sequence[Sequence[Op]], *, urgent: bool = False) -> list[bool]:
        """Each group all-or-nothing, many groups per transaction; returns which groups landed.

        A group whose object changed since it was read is dropped and the
        others are retried at once, so one stale task does not hold back a
        batch of a hundred decisions. Up to `concurrency` transactions are in
        flight at once: etcd commits concurrent requests together (one raft
        entry and one fsync for all), so a thousand writes cost a few disk
        syncs instead of ten in a row. The groups are independent (no key in
        two of them), so the order in which the transactions land is free.

        Every caller together has at most the window's limit of transactions
        in flight (store/window.py). With a bound per call only, a scheduling
        pass over 100,000 tasks (its write-ahead chunks) put 40,000 operations
        into etcd at once; its apply fell seconds behind its log, and etcd 3.4
        then refuses lease refreshes (bench/placement.py). `urgent` writes take
        the window's next free place before bulk ones: status reports finish
        work the bulk writes started. Single `commit`s (API requests) do not
        wait behind a burst at all.
        """
        landed = [False] * len(groups)
        chunks: list[list[int]] = []
        chunk: list[int] = []
        size = 0
        for i, group in enumerate(groups):
            if not group:
                continue
            if len(group) > self._max_ops:
                raise ValueError(
                    f"a group of {len(group)} operations does not fit one transaction (max {self._max_ops})"
                )
            if chunk and size + len(group) > self._max_ops:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(i)
            size += len(group)
        if chunk:
            chunks.append(chunk)
        jobs = [functools.partial(self._commit_chunk, c, groups, landed) for c in chunks]
        revisions = await _bounded(asyncio.Semaphore(self._concurrency), self._window, urgent, jobs)
        revision = max(revisions, default=0)
        if revision:
            # The control loops write in batches and read their own writes on their next pass: under
            # load the watch may take longer than a client would wait, but a write that landed is no
            # reason to end the term (a broken watch is resumed by the cache, a lost etcd ends the lease).
            await self._cache.wait_for(revision, timeout=None)
        return landed

    async def _commit_chunk(self, chunk: list[int], groups: Sequence[Sequence[Op]], landed: list[bool]) -> int:
        """One transaction of whole groups, retried without the stale ones; the revision it landed at (0: none)."""
        while chunk:
            ops = [op for i in chunk for op in groups[i]]
            ok, rev, stale = await self._txn(ops)
            if ok:
                for i in chunk:
                    landed[i] = True
                return rev
            metrics.TXN_CONFLICTS.inc(len(stale))
            owner = [i for i in chunk for _ in groups[i]]
            bad = {owner[pos] for pos in stale}
            chunk = [i for i in chunk if i not in bad]
        return 0

    async def _txn(self, ops: Sequence[Op]) -> tuple[bool, int, set[int]]:
        """(committed, revision, positions of stale ops); raises NotLeader if the fence failed."""
        now = timestamp_pb2.Timestamp()
        units.stamp_now(now)
        # Built in place: messages made apart and handed to TxnRequest(...) are each copied again,
        # and a thousand-task pass writes a hundred thousand of them (bench/placement.py).
        req = etcd_.rpc.TxnRequest()
        keys = []
        for op in ops:
            key = self._key(op)
            keys.append(key)
            if op.expect is not None:
                etcd_.add_mod_revision_is(req.compare, key, op.expect)
            value = None if isinstance(op, Delete) else self._value(op, now)
            if value is None:
                etcd_.add_delete(req.success, key)
            else:
                etcd_.add_put(req.success, key, value)
        if self._fence is not None:
            req.compare.append(etcd_.create_revision_is(self._fence.key, self._fence.create_revision))
        resp = await self._etcd.send_txn(req)
        if resp.succeeded:
            return True, resp.header.revision, set()
        # Conflicts are rare: only then read the keys back (one more request), rather than sending
        # a read of every key with every transaction as its failure branch.
        reads = [etcd_.get_op(k) for k in keys]
        if self._fence is not None:
            reads.append(etcd_.get_op(self._fence.key))
        resp = await self._etcd.txn([], reads)
        if self._fence is not None:
            fence_kvs = resp.responses[-1].response_range.kvs
            if not fence_kvs or fence_kvs[0].create_revision != self._fence.create_revision:
                raise errors.NotLeader("lost leadership: the write was fenced off")
        stale = set()
        for pos, op in enumerate(ops):
            kvs = resp.responses[pos].response_range.kvs
            current = kvs[0].mod_revision if kvs else 0
            if op.expect is not None and current != op.expect:
                stale.add(pos)
        if not stale:
            # Every compare holds when re-read: something changed and changed back in between.
            stale = set(range(len(ops)))
        log.debug("transaction of %d ops had %d stale", len(ops), len(stale))
        return False, resp.header.revision, stale


def put(obj: message.Message) -> Put:
    """An update of an object read from the cache (its version is the expectation)."""
    return Put(obj, obj.meta.version)  # type: ignore[attr-defined]


def create(obj: message.Message) -> Put:
    """A creation: the key must not exist."""
    return Put(obj, 0)


def delete(obj: message.Message) -> Delete:
    """A deletion of an object read from the cache."""
    return Delete(kind_of(obj), obj.id, obj.meta.version)  # type: ignore[attr-defined]
