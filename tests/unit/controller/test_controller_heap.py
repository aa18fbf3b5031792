"""The heap trim loop: it trims after enough store changes, and not on a quiet store."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from shoal import heap


async def test_trims_after_enough_changes_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trims: list[int] = []
    revision = [0]
    monkeypatch.setattr(heap, "trim", lambda full=False: trims.append(revision[0]))
    size = [0]
    loop = asyncio.create_task(
        heap.keep_trimmed(lambda: revision[0], interval=0.01, after=100, grown=10, rss=lambda: size[0])
    )
    try:
        await asyncio.sleep(0.05)
        assert trims == []  # a quiet store frees nothing
        revision[0] = 150
        await asyncio.sleep(0.05)
        assert trims == []  # a busy store whose heap stayed level: nothing to hand back
        size[0] = 20
        for _ in range(100):
            if trims:
                break
            await asyncio.sleep(0.01)
        assert trims == [150]
        revision[0] = 200  # fewer than `after` since the last trim
        size[0] = 40
        await asyncio.sleep(0.05)
        assert trims == [150]
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_every_full_every_seconds_the_trim_is_a_full_collection(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trims: list[bool] = []
    revision = [0]

    def trim(full: bool = False) -> None:
        trims.append(full)

    monkeypatch.setattr(heap, "trim", trim)
    loop = asyncio.create_task(
        heap.keep_trimmed(lambda: revision[0], interval=0.01, after=0, full_every=0.2, grown=0, rss=lambda: 0)
    )
    try:
        for _ in range(200):
            if True in trims:
                break
            await asyncio.sleep(0.01)
        assert trims[0] is False  # the first trims only look at what is new
        assert True in trims
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


def test_trim_freezes_the_survivors_and_full_unfreezes_them() -> None:
    survivor = [object()]
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle: only the collector frees it
    try:
        heap.trim()
        assert gc.get_freeze_count() > 0  # survivors are out of the collector's sight
        heap.trim(full=True)
        assert survivor and gc.get_freeze_count() > 0  # frozen again after the full collection
    finally:
        gc.unfreeze()


def test_rss_is_read_from_proc() -> None:
    before = heap.rss_bytes()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(range(0, len(block), 4096))  # touch every page: resident
    assert heap.rss_bytes() - before >= 32 * 2**20
    del block
