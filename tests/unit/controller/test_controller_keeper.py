"""The lease keeper's thread: a refused refresh is retried while the lease lasts, and only then given up."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from aetcd import rpc

from shoal.controller import keeper
from shoal.controller.store import etcd as etcd_


class Refused(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "etcdserver: request timed out, waiting for the applied index took too long"


class FakeLeases:
    """etcd's lease service: refuses the first `refusals` streams (after their first request), then renews."""

    def __init__(self, refusals: int, ttl: int = 3) -> None:
        self.refusals = refusals
        self.ttl = ttl
        self.streams = 0

    def LeaseKeepAlive(  # noqa: N802
        self, requests: Iterator[rpc.LeaseKeepAliveRequest], timeout: float | None = None
    ) -> Iterator[rpc.LeaseKeepAliveResponse]:
        self.streams += 1
        refused = self.streams <= self.refusals
        for req in requests:
            if refused:
                raise Refused()
            yield rpc.LeaseKeepAliveResponse(ID=req.ID, TTL=self.ttl)


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch) -> FakeLeases:
    fake = FakeLeases(refusals=0)
    monkeypatch.setattr(keeper.rpc, "LeaseStub", lambda channel: fake)
    monkeypatch.setattr(keeper, "RETRY", 0.01)
    return fake


def make_keeper(ttl: int) -> keeper.LeaseKeeper:
    store = etcd_.Etcd(["http://127.0.0.1:1"])  # never dialled: the stub is the fake
    return keeper.LeaseKeeper(store, lease=7, ttl=ttl)


async def test_refused_refreshes_are_retried_and_the_lease_is_kept(leases: FakeLeases) -> None:
    leases.refusals = 5
    keep = make_keeper(ttl=3)
    job = asyncio.create_task(keep.run())
    try:
        for _ in range(200):
            if leases.streams > leases.refusals:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # renewed on the sixth stream: leadership holds
        assert leases.streams == leases.refusals + 1
        assert not job.done()
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


async def test_refusals_beyond_the_lease_lose_leadership(leases: FakeLeases) -> None:
    leases.refusals = 10**6
    keep = make_keeper(ttl=1)
    with pytest.raises(keeper.LostLeadership, match="applied index"):
        async with asyncio.timeout(10):
            await keep.run()
    assert leases.streams > 1  # it did try again before giving up


class SlowLeases:
    """etcd's lease service behind a lagging apply: every refresh is answered `delay` seconds after it arrives.

    Requests are read as they come (by a thread, as gRPC does) and answered one after another.
    """

    def __init__(self, delay: float, ttl: int) -> None:
        self.delay = delay
        self.ttl = ttl
        self.answered = 0

    def LeaseKeepAlive(  # noqa: N802
        self, requests: Iterator[rpc.LeaseKeepAliveRequest], timeout: float | None = None
    ) -> Iterator[rpc.LeaseKeepAliveResponse]:
        arrived: queue.Queue[rpc.LeaseKeepAliveRequest | None] = queue.Queue()

        def read() -> None:
            for req in requests:
                arrived.put(req)
            arrived.put(None)

        threading.Thread(target=read, daemon=True).start()
        while (req := arrived.get()) is not None:
            time.sleep(self.delay)
            self.answered += 1
            yield rpc.LeaseKeepAliveResponse(ID=req.ID, TTL=self.ttl)


async def test_a_slow_etcd_that_answers_every_refresh_keeps_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    # Answers come 0.3 s after each refresh, well within the 1 s TTL: refreshes sent while one is
    # pending would queue, and each answer would then count from an ever older request.
    slow = SlowLeases(delay=0.3, ttl=1)
    monkeypatch.setattr(keeper.rpc, "LeaseStub", lambda channel: slow)
    job = asyncio.create_task(make_keeper(ttl=1).run())
    try:
        await asyncio.sleep(4.0)
        assert not job.done(), job.exception() if job.done() else None
        assert slow.answered >= 5
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
