"""Every running controller advertises itself in etcd, so that any one of them can list them all.

A controller puts `<prefix>/v1/controllers/<id>` (JSON: ID, gRPC address,
metrics address, host name) under a lease of its own and keeps the lease
alive; when the process dies the key expires with the lease. This is what the
service discovery (discovery.py) reads to hand every controller's metrics
endpoint to Prometheus, whichever controller Prometheus asks. The keys sit
beside the object keys but are no object kind, so the cache ignores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import NoReturn

from shoal import errors, metrics_http
from shoal.backoff import Backoff
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.keys import Keys

log = logging.getLogger(__name__)

#: Seconds a dead controller stays listed: long enough that a slow etcd does
#: not make a live one flicker out of the discovery, short enough to notice.
MEMBER_TTL = 15


@dataclasses.dataclass(frozen=True)
class Member:
    """One controller as it advertises itself."""

    controller_id: str
    addr: str
    metrics_addr: str
    hostname: str = ""

    def encode(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Member | None:
        try:
            doc = json.loads(data)
            return cls(
                controller_id=str(doc["controller_id"]),
                addr=str(doc.get("addr", "")),
                metrics_addr=str(doc.get("metrics_addr", "")),
                hostname=str(doc.get("hostname", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def local(controller_id: str, addr: str, metrics_bound: str) -> Member:
    """This controller's advertisement, given its gRPC address and the address its metrics are bound to."""
    return Member(controller_id, addr, metrics_http.advertised(metrics_bound, addr), socket.gethostname())


def prefix(keys: Keys) -> bytes:
    """Where the controllers' advertisements live."""
    return keys.root + b"controllers/"


async def list_members(etcd: etcd_.Etcd, keys: Keys) -> list[Member]:
    """Every controller whose advertisement is alive, by ID."""
    _, kvs = await etcd.range_prefix(prefix(keys))
    found = (Member.decode(kv.value) for kv in kvs)
    return sorted((m for m in found if m is not None), key=lambda m: m.controller_id)


@contextlib.asynccontextmanager
async def advertised(etcd: etcd_.Etcd, keys: Keys, me: Member, *, ttl: int = MEMBER_TTL) -> AsyncIterator[None]:
    """Keep `me` advertised while the context is open; withdraw it on exit."""
    task = asyncio.create_task(_advertise(etcd, keys, me, ttl), name="member-advertise")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _advertise(etcd: etcd_.Etcd, keys: Keys, me: Member, ttl: int) -> NoReturn:
    """Put the advertisement under a fresh lease and keep it alive; start over when that fails."""
    key = prefix(keys) + me.controller_id.encode()
    backoff = Backoff(base=0.5, cap=float(ttl) / 3)
    while True:
        lease = 0
        try:
            lease = await etcd.lease_grant(ttl)
            await etcd.txn([], [etcd_.put_op(key, me.encode(), lease)])
            backoff.reset()
            await _keep_alive(etcd, lease, ttl)
        except errors.ShoalError as exc:
            delay = backoff.next()
            log.warning("cannot advertise this controller in etcd (%s); again in %.1fs", exc, delay)
            await asyncio.sleep(delay)
        finally:
            if lease:
                # Withdraw at once rather than after the TTL (on exit, or before the next lease).
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await asyncio.shield(etcd.lease_revoke(lease))


async def _keep_alive(etcd: etcd_.Etcd, lease: int, ttl: int) -> NoReturn:
    """Refresh the lease; raise Unavailable once etcd stops confirming it."""
    interval = ttl / 3
    deadline = time.monotonic() + ttl
    stream = etcd.lease_keepalive(lease, interval)
    try:
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    granted = await anext(stream)
            except TimeoutError:
                raise errors.Unavailable("etcd did not confirm the advertisement's lease in time") from None
            if granted <= 0:
                raise errors.Unavailable("the advertisement's lease expired")
            deadline = time.monotonic() + granted - interval
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
