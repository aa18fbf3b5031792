"""The leader's in-memory copy of the store, with indexes, fed by one etcd watch.

It is built by a range read at revision R followed by a watch from R+1; a
compacted watch means a full re-list, whose difference with the old content is
published like any other change. Control loops `subscribe()`: the current
content is their snapshot, and every batch of changes after it arrives on
their subscription, with no gap and nothing twice (all of this runs on one
event loop, so taking the snapshot and subscribing is atomic).

Messages in the cache are shared: treat them as read-only and copy before
changing one.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from aetcd import rpc
from google.protobuf import message

from shoal import errors
from shoal.backoff import Backoff
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.events import Batch, Change
from shoal.controller.store.keys import MESSAGE_OF, SINGLETONS, Keys, Kind
from shoal.controller.store.tallies import TaskTallies
from shoal.v1 import objects_pb2

log = logging.getLogger(__name__)
_generations = itertools.count(1)


class Subscription:
    """The changes after a snapshot, as batches, in order."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._queue: asyncio.Queue[Batch] = asyncio.Queue()

    def put(self, batch: Batch) -> None:
        self._queue.put_nowait(batch)

    async def get(self) -> Batch:
        """The next batch, waiting for one."""
        return await self._queue.get()

    def drain(self) -> list[Batch]:
        """Every batch already queued, without waiting."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self

    async def __anext__(self) -> Batch:
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving changes."""
        self._cache._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cache:
    """Every node, service, task and the cluster object, kept current by a watch."""

    def __init__(self, etcd: etcd_.Etcd, keys: Keys) -> None:
        self._etcd = etcd
        self.keys = keys
        self.nodes: dict[str, objects_pb2.Node] = {}
        self.services: dict[str, objects_pb2.Service] = {}
        self.tasks: dict[str, objects_pb2.Task] = {}
        self.secrets: dict[str, objects_pb2.Secret] = {}
        self.configs: dict[str, objects_pb2.Config] = {}
        self.networks: dict[str, objects_pb2.Network] = {}
        #: Sealed registry credentials of service specs, by their own ID (issue 18).
        self.registry_credentials: dict[str, objects_pb2.RegistryCredential] = {}
        self.cluster: objects_pb2.Cluster | None = None
        self.ca: objects_pb2.CertificateAuthority | None = None
        self.tasks_by_service: dict[str, set[str]] = collections.defaultdict(set)
        self.tasks_by_node: dict[str, set[str]] = collections.defaultdict(set)
        #: Tasks of each (service, slot) of replicated services (slot > 0).
        self.tasks_by_slot: dict[tuple[str, int], set[str]] = collections.defaultdict(set)
        #: Task counts for the metrics, kept as tasks change (a scrape need not walk every task).
        self.tallies = TaskTallies()
        self.service_by_name: dict[str, str] = {}
        self.node_by_name: dict[str, str] = {}
        self.service_by_request: dict[str, str] = {}
        self.secret_by_name: dict[str, str] = {}
        self.config_by_name: dict[str, str] = {}
        self.network_by_name: dict[str, str] = {}
        self.revision = 0
        #: Node objects set or deleted so far, and which cache this is: what the node metrics cache is keyed on.
        self.node_changes = 0
        self.generation = next(_generations)
        self.ready = asyncio.Event()
        self._subscribers: set[Subscription] = set()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._tables: dict[Kind, dict[str, message.Message]] = {
            Kind.NODE: self.nodes,  # type: ignore[dict-item]
            Kind.SERVICE: self.services,  # type: ignore[dict-item]
            Kind.TASK: self.tasks,  # type: ignore[dict-item]
            Kind.SECRET: self.secrets,  # type: ignore[dict-item]
            Kind.CONFIG: self.configs,  # type: ignore[dict-item]
            Kind.NETWORK: self.networks,  # type: ignore[dict-item]
            Kind.REGISTRY_CREDENTIAL: self.registry_credentials,  # type: ignore[dict-item]
        }

    # ---- reading ----------------------------------------------------------

    def table(self, kind: Kind) -> dict[str, message.Message]:
        """The objects of one kind, by ID."""
        return self._tables[kind]

    def tasks_of_service(self, service_id: str) -> list[objects_pb2.Task]:
        """Every task of a service, whatever its state."""
        return [self.tasks[t] for t in self.tasks_by_service.get(service_id, ())]

    def tasks_of_slot(self, service_id: str, slot: int) -> list[objects_pb2.Task]:
        """Every task of one slot of a replicated service, whatever its state."""
        return [self.tasks[t] for t in self.tasks_by_slot.get((service_id, slot), ())]

    def tasks_of_node(self, node_id: str) -> list[objects_pb2.Task]:
        """Every task assigned to a node, whatever its state."""
        return [self.tasks[t] for t in self.tasks_by_node.get(node_id, ())]

    def subscribe(self) -> Subscription:
        """Changes from now on; the cache's current content is the matching snapshot."""
        sub = Subscription(self)
        self._subscribers.add(sub)
        return sub

    async def wait_for(self, revision: int, timeout: float | None = 10.0) -> None:
        """Return once the cache has seen `revision` (read-your-writes after a commit); None: however long."""
        if self.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), fut))
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            raise errors.Unavailable(f"store watch lags: revision {revision} not seen within {timeout:g}s") from None

    # ---- feeding ------------------------------------------------------------

    async def run(self) -> NoReturn:
        """List, then watch, forever; re-list after compaction, re-watch after a break."""
        backoff = Backoff(base=0.1, cap=2.0)
        must_list = True
        while True:
            try:
                if must_list:
                    await self._list()
                    must_list = False
                    self.ready.set()
                async for resp in self._etcd.watch(self.keys.root, self.revision + 1):
                    self._apply(resp)
                    backoff.reset()
            except etcd_.Compacted as exc:
                log.warning("watch fell behind compaction (%s); re-listing", exc)
                must_list = True
            except errors.Unavailable as exc:
                delay = backoff.next()
                log.warning("store watch broke (%s); resuming from revision %d in %.2fs", exc, self.revision, delay)
                await asyncio.sleep(delay)

    def _decode(self, kind: Kind, kv: rpc.KeyValue) -> message.Message:
        obj = MESSAGE_OF[kind].FromString(kv.value)
        obj.meta.version = kv.mod_revision  # type: ignore[attr-defined]
        return obj

    async def _list(self) -> None:
        """Read everything, decoding each page while etcd reads the next; then `_load` it."""
        seen: dict[Kind, dict[str, message.Message]] = {kind: {} for kind in Kind}
        revision = 0
        async for at, kvs in self._etcd.range_pages(self.keys.root):
            revision = at
            for kv in kvs:
                parsed = self.keys.parse(kv.key)
                if parsed:
                    seen[parsed[0]][parsed[1]] = self._decode(parsed[0], kv)
        self._load(revision, seen)

    def _load(self, revision: int, seen: dict[Kind, dict[str, message.Message]]) -> None:
        """Replace the whole content with a listing (decoded, by kind and ID); publish the difference."""
        changes: list[Change] = []
        for kind, new_objs in seen.items():
            old_objs = self._current(kind)
            for obj_id in old_objs.keys() - new_objs.keys():
                changes.append(self._set(kind, obj_id, None))
            for obj_id, obj in new_objs.items():
                old = old_objs.get(obj_id)
                if old is None or old.meta.version != obj.meta.version:  # type: ignore[attr-defined]
                    changes.append(self._set(kind, obj_id, obj))
        self._advance(revision, changes)

    def _apply(self, resp: rpc.WatchResponse) -> None:
        changes = []
        for ev in resp.events:
            parsed = self.keys.parse(ev.kv.key)
            if not parsed:
                continue
            kind, obj_id = parsed
            if ev.type == etcd_.DELETE_EVENT:
                if obj_id in self._current(kind):
                    changes.append(self._set(kind, obj_id, None))
            else:
                changes.append(self._set(kind, obj_id, self._decode(kind, ev.kv)))
        revision = max(resp.header.revision, max((e.kv.mod_revision for e in resp.events), default=0))
        self._advance(revision, changes)

    def _current(self, kind: Kind) -> dict[str, message.Message]:
        if kind in SINGLETONS:
            single = self.cluster if kind is Kind.CLUSTER else self.ca
            return {single.id: single} if single is not None else {}
        return self._tables[kind]

    def _advance(self, revision: int, changes: list[Change]) -> None:
        self.revision = max(self.revision, revision)
        if changes:
            batch = Batch(self.revision, tuple(changes))
            for sub in self._subscribers:
                sub.put(batch)
        while self._waiters and self._waiters[0][0] <= self.revision:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    def _set(self, kind: Kind, obj_id: str, obj: message.Message | None) -> Change:
        """Store (or delete, for None) one object, keeping the indexes right."""
        if kind is Kind.CLUSTER:
            old_cluster = self.cluster
            self.cluster = obj  # type: ignore[assignment]
            return Change(kind, old_cluster, obj)
        if kind is Kind.CA:
            old_ca = self.ca
            self.ca = obj  # type: ignore[assignment]
            return Change(kind, old_ca, obj)
        if kind is Kind.NODE:
            self.node_changes += 1
        table = self._tables[kind]
        old = table.pop(obj_id, None)
        if kind is Kind.TASK and old is not None and obj is not None:
            table[obj_id] = obj
            self._reindex_task(old, obj)  # type: ignore[arg-type]
            return Change(kind, old, obj)
        if old is not None:
            self._unindex(kind, old)
        if obj is not None:
            table[obj_id] = obj
            self._index(kind, obj)
        return Change(kind, old, obj)

    def _reindex_task(self, old: objects_pb2.Task, new: objects_pb2.Task) -> None:
        """A task's update: most are status reports, which move it in no index but the tallies."""
        if old.service_id != new.service_id or old.node_id != new.node_id or old.slot != new.slot:
            self._unindex(Kind.TASK, old)
            self._index(Kind.TASK, new)
        else:
            self.tallies.replace(old, new)

    def _index(self, kind: Kind, obj: message.Message) -> None:
        if kind is Kind.TASK:
            self.tallies.add(obj, +1)  # type: ignore[arg-type]
            self.tasks_by_service[obj.service_id].add(obj.id)  # type: ignore[attr-defined]
            if obj.node_id:  # type: ignore[attr-defined]
                self.tasks_by_node[obj.node_id].add(obj.id)  # type: ignore[attr-defined]
            if obj.slot:  # type: ignore[attr-defined]
                self.tasks_by_slot[(obj.service_id, obj.slot)].add(obj.id)  # type: ignore[attr-defined]
        elif kind is Kind.SERVICE:
            self.service_by_name[obj.spec.name] = obj.id  # type: ignore[attr-defined]
            if obj.create_request_id:  # type: ignore[attr-defined]
                self.service_by_request[obj.create_request_id] = obj.id  # type: ignore[attr-defined]
        elif kind is Kind.NODE:
            self.node_by_name[obj.name] = obj.id  # type: ignore[attr-defined]
        elif kind is Kind.SECRET:
            self.secret_by_name[obj.spec.name] = obj.id  # type: ignore[attr-defined]
        elif kind is Kind.CONFIG:
            self.config_by_name[obj.spec.name] = obj.id  # type: ignore[attr-defined]
        elif kind is Kind.NETWORK:
            self.network_by_name[obj.spec.name] = obj.id  # type: ignore[attr-defined]

    def _unindex(self, kind: Kind, obj: message.Message) -> None:
        if kind is Kind.TASK:
            self.tallies.add(obj, -1)  # type: ignore[arg-type]
            _discard(self.tasks_by_service, obj.service_id, obj.id)  # type: ignore[attr-defined]
            _discard(self.tasks_by_node, obj.node_id, obj.id)  # type: ignore[attr-defined]
            _discard(self.tasks_by_slot, (obj.service_id, obj.slot), obj.id)  # type: ignore[attr-defined]
        elif kind is Kind.SERVICE:
            if self.service_by_name.get(obj.spec.name) == obj.id:  # type: ignore[attr-defined]
                del self.service_by_name[obj.spec.name]  # type: ignore[attr-defined]
            self.service_by_request.pop(obj.create_request_id, None)  # type: ignore[attr-defined]
        elif kind is Kind.NODE and self.node_by_name.get(obj.name) == obj.id:  # type: ignore[attr-defined]
            del self.node_by_name[obj.name]  # type: ignore[attr-defined]
        elif kind in (Kind.SECRET, Kind.CONFIG, Kind.NETWORK):
            by_name = {Kind.SECRET: self.secret_by_name, Kind.CONFIG: self.config_by_name}.get(
                kind, self.network_by_name
            )
            if by_name.get(obj.spec.name) == obj.id:  # type: ignore[attr-defined]
                del by_name[obj.spec.name]  # type: ignore[attr-defined]


def _discard(index: dict[Any, set[str]], key: Any, value: str) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(value)
        if not members:
            del index[key]
