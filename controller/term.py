"""One leadership term: the cache, the writer and the control loops, for as long as we lead.

Every loop rebuilds its view from the cache when it starts, so a new term
(here or on another controller) needs nothing from the last one but etcd.
If any loop fails, the whole term ends and the controller campaigns again:
it never leads without a scheduler.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import NoReturn

from shoal import errors, heap
from shoal.controller import members, registryauth, state_metrics
from shoal.controller.allocator.allocator import Allocator
from shoal.controller.context import Leadership, Term
from shoal.controller.dispatcher.dispatcher import Dispatcher, DispatcherServicer
from shoal.controller.orchestrator.modes import ModesOrchestrator
from shoal.controller.orchestrator.replicated import ReplicatedOrchestrator
from shoal.controller.reaper import Reaper
from shoal.controller.scheduler.scheduler import Scheduler
from shoal.controller.secrets import Sealer
from shoal.controller.settings import ControllerSettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.controller.store.etcd import Etcd
from shoal.controller.store.keys import Keys
from shoal.v1 import dispatcher_pb2

log = logging.getLogger(__name__)


def deliverable_file(
    cache: Cache, sealer: Sealer, kind: str, file_id: str
) -> dispatcher_pb2.AssignedFile | dispatcher_pb2.AssignedRegistryAuth | None:
    """A secret (opened), config or registry credentials as a node that needs it receives it; None if gone."""
    if kind == "registry_auth":
        return registryauth.deliverable(cache, sealer, file_id)
    if kind == "secret":
        secret = cache.secrets.get(file_id)
        if secret is None:
            return None
        return dispatcher_pb2.AssignedFile(id=file_id, name=secret.spec.name, data=sealer.open(secret.sealed, file_id))
    config = cache.configs.get(file_id)
    return (
        None
        if config is None
        else dispatcher_pb2.AssignedFile(id=file_id, name=config.spec.name, data=config.spec.data)
    )


#: How often the leader re-reads the list of controllers it hands to agents.
CONTROLLERS_REFRESH = 5.0


async def _track_controllers(etcd: Etcd, keys: Keys, leadership: Leadership) -> NoReturn:
    """Keep the controller list agents are given current: this (leading) controller first."""
    me = leadership.settings.advertise_addr
    while True:
        try:
            found = [m.addr for m in await members.list_members(etcd, keys) if m.addr]
            leadership.controllers = [me, *(a for a in found if a != me)]
        except errors.ShoalError as exc:
            log.debug("cannot list controllers: %s", exc)
        await asyncio.sleep(CONTROLLERS_REFRESH)


async def run_term(
    fence: w.Fence,
    *,
    etcd: Etcd,
    keys: Keys,
    settings: ControllerSettings,
    leadership: Leadership,
    dispatcher_servicer: DispatcherServicer,
    sealer: Sealer,
) -> NoReturn:
    """Lead: build the cache, publish the term to the APIs, run every loop until one fails or we are cancelled."""
    cache = Cache(etcd, keys)
    writer = w.Writer(etcd, keys, cache, fence)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(cache.run(), name="cache")
            await cache.ready.wait()
            heap.settle()
            tg.create_task(heap.keep_trimmed(lambda: cache.revision), name="heap-trim")
            dispatcher = Dispatcher(
                cache=cache,
                writer=writer,
                keys=keys,
                settings=settings.dispatcher,
                controllers=lambda: leadership.controllers,
                files=functools.partial(deliverable_file, cache, sealer),
            )
            loops = settings.loops
            tg.create_task(dispatcher.run(), name="dispatcher")
            tg.create_task(_track_controllers(etcd, keys, leadership), name="controllers")
            tg.create_task(
                ReplicatedOrchestrator(cache=cache, writer=writer, settings=loops).run(), name="orchestrator"
            )
            tg.create_task(
                ModesOrchestrator(cache=cache, writer=writer, settings=loops).run(), name="orchestrator-modes"
            )
            tg.create_task(Allocator(cache=cache, writer=writer, settings=loops).run(), name="allocator")
            tg.create_task(Scheduler(cache=cache, writer=writer, settings=loops).run(), name="scheduler")
            tg.create_task(
                Reaper(cache=cache, writer=writer, settings=loops, default_history=settings.task_history_limit).run(),
                name="reaper",
            )
            leadership.current = Term(cache, writer)
            dispatcher_servicer.current = dispatcher
            state_metrics.CLUSTER.cache = cache
            log.info(
                "leading: %d nodes, %d services, %d tasks at revision %d",
                len(cache.nodes),
                len(cache.services),
                len(cache.tasks),
                cache.revision,
            )
    finally:
        leadership.current = None
        dispatcher_servicer.current = None
        state_metrics.CLUSTER.cache = None
    raise AssertionError("the control loops returned")
