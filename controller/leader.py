"""Leader election through an etcd lease, and the leader's lifetime.

A controller campaigns by creating the leadership key under a fresh lease in a
transaction that only succeeds if the key does not exist. The winner keeps the
lease alive and runs the control loops (`lead`) in a task group that lives
exactly as long as the lease: if the keep-alive fails, if the lease expires,
or if a fenced write finds the key changed, the loops are cancelled and the
controller campaigns again. The key's create revision is the fence every
write compares (see store/writer.py), so even a paused ex-leader that has not
noticed yet cannot write. Followers remember who leads, to redirect clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from shoal import errors
from shoal.backoff import Backoff
from shoal.controller import metrics
from shoal.controller.keeper import LeaseKeeper
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.keys import Keys
from shoal.controller.store.writer import Fence

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LeaderInfo:
    """Who leads: the controller's ID and the address clients should use."""

    controller_id: str
    addr: str

    def encode(self) -> bytes:
        return json.dumps({"id": self.controller_id, "addr": self.addr}).encode()

    @classmethod
    def decode(cls, data: bytes) -> LeaderInfo | None:
        try:
            doc = json.loads(data)
            return cls(str(doc["id"]), str(doc["addr"]))
        except (ValueError, KeyError, TypeError):
            return None


class Election:
    """Campaigns for leadership forever; runs `lead(fence)` whenever this controller wins."""

    def __init__(self, etcd: etcd_.Etcd, keys: Keys, me: LeaderInfo, *, ttl: int = 3) -> None:
        self._etcd = etcd
        self._keys = keys
        self.me = me
        self.ttl = ttl
        #: The leader as last seen (ourselves while leading); None when unknown.
        self.leader: LeaderInfo | None = None
        self.is_leader = False

    async def run(self, lead: Callable[[Fence], Awaitable[object]]) -> NoReturn:
        """Campaign, lead while the lease holds, step down, and campaign again."""
        backoff = Backoff(base=0.2, cap=float(self.ttl))
        while True:
            try:
                await self._campaign_once(lead)
                backoff.reset()
            except* errors.ShoalError as group:
                delay = backoff.next()
                log.warning("leadership round ended (%s); campaigning again in %.2fs", errors.first_leaf(group), delay)
                await asyncio.sleep(delay)
            except* Exception as group:
                # A crashed loop must not leave a leader without a scheduler: step down, start over.
                delay = backoff.next()
                log.error(
                    "a control loop crashed; campaigning again in %.2fs", delay, exc_info=errors.first_leaf(group)
                )
                await asyncio.sleep(delay)

    async def _campaign_once(self, lead: Callable[[Fence], Awaitable[object]]) -> None:
        lease = await self._etcd.lease_grant(self.ttl)
        key = self._keys.leader
        resp = await self._etcd.txn(
            [etcd_.create_revision_is(key, 0)], [etcd_.put_op(key, self.me.encode(), lease)], [etcd_.get_op(key)]
        )
        if not resp.succeeded:
            await self._etcd.lease_revoke(lease)
            kvs = resp.responses[0].response_range.kvs
            self.leader = LeaderInfo.decode(kvs[0].value) if kvs else None
            await self._wait_for_vacancy(resp.header.revision)
            return
        fence = Fence(key, resp.header.revision)
        log.info("became leader (fence revision %d)", fence.create_revision)
        self.leader, self.is_leader = self.me, True
        metrics.IS_LEADER.set(1)
        metrics.LEADER_CHANGES.inc()
        try:
            async with asyncio.TaskGroup() as tg:
                # From a thread of its own: a busy event loop is not a dead leader (keeper.py).
                keepalive = tg.create_task(LeaseKeeper(self._etcd, lease, self.ttl).run(), name="lease-keepalive")
                await lead(fence)
                keepalive.cancel()
                raise errors.Unavailable("the control loops returned")
        finally:
            self.is_leader = False
            self.leader = None
            metrics.IS_LEADER.set(0)
            log.info("stepped down")
            # Give the lease back so that another controller need not wait out its TTL.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(self._etcd.lease_revoke(lease))

    async def _wait_for_vacancy(self, revision: int) -> None:
        """Wait until the leadership key is deleted (its holder stepped down or its lease expired)."""
        key = self._keys.leader
        async for resp in self._etcd.watch(key, revision + 1):
            for ev in resp.events:
                if ev.kv.key != key:
                    continue
                if ev.type == etcd_.rpc.Event.EventType.DELETE:
                    self.leader = None
                    return
                self.leader = LeaderInfo.decode(ev.kv.value)
