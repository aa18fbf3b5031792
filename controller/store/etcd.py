"""The etcd v3 adapter: aetcd's generated etcd API over a gRPC channel we build.

aetcd 1.0's `Client` dials a single `host:port` in plaintext, cannot range at a
revision or page, and hands watch events over one by one (losing which events
came from one revision). So this module builds the channel itself (several
members in one target with pick-first failover; TLS later in `_channel`) and
calls aetcd's stubs and request messages directly. It is deliberately thin:
range (paged, at a revision), txn, watch (require-leader) and leases.

Every failure to reach etcd becomes `shoal.errors.Unavailable`. A timeout does
not mean the operation failed (reference/reliability.md §1): callers must make
writes safe to retry (compare mod_revision, request IDs).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import pathlib
import time
from collections.abc import AsyncIterator, MutableSequence, Sequence

import grpc
from aetcd import rpc as rpc  # re-exported: the other modules build aetcd's messages through this one

from shoal import errors
from shoal.controller import metrics
from shoal.controller.store.keys import prefix_end

log = logging.getLogger(__name__)

#: etcd's own gRPC metadata that makes a member refuse (and cancel watches)
#: when it has no leader, so a watch pinned in a minority partition fails
#: instead of hanging silently (etcd PR #9872).
_REQUIRE_LEADER = (("hasleader", "true"),)

#: Keys per range page: 100k tasks load in ~20 round trips, each page far
#: below gRPC's message limit.
RANGE_PAGE = 5000

_MAX_MESSAGE = 64 * 1024 * 1024


class Compacted(errors.Unavailable):
    """The watch's start revision was compacted away; re-list, then watch again."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"etcd revision compacted at {compact_revision}")
        self.compact_revision = compact_revision


def _target(endpoints: Sequence[str]) -> str:
    """One gRPC target for every member: `ipv4:a:1,b:2` lets the channel fail over between them."""
    hosts = [e.split("://", 1)[-1].rstrip("/") for e in endpoints]
    if len(hosts) == 1:
        return hosts[0]
    try:
        for h in hosts:
            ipaddress.IPv4Address(h.rsplit(":", 1)[0])
    except ValueError:
        raise errors.InvalidArgument(
            "several etcd endpoints must be given as IPv4 addresses (e.g. http://10.0.0.1:2379)"
        ) from None
    return "ipv4:" + ",".join(hosts)


def _unavailable(exc: grpc.aio.AioRpcError, op: str) -> errors.ShoalError:
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return errors.Unavailable(f"etcd unavailable during {op}: {exc.details() or exc.code().name}")
    return errors.ShoalError(f"etcd {op} failed: {exc.code().name}: {exc.details()}")


def _channel_args(
    endpoints: Sequence[str], tls: EtcdTLS | None
) -> tuple[str, grpc.ChannelCredentials | None, list[tuple[str, object]]]:
    """Target, credentials (None: plaintext) and options of a channel to the etcd cluster."""
    options: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if tls is None:
        return _target(endpoints), None, options
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return _target(endpoints), grpc.ssl_channel_credentials(tls.ca_pem, tls.key_pem, tls.cert_pem), options


def blocking_channel(endpoints: Sequence[str], tls: EtcdTLS | None) -> grpc.Channel:
    """A blocking (thread-side) channel to the same etcd cluster, for work that must not wait on the event loop."""
    target, creds, options = _channel_args(endpoints, tls)
    if creds is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, creds, options=options)


@dataclasses.dataclass(frozen=True)
class EtcdTLS:
    """Client TLS for etcd: the CA that signed the members' certificates, and our certificate and key."""

    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    #: The name the members' certificates are checked against, when not their address.
    server_name: str = ""

    @classmethod
    def from_files(cls, cacert: str, cert: str = "", key: str = "", server_name: str = "") -> EtcdTLS | None:
        """TLS from PEM files; None when no CA file is given (plaintext)."""
        if not cacert:
            return None
        read = pathlib.Path.read_bytes
        return cls(
            read(pathlib.Path(cacert)),
            read(pathlib.Path(cert)) if cert else None,
            read(pathlib.Path(key)) if key else None,
            server_name,
        )


@dataclasses.dataclass(frozen=True)
class MemberHealth:
    """One etcd member as a controller sees it."""

    name: str
    client_urls: list[str]
    healthy: bool
    leader: bool
    error: str


class Etcd:
    """A connection to one etcd cluster. Use as an async context manager."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 5.0, tls: EtcdTLS | None = None) -> None:
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.tls = tls
        target, creds, options = _channel_args(self.endpoints, tls)

        def channel(purpose: str) -> grpc.aio.Channel:
            # A channel argument of its own gives each channel its own connection (gRPC would share one).
            own = [*options, ("shoal.etcd_channel", purpose)]
            if creds is None:
                return grpc.aio.insecure_channel(target, options=own)
            return grpc.aio.secure_channel(target, creds, options=own)

        self._channel = channel("requests")
        # Watches get a connection of their own, so that a transaction's reply never queues behind a
        # burst of watch events on one TCP connection (bench/api.py shows the two latencies side by side).
        self._watch_channel = channel("watches")
        self._kv = rpc.KVStub(self._channel)
        self._watch = rpc.WatchStub(self._watch_channel)
        self._lease = rpc.LeaseStub(self._channel)
        self._maintenance = rpc.MaintenanceStub(self._channel)
        self._cluster = rpc.ClusterStub(self._channel)

    async def __aenter__(self) -> Etcd:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight fail."""
        await asyncio.gather(self._channel.close(), self._watch_channel.close())

    async def _call(self, op: str, coro_fn, request, **kw):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            resp = await coro_fn(request, timeout=kw.pop("timeout", self.timeout), **kw)
            # Every etcd response names the store's current revision: the watch lag is measured against it.
            metrics.observe_revision(resp.header.revision)
            return resp
        except grpc.aio.AioRpcError as exc:
            metrics.ETCD_ERRORS.labels(op).inc()
            raise _unavailable(exc, op) from exc
        finally:
            metrics.ETCD_LATENCY.labels(op).observe(time.perf_counter() - start)

    async def status(self, timeout: float | None = None) -> rpc.StatusResponse:
        """The status of the member the channel talks to (a cheap liveness probe)."""
        return await self._call(
            "status", self._maintenance.Status, rpc.StatusRequest(), timeout=timeout or self.timeout
        )

    async def members(self) -> rpc.MemberListResponse:
        """The cluster's member list."""
        return await self._call("members", self._cluster.MemberList, rpc.MemberListRequest())

    async def member_health(self, timeout: float = 1.0) -> list[MemberHealth]:
        """Every member of the cluster, asked directly whether it answers and whether it leads."""
        members = (await self.members()).members

        async def probe(member: rpc.Member) -> MemberHealth:
            urls = list(member.clientURLs)
            if not urls:
                return MemberHealth(member.name, urls, False, False, "not started")
            try:
                async with Etcd(urls[:1], timeout=timeout, tls=self.tls) as one:
                    status = await one.status(timeout=timeout)
                return MemberHealth(member.name, urls, True, status.leader == member.ID, "")
            except errors.ShoalError as exc:
                return MemberHealth(member.name, urls, False, False, str(exc))

        return list(await asyncio.gather(*(probe(m) for m in members)))

    async def get(self, key: bytes) -> rpc.KeyValue | None:
        """One key, linearizably read, or None."""
        resp = await self._call("range", self._kv.Range, rpc.RangeRequest(key=key))
        return resp.kvs[0] if resp.kvs else None

    async def range_prefix(self, prefix: bytes, *, page: int = RANGE_PAGE) -> tuple[int, list[rpc.KeyValue]]:
        """Every key under `prefix` as of one revision, read in pages; returns (revision, kvs)."""
        revision = 0
        out: list[rpc.KeyValue] = []
        async for at, kvs in self.range_pages(prefix, page=page):
            revision = at
            out.extend(kvs)
        return revision, out

    async def range_pages(
        self, prefix: bytes, *, page: int = RANGE_PAGE
    ) -> AsyncIterator[tuple[int, Sequence[rpc.KeyValue]]]:
        """Every key under `prefix` as of one revision, as (revision, page of kvs), the next page read ahead.

        While the caller works on one page, etcd is already reading the next
        one: a controller decoding 100,000 tasks at start-up (bench/coldstart.py)
        does not wait for etcd's reads in between.
        """
        end = prefix_end(prefix)
        timeout = max(self.timeout, 30.0)

        def fetch(key: bytes, revision: int) -> asyncio.Task[rpc.RangeResponse]:
            req = rpc.RangeRequest(key=key, range_end=end, limit=page, revision=revision)
            return asyncio.ensure_future(self._call("range", self._kv.Range, req, timeout=timeout))

        ahead = fetch(prefix, 0)
        try:
            resp = await ahead
            revision = resp.header.revision
            while True:
                more = resp.more and resp.kvs
                if more:
                    ahead = fetch(resp.kvs[-1].key + b"\0", revision)
                yield revision, resp.kvs
                if not more:
                    return
                resp = await ahead
        finally:
            ahead.cancel()
            if ahead.done() and not ahead.cancelled():
                ahead.exception()  # a read ahead that failed after the caller stopped: nobody else will look

    async def txn(
        self,
        compare: Sequence[rpc.Compare],
        success: Sequence[rpc.RequestOp],
        failure: Sequence[rpc.RequestOp] = (),
    ) -> rpc.TxnResponse:
        """One transaction: `success` ops if every compare holds, else `failure` ops."""
        return await self.send_txn(rpc.TxnRequest(compare=compare, success=success, failure=failure))

    async def send_txn(self, request: rpc.TxnRequest) -> rpc.TxnResponse:
        """One transaction built by the caller (`add_put`, `add_mod_revision_is` ... fill one in place)."""
        return await self._call("txn", self._kv.Txn, request)

    async def watch(
        self, prefix: bytes, start_revision: int, *, prev_kv: bool = False
    ) -> AsyncIterator[rpc.WatchResponse]:
        """Responses with events under `prefix` from `start_revision` on, in revision order.

        Raises Compacted if that revision is gone and Unavailable when the
        stream breaks (including when the member loses its leader). With
        `prev_kv`, each event also carries the key's previous value.
        """
        create = rpc.WatchRequest(
            create_request=rpc.WatchCreateRequest(
                key=prefix,
                range_end=prefix_end(prefix),
                start_revision=start_revision,
                progress_notify=True,
                prev_kv=prev_kv,
            )
        )
        done = asyncio.Event()

        async def requests() -> AsyncIterator[rpc.WatchRequest]:
            yield create
            await done.wait()

        call = self._watch.Watch(requests(), metadata=_REQUIRE_LEADER)
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise Compacted(resp.compact_revision)
                if resp.canceled:
                    raise errors.Unavailable(f"etcd canceled the watch: {resp.cancel_reason or 'no reason given'}")
                yield resp
            raise errors.Unavailable("etcd closed the watch stream")
        except grpc.aio.AioRpcError as exc:
            metrics.ETCD_ERRORS.labels("watch").inc()
            raise _unavailable(exc, "watch") from exc
        finally:
            done.set()
            call.cancel()

    async def lease_grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its ID."""
        resp = await self._call("lease_grant", self._lease.LeaseGrant, rpc.LeaseGrantRequest(TTL=ttl))
        return int(resp.ID)

    async def lease_revoke(self, lease_id: int) -> None:
        """Revoke a lease (deleting its keys); a failure is only logged, the lease then expires."""
        with contextlib.suppress(errors.ShoalError):
            await self._call("lease_revoke", self._lease.LeaseRevoke, rpc.LeaseRevokeRequest(ID=lease_id))

    async def lease_keepalive(self, lease_id: int, interval: float) -> AsyncIterator[int]:
        """Refresh a lease every `interval` seconds; yields the TTL etcd grants each time (0: expired)."""

        async def requests() -> AsyncIterator[rpc.LeaseKeepAliveRequest]:
            while True:
                yield rpc.LeaseKeepAliveRequest(ID=lease_id)
                await asyncio.sleep(interval)

        call = self._lease.LeaseKeepAlive(requests())
        try:
            async for resp in call:
                yield int(resp.TTL)
            raise errors.Unavailable("etcd closed the lease keep-alive stream")
        except grpc.aio.AioRpcError as exc:
            metrics.ETCD_ERRORS.labels("lease_keepalive").inc()
            raise _unavailable(exc, "lease keep-alive") from exc
        finally:
            call.cancel()


# Helpers that build the request messages the writer and the election need.


def put_op(key: bytes, value: bytes, lease: int = 0) -> rpc.RequestOp:
    """A put inside a transaction."""
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))


def delete_op(key: bytes) -> rpc.RequestOp:
    """A delete inside a transaction."""
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))


def get_op(key: bytes) -> rpc.RequestOp:
    """A read inside a transaction."""
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key))


# Enum values looked up once: the writer builds a compare for every object it writes.
_EQUAL = rpc.Compare.CompareResult.EQUAL
_MOD = rpc.Compare.CompareTarget.MOD
_CREATE = rpc.Compare.CompareTarget.CREATE
DELETE_EVENT = rpc.Event.EventType.DELETE


def add_put(ops: MutableSequence[rpc.RequestOp], key: bytes, value: bytes) -> None:
    """Append a put to a transaction's operations, in place (no message is built and copied in)."""
    put = ops.add().request_put  # type: ignore[attr-defined]
    put.key = key
    put.value = value


def add_delete(ops: MutableSequence[rpc.RequestOp], key: bytes) -> None:
    """Append a delete to a transaction's operations, in place."""
    ops.add().request_delete_range.key = key  # type: ignore[attr-defined]


def add_mod_revision_is(compares: MutableSequence[rpc.Compare], key: bytes, revision: int) -> None:
    """Append a compare that holds if the key was last changed at `revision` (0: it does not exist)."""
    compares.add(key=key, result=_EQUAL, target=_MOD, mod_revision=revision)  # type: ignore[attr-defined]


def create_revision_is(key: bytes, revision: int) -> rpc.Compare:
    """Holds if the key was created at `revision` (0: the key does not exist)."""
    return rpc.Compare(key=key, result=_EQUAL, target=_CREATE, create_revision=revision)
