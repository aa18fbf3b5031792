"""The writer's window: AIMD on etcd's answer time, urgent places first, no place lost to a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from shoal.controller.store.window import Window


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def answer(window: Window, clock: Clock, took: float) -> None:
    """One transaction through the window that etcd answers after `took` seconds."""
    async with window.slot():
        clock.now += took


async def test_fast_answers_open_one_more_place_per_window_of_them() -> None:
    clock = Clock()
    window = Window(initial=4, ceiling=16, target=0.25, clock=clock)
    for _ in range(4):
        await answer(window, clock, 0.01)
    assert window.limit == 4  # 1/4 of a place per answer: 4.92 after four
    await answer(window, clock, 0.01)
    assert window.limit == 5
    for _ in range(5):
        await answer(window, clock, 0.01)
    assert window.limit == 6


async def test_a_slow_answer_halves_the_window_down_to_the_floor() -> None:
    clock = Clock()
    window = Window(initial=8, floor=1, target=0.25, clock=clock)
    await answer(window, clock, 1.0)
    assert window.limit == 4
    for _ in range(5):
        await answer(window, clock, 1.0)
    assert window.limit == 1


async def test_the_ceiling_holds() -> None:
    clock = Clock()
    window = Window(initial=3, ceiling=3, clock=clock)
    for _ in range(50):
        await answer(window, clock, 0.0)
    assert window.limit == 3


async def test_one_burst_of_slow_answers_cuts_once() -> None:
    """Transactions already in flight when the window was cut do not cut it again when they come back slow."""
    clock = Clock()
    window = Window(initial=8, target=0.25, clock=clock)
    release = asyncio.Event()

    async def held() -> None:
        async with window.slot():
            await release.wait()

    jobs = [asyncio.create_task(held()) for _ in range(8)]
    await asyncio.sleep(0)
    assert window.inflight == 8
    clock.now += 1.0
    release.set()
    await asyncio.gather(*jobs)
    assert window.limit == 4
    # A transaction sent after the cut and slow again is a new burst.
    await answer(window, clock, 1.0)
    assert window.limit == 2


async def test_a_failed_transaction_leaves_the_window_alone() -> None:
    clock = Clock()
    window = Window(initial=4, clock=clock)
    with pytest.raises(ConnectionError):
        async with window.slot():
            clock.now += 5.0
            raise ConnectionError("etcd is gone")
    assert window.limit == 4
    assert window.inflight == 0


async def test_urgent_waiters_get_the_next_place_before_bulk_ones() -> None:
    window = Window(initial=1, floor=1, ceiling=1)
    order: list[str] = []
    first = asyncio.Event()

    async def job(name: str, urgent: bool, hold: asyncio.Event | None = None) -> None:
        async with window.slot(urgent):
            order.append(name)
            if hold is not None:
                await hold.wait()

    holder = asyncio.create_task(job("holder", False, first))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(job("bulk", False)), asyncio.create_task(job("urgent", True))]
    await asyncio.sleep(0)
    first.set()
    await asyncio.gather(holder, *waiting)
    assert order == ["holder", "urgent", "bulk"]


async def test_a_cancelled_waiter_gives_its_place_on() -> None:
    window = Window(initial=1, floor=1, ceiling=1)
    release = asyncio.Event()

    async def held() -> None:
        async with window.slot():
            await release.wait()

    holder = asyncio.create_task(held())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(held())
    after = asyncio.create_task(answer(window, Clock(), 0.0))
    await asyncio.sleep(0)
    doomed.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, after), timeout=5)
    assert doomed.cancelled()
    assert window.inflight == 0
