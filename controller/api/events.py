"""Control API: Events, a live stream of changes to services, tasks and nodes.

Every change is an etcd revision, so the stream is an etcd watch on the
cluster's prefix (with each key's previous value, so a removal still names
what was removed), turned into typed events: create, update or remove, the
object as it is after the change, and the revision it was made at. Starting
at the leader cache's revision (or just after `since_revision`, replayed
from etcd's history), it is resumable exactly: a client that saw revision R
asks for `since_revision=R` and gets every change after R, once. A revision
etcd has compacted away is refused with FAILED_PRECONDITION naming the oldest
one left. Secrets and configs are sent only when asked for by name (a
secret without its sealed data); the CA and anything else never. A watch
that breaks (an etcd member lost) resumes where it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from aetcd import rpc

from shoal import errors
from shoal.backoff import Backoff
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.keys import MESSAGE_OF, Keys, Kind
from shoal.v1 import control_pb2, objects_pb2

log = logging.getLogger(__name__)

#: Event types by the kind of stored object they report.
TYPES: dict[Kind, str] = {
    Kind.SERVICE: "service",
    Kind.TASK: "task",
    Kind.NODE: "node",
    Kind.SECRET: "secret",
    Kind.CONFIG: "config",
}
KINDS: dict[str, Kind] = {v: k for k, v in TYPES.items()}
#: What a request with no types gets (swarmctl events' kinds, as before secrets and configs were added).
DEFAULT_KINDS = frozenset({Kind.SERVICE, Kind.TASK, Kind.NODE})


def kinds_of(types: Iterable[str]) -> set[Kind]:
    """The kinds a request's types select (DEFAULT_KINDS when none); InvalidArgument for an unknown type."""
    wanted = set()
    for t in types:
        kind = KINDS.get(t.strip().lower())
        if kind is None:
            raise errors.InvalidArgument(f"unknown event type {t!r} (known: {', '.join(KINDS)})")
        wanted.add(kind)
    return wanted or set(DEFAULT_KINDS)


def event_name(obj: Any) -> str:
    """The name an event shows: the object's name; `<service>.<slot or node ID>` for a task."""
    if isinstance(obj, objects_pb2.Task):
        return f"{obj.service_name}.{obj.slot or obj.node_id or obj.id}"
    if isinstance(obj, objects_pb2.Node):
        return obj.name
    return str(obj.spec.name)


def to_event(keys: Keys, ev: rpc.Event, wanted: set[Kind]) -> control_pb2.Event | None:
    """The event of one etcd change, or None for keys that are not a wanted object."""
    parsed = keys.parse(ev.kv.key)
    if parsed is None or parsed[0] not in wanted:
        return None
    kind, obj_id = parsed
    event = control_pb2.Event(revision=ev.kv.mod_revision, type=TYPES[kind], id=obj_id)
    if ev.type == rpc.Event.EventType.DELETE:
        event.action = "remove"
        data = ev.prev_kv.value if ev.HasField("prev_kv") else b""
        version = ev.prev_kv.mod_revision if ev.HasField("prev_kv") else 0
    else:
        event.action = "create" if ev.kv.create_revision == ev.kv.mod_revision else "update"
        data, version = ev.kv.value, ev.kv.mod_revision
    if data:
        obj = MESSAGE_OF[kind].FromString(data)
        obj.meta.version = version  # type: ignore[attr-defined]
        if isinstance(obj, objects_pb2.Secret):
            obj.ClearField("sealed")
        event.name = event_name(obj)
        getattr(event, TYPES[kind]).CopyFrom(obj)
    return event


async def watch_events(
    etcd: etcd_.Etcd, keys: Keys, start: int, wanted: set[Kind]
) -> AsyncIterator[control_pb2.Event]:
    """Events from revision `start` on, forever; a broken watch resumes after the last revision seen."""
    backoff = Backoff(base=0.1, cap=2.0)
    next_revision = start
    while True:
        try:
            async for resp in etcd.watch(keys.root, next_revision, prev_kv=True):
                backoff.reset()
                for ev in resp.events:
                    next_revision = max(next_revision, ev.kv.mod_revision + 1)
                    event = to_event(keys, ev, wanted)
                    if event is not None:
                        yield event
        except etcd_.Compacted as exc:
            if next_revision != start:
                raise errors.Unavailable(f"the event stream fell behind etcd's compaction ({exc})") from None
            raise errors.FailedPrecondition(
                f"revision {start - 1} is no longer in etcd's history (compacted up to revision "
                f"{exc.compact_revision}); resume with --since {exc.compact_revision - 1} or later, "
                "or without --since for changes from now on"
            ) from None
        except errors.Unavailable as exc:
            delay = backoff.next()
            log.warning("event stream: watch broke (%s); resuming at revision %d", exc, next_revision)
            await asyncio.sleep(delay)


class EventsHandlers(Handlers):
    """Events (and the etcd connection it watches)."""

    def __init__(self, *args, etcd: etcd_.Etcd | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._etcd = etcd

    @handle
    async def Events(  # noqa: N802
        self, request: control_pb2.EventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[control_pb2.Event]:
        wanted = kinds_of(request.types)
        cache = self._leadership.require().cache
        if self._etcd is None:
            raise errors.FailedPrecondition("this controller has no etcd connection to watch")
        start = (request.since_revision or cache.revision) + 1
        async for event in watch_events(self._etcd, self._keys, start, wanted):
            yield event
