"""The heap trim loop: pages go back after growth on a busy store; collections are rare; neither on a quiet store."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest

from shoal import heap


class Recorder:
    """Stands in for `heap.collect` and `heap.release`, noting each call with the revision it happened at."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, revision: list[int]) -> None:
        self.collected: list[tuple[int, bool]] = []
        self.released: list[int] = []
        monkeypatch.setattr(heap, "collect", lambda full=False: self.collected.append((revision[0], full)))
        monkeypatch.setattr(heap, "release", lambda: self.released.append(revision[0]))


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@contextlib.asynccontextmanager
async def running(coro):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_pages_go_back_on_a_busy_store_and_a_collection_only_after_growth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revision, size = [0], [0]
    calls = Recorder(monkeypatch, revision)
    trims = heap.keep_trimmed(
        lambda: revision[0], interval=0.01, after=100, grown=10, collect_every=3600, rss=lambda: size[0]
    )
    async with running(trims):
        await asyncio.sleep(0.05)
        assert calls.released == []  # a quiet store frees nothing
        revision[0] = 150
        await _until(lambda: calls.released)
        assert calls.released == [150]
        assert calls.collected == []  # the heap stayed level: no collection, no stall
        revision[0] = 200  # fewer than `after` since the last trim
        await asyncio.sleep(0.05)
        assert calls.released == [150]
        revision[0] = 300  # busy again, and grown by more than `grown`
        size[0] = 40
        await _until(lambda: len(calls.released) == 2)
        assert calls.collected == [(300, False)]
        revision[0] = 400  # busy, grown no further
        await _until(lambda: len(calls.released) == 3)
        assert calls.collected == [(300, False)]


class Burst:
    """A store's revision that moves by `step` each time it is read (each tick of the loop)."""

    def __init__(self) -> None:
        self.revision, self.step = 0, 0

    def __call__(self) -> int:
        self.revision += self.step
        return self.revision


async def test_the_collection_after_growth_waits_for_the_burst_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    store, size = Burst(), [0]
    calls = Recorder(monkeypatch, [0])
    monkeypatch.setattr(heap, "collect", lambda full=False: calls.collected.append((store.revision, full)))
    monkeypatch.setattr(heap, "release", lambda: calls.released.append(store.revision))
    trims = heap.keep_trimmed(
        store, interval=0.01, after=100, grown=10, collect_every=3600, rss=lambda: size[0], burst=500
    )
    async with running(trims):
        store.step = 1000  # a burst
        await _until(lambda: calls.released)
        size[0] = 40  # that grows the heap
        await _until(lambda: len(calls.released) >= 5)
        assert calls.collected == []  # pages go back, and nothing stalls the burst
        store.step = 0  # the burst is over
        await _until(lambda: calls.collected)
        assert calls.collected == [(store.revision, False)]
        released = len(calls.released)
        await asyncio.sleep(0.05)
        assert calls.collected == [(store.revision, False)] and len(calls.released) == released  # quiet again


async def test_a_collection_joins_a_trim_every_collect_every_without_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    revision = [0]
    calls = Recorder(monkeypatch, revision)
    trims = heap.keep_trimmed(
        lambda: revision[0], interval=0.01, after=1, grown=2**60, collect_every=0.3, rss=lambda: 0
    )
    async with running(trims):
        await asyncio.sleep(0.02)  # the loop reads its starting point
        revision[0] = 10
        await _until(lambda: calls.released)
        assert calls.collected == []  # the first trim comes before collect_every has passed
        for step in range(2, 60):
            revision[0] = 10 * step  # always busy
            await asyncio.sleep(0.01)
            if calls.collected:
                break
        assert calls.collected and calls.collected[0][1] is False
        assert len(calls.released) > len(calls.collected)


async def test_a_quiet_store_that_did_not_grow_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    revision = [0]
    calls = Recorder(monkeypatch, revision)
    trims = heap.keep_trimmed(lambda: revision[0], interval=0.01, after=10, grown=10, collect_every=0.02, rss=lambda: 0)
    async with running(trims):
        await asyncio.sleep(0.2)
    assert (calls.collected, calls.released) == ([], [])


async def test_every_full_every_seconds_a_full_collection_runs_whatever_the_growth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revision = [0]
    calls = Recorder(monkeypatch, revision)
    trims = heap.keep_trimmed(lambda: revision[0], interval=0.01, after=10**9, grown=2**60, full_every=0.2)
    async with running(trims):
        await _until(lambda: calls.collected)
        assert calls.collected[0][1] is True
        assert calls.released  # pages go back after it too


def test_collect_freezes_the_survivors_and_full_unfreezes_them() -> None:
    survivor = [object()]
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle: only the collector frees it
    try:
        heap.collect()
        assert gc.get_freeze_count() > 0  # survivors are out of the collector's sight
        heap.collect(full=True)
        assert survivor and gc.get_freeze_count() > 0  # frozen again after the full collection
        heap.release()  # glibc here; a no-op elsewhere
    finally:
        gc.unfreeze()


def test_rss_is_read_from_proc() -> None:
    before = heap.rss_bytes()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(range(0, len(block), 4096))  # touch every page: resident
    assert heap.rss_bytes() - before >= 32 * 2**20
    del block
