"""The event-loop lag watcher: the histogram, and the opt-in report of what held the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import prometheus_client
import pytest

from shoal import looplag


def _lag_histogram() -> prometheus_client.Histogram:
    return prometheus_client.Histogram("test_lag_seconds", "lag", buckets=looplag.BUCKETS, registry=None)


def hold_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)


async def _held_once(caplog: pytest.LogCaptureFixture, hold: float) -> list[str]:
    lag = _lag_histogram()
    watcher = asyncio.create_task(looplag.watch(lag))
    try:
        await asyncio.sleep(0.15)
        hold_the_loop_for(hold)
        await asyncio.sleep(0.15)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return [r.getMessage() for r in caplog.records if r.name == "shoal.looplag"]


async def test_a_stall_past_the_threshold_is_reported_with_what_held_the_loop(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(looplag.STALL_REPORT_ENV, "60")
    caplog.set_level(logging.WARNING, "shoal.looplag")
    reports = await _held_once(caplog, 0.4)
    assert len(reports) == 1  # once per stall, however long it lasts
    assert "event loop held for over 60 ms" in reports[0] and "hold_the_loop_for" in reports[0]


async def test_no_report_without_the_setting_or_below_the_threshold(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, "shoal.looplag")
    monkeypatch.delenv(looplag.STALL_REPORT_ENV, raising=False)
    assert await _held_once(caplog, 0.3) == []
    monkeypatch.setenv(looplag.STALL_REPORT_ENV, "2000")
    assert await _held_once(caplog, 0.3) == []
