"""Keeping the leader lease alive from a thread of its own.

The lease (TTL 3 s) is what lets another controller take over from a dead
leader, so it must expire when the leader is dead, and only then. Refreshed
from the event loop, it expired whenever the loop was merely busy: a burst of
100,000 task writes, with the machine shared with etcd and the agents, kept
every callback of the loop (the keep-alive's among them) waiting for seconds,
and a healthy leader stepped down in the middle of its work. So a thread
refreshes it over a blocking channel of its own, which Python's thread
switching serves every few milliseconds whatever the loop is doing.

A wedged loop must still lose leadership: the loop ticks a timestamp, and
the thread stops refreshing once the loop has not ticked for `stall_limit`
(then the lease runs out within its TTL). The loop side raises LostLeadership
when the thread says the lease is gone, or when the last confirmation is older
than the lease's TTL (the thread or etcd is gone).

A refused refresh is not a lost lease. etcd 3.4 refuses one, and ends the
stream, when its apply lags its log by a second ("waiting for the applied
index took too long"), which a burst of writes on a shared machine causes
(bench/placement.py stepped down mid-burst and reloaded 74,000 tasks). The
thread opens a new stream and tries again for as long as the lease lasts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import NoReturn

import grpc
from aetcd import rpc

from shoal import errors
from shoal.controller.store import etcd as etcd_

log = logging.getLogger(__name__)

#: How often the event loop proves it is alive to the thread.
TICK = 0.25


class LostLeadership(errors.Unavailable):
    """The lease could not be kept alive; the loops must stop."""


#: Pause before a failed keep-alive stream is opened again (within the lease's remaining time).
RETRY = 0.05


class LeaseKeeper:
    """Refreshes one lease from a thread while `run` runs on the event loop."""

    def __init__(self, etcd: etcd_.Etcd, lease: int, ttl: int, *, stall_limit: float = 10.0) -> None:
        self._endpoints = etcd.endpoints
        self._tls = etcd.tls
        self._lease = lease
        self._ttl = ttl
        # Often enough that one refused refresh leaves time for several more before the lease runs out.
        self._interval = ttl / 6
        self._stall_limit = stall_limit
        self._beat = time.monotonic()
        #: Until when etcd has confirmed the lease (monotonic), as the thread last heard.
        self._confirmed_until = time.monotonic() + ttl - self._interval
        #: When the refresh in flight was sent, and whether it has been answered (one at a time).
        self._sent_at = time.monotonic()
        self._answered = threading.Event()
        self._stream_no = 0
        self._failure: str = ""
        self._last_error = "no answer to the last refresh"
        self._stop = threading.Event()

    async def run(self) -> NoReturn:
        """Tick for the thread and watch it; raise LostLeadership once the lease is gone."""
        thread = threading.Thread(target=self._keep, name="lease-keeper", daemon=True)
        thread.start()
        try:
            while True:
                now = time.monotonic()
                self._beat = now
                if self._failure:
                    raise LostLeadership(self._failure)
                if now > self._confirmed_until:
                    raise LostLeadership(f"etcd did not confirm the leader lease in time ({self._last_error})")
                await asyncio.sleep(TICK)
        finally:
            self._stop.set()

    def _loop_stalled(self) -> bool:
        stalled = time.monotonic() - self._beat
        if stalled > self._stall_limit:
            self._failure = f"the event loop stalled for {stalled:.1f}s; letting the leader lease lapse"
        return bool(self._failure)

    def _requests(self, stream: int) -> Iterator[rpc.LeaseKeepAliveRequest]:
        while self._stream_no == stream and not self._stop.is_set() and not self._loop_stalled():
            self._answered.clear()
            self._sent_at = time.monotonic()
            yield rpc.LeaseKeepAliveRequest(ID=self._lease)
            # One refresh in flight at a time: behind a slow etcd a queue of them would be answered
            # ever later, each answer counting from an ever older request, and the lease would look
            # lost while etcd kept renewing it.
            while not self._answered.wait(TICK):
                if self._stream_no != stream or self._stop.is_set() or self._loop_stalled():
                    return  # a failed stream's requests end with it
            self._stop.wait(self._interval)

    def _keep(self) -> None:
        """Refresh over one stream after another until stopped, the lease is gone, or its time runs out.

        etcd ends a keep-alive stream on a refresh it refuses, and under a write
        burst it refuses them for a while ("waiting for the applied index took too
        long"): the lease itself still stands, so the thread opens a new stream
        and keeps trying until the lease's confirmed time is over.
        """
        channel = etcd_.blocking_channel(self._endpoints, self._tls)
        try:
            while not self._stop.is_set() and not self._failure:
                try:
                    self._stream(channel)
                except grpc.RpcError as exc:
                    self._last_error = f"{exc.code().name}: {exc.details()}"
                if self._stop.is_set() or self._failure:
                    return
                if time.monotonic() > self._confirmed_until:
                    self._failure = f"lease keep-alive failed: {self._last_error}"
                    return
                log.warning("lease keep-alive refused (%s); retrying while the lease lasts", self._last_error)
                self._stop.wait(RETRY)
        except Exception as exc:  # noqa: BLE001 - said on the loop side as a lost lease
            self._failure = f"lease keep-alive failed: {exc}"
        finally:
            channel.close()

    def _stream(self, channel: grpc.Channel) -> None:
        """One keep-alive stream, until etcd ends it (returns or raises grpc.RpcError) or the keeper stops."""
        self._stream_no += 1
        for resp in rpc.LeaseStub(channel).LeaseKeepAlive(self._requests(self._stream_no), timeout=None):
            sent = self._sent_at
            self._answered.set()
            if resp.TTL <= 0:
                self._failure = "the leader lease expired"
                return
            # etcd renewed the lease after we asked: it lasts at least TTL from then (less a margin for clocks).
            self._confirmed_until = max(self._confirmed_until, sent + resp.TTL - self._interval)
            if self._stop.is_set() or self._failure:
                return
        self._last_error = "etcd closed the lease keep-alive stream"
