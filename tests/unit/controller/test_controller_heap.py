"""The heap trim loop: it trims after enough store changes, and not on a quiet store."""

from __future__ import annotations

import asyncio
import contextlib

from shoal import heap


async def test_trims_after_enough_changes_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trims: list[int] = []
    revision = [0]
    monkeypatch.setattr(heap, "trim", lambda: trims.append(revision[0]))
    loop = asyncio.create_task(heap.keep_trimmed(lambda: revision[0], interval=0.01, after=100))
    try:
        await asyncio.sleep(0.05)
        assert trims == []  # a quiet store frees nothing
        revision[0] = 150
        for _ in range(100):
            if trims:
                break
            await asyncio.sleep(0.01)
        assert trims == [150]
        revision[0] = 200  # fewer than `after` since the last trim
        await asyncio.sleep(0.05)
        assert trims == [150]
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


def test_trim_runs_here() -> None:
    heap.trim()  # glibc's malloc_trim where there is one; a collection always
