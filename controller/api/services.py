"""Control API: services. Specs are validated and defaulted, names reserved in etcd, creates made idempotent."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from shoal import errors, ids
from shoal.controller import imageresolve, networking, registryauth, rollout, service_modes, validation
from shoal.controller.api import images, networks, refs
from shoal.controller.api.base import Handlers, check_version
from shoal.controller.api.files import resolve_file_refs
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.keys import Kind
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)

UpdateStatus = types_pb2.UpdateStatus


class ServiceHandlers(Handlers):
    """CreateService, GetService, ListServices, UpdateService, RemoveService."""

    @handle
    async def CreateService(  # noqa: N802
        self, request: control_pb2.CreateServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.CreateServiceResponse:
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(request.spec)
        validation.apply_defaults(spec)
        validation.check_service_spec(spec)
        networking.check_service_networking(f'service "{spec.name}"', spec)
        term = self._leadership.require()
        cache = term.cache
        resolve_file_refs(cache, spec)
        networks.resolve_service_networks(cache, spec)
        existing = self._created_by(cache, request.request_id)
        if existing is not None:
            return control_pb2.CreateServiceResponse(service=existing)
        if spec.name in cache.service_by_name:
            raise errors.AlreadyExists(f'service "{spec.name}" already exists')
        service = objects_pb2.Service(id=ids.new_id(), spec=spec, spec_version=1, create_request_id=request.request_id)
        # Registry credentials and the image's digest (issue 18), before the network lock: a registry may be slow.
        more, warnings = await images.prepare(self._resolver(), cache, self._sealer, service, service.spec, request)
        ops: list[w.Op] = [w.create(service), w.Claim(self._keys.name(Kind.SERVICE, spec.name), service.id.encode())]
        ops += more
        try:
            pools = self._leadership.settings.networks.pools
            async with networks.publishing(self, term, self._keys, pools, service.spec):
                await term.writer.commit(ops)
        except errors.Conflict:
            # Either the name was taken meanwhile, or this is a retry of a create that landed.
            existing = self._created_by(cache, request.request_id)
            if existing is not None:
                return control_pb2.CreateServiceResponse(service=existing)
            raise errors.AlreadyExists(f'service "{spec.name}" already exists') from None
        log.info("service %s (%s) created", spec.name, service.id)
        return control_pb2.CreateServiceResponse(service=cache.services[service.id], warnings=warnings)

    def _resolver(self) -> imageresolve.Resolver:
        return images.resolver(self._leadership.settings.registry)

    @staticmethod
    def _created_by(cache, request_id: str) -> objects_pb2.Service | None:  # type: ignore[no-untyped-def]
        service_id = cache.service_by_request.get(request_id) if request_id else None
        return cache.services.get(service_id) if service_id else None

    @handle
    async def GetService(  # noqa: N802
        self, request: control_pb2.GetServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetServiceResponse:
        cache = self._leadership.require().cache
        service = refs.resolve("service", request.ref, cache.services, cache.service_by_name)
        return control_pb2.GetServiceResponse(service=service)

    @handle
    async def ListServices(  # noqa: N802
        self, request: control_pb2.ListServicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListServicesResponse:
        cache = self._leadership.require().cache
        services = sorted(cache.services.values(), key=lambda s: s.spec.name)
        replicas = []
        for s in services:
            n = service_modes.counts(s, cache.tasks_of_service(s.id))
            replicas.append(
                control_pb2.ServiceReplicas(
                    service_id=s.id,
                    running=n.running,
                    desired=n.desired,
                    completed=n.completed,
                    completions=n.completions,
                )
            )
        return control_pb2.ListServicesResponse(services=services, replicas=replicas)

    @handle
    async def UpdateService(  # noqa: N802
        self, request: control_pb2.UpdateServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.UpdateServiceResponse:
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(request.spec)
        validation.apply_defaults(spec)
        validation.check_service_spec(spec)
        networking.check_service_networking(f'service "{spec.name}"', spec)
        resolve_file_refs(term.cache, spec)
        networks.resolve_service_networks(term.cache, spec)
        name = service.spec.name
        if spec.name != name:
            raise errors.InvalidArgument(f'service "{name}": renaming a service is not supported')
        if spec.WhichOneof("mode") != service.spec.WhichOneof("mode"):
            raise errors.InvalidArgument(f'service "{name}": the mode of a service cannot change')
        check_version("service", name, request.version, service.meta.version)
        # Registry credentials and the image's digest (issue 18), before the network lock: a registry may be slow.
        more, warnings = await images.prepare(self._resolver(), term.cache, self._sealer, service, spec, request)
        pools = self._leadership.settings.networks.pools
        try:
            async with networks.publishing(self, term, self._keys, pools, spec, service.id):
                new = updated(service, spec, functools.partial(term.cache.tasks_of_service, service.id), time.time())
                await term.writer.commit([w.Put(new, request.version), *more])
        except errors.Conflict:
            raise errors.Conflict(f'service "{name}" changed since it was read; read it again') from None
        log.info("service %s (%s) updated%s", name, service.id, _rollout_note(service, new))
        return control_pb2.UpdateServiceResponse(service=term.cache.services[service.id], warnings=warnings)

    @handle
    async def RemoveService(  # noqa: N802
        self, request: control_pb2.RemoveServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveServiceResponse:
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        ops: list[w.Op] = [w.delete(service), w.Claim(self._keys.name(Kind.SERVICE, service.spec.name), None, None)]
        ops += registryauth.removals(term.cache, service.id)
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.Conflict(f'service "{service.spec.name}" changed while being removed; try again') from None
        log.info("service %s (%s) removed", service.spec.name, service.id)
        return control_pb2.RemoveServiceResponse()


def updated(
    service: objects_pb2.Service,
    spec: types_pb2.ServiceSpec,
    tasks_of: Callable[[], Sequence[objects_pb2.Task]],
    now: float,
) -> objects_pb2.Service:
    """The service with `spec` written over its spec, the old one kept for a rollback.

    A change of the task spec (or a forced update) takes a never-used spec
    version (`tasks_of` lists the service's tasks, whose versions are used;
    only then, since at a thousand tasks the list costs more than the rest of
    the call) and starts an update, recorded in the same write so that a client
    follows it from the reply on. Any update resumes a paused update or
    rollback, as in Docker: its dirty slots are replaced with the update
    settings, its failures forgotten.
    """
    new = objects_pb2.Service()
    new.CopyFrom(service)
    new.previous_spec.CopyFrom(service.spec)
    new.previous_spec_version = service.spec_version
    new.spec.CopyFrom(spec)
    state = service.update_status.state
    rolls = spec.WhichOneof("mode") in rollout.ROLLING_MODES  # a job runs again instead
    # Tasks carry their addresses for the endpoint they were made for (mesh ports mean the ingress
    # network), so a changed endpoint replaces them too, as in Docker.
    if spec.task != service.spec.task or spec.endpoint != service.spec.endpoint:
        new.spec_version = rollout.next_spec_version(service, tasks_of())
        if rolls:
            new.update_status.CopyFrom(rollout.status(UpdateStatus.UPDATING, now, "update in progress"))
    elif rolls and state in rollout.UPDATE_PAUSED:
        new.update_status.CopyFrom(rollout.status(UpdateStatus.UPDATING, now, "update resumed"))
    return new


def _rollout_note(old: objects_pb2.Service, new: objects_pb2.Service) -> str:
    if new.update_status == old.update_status:
        return ""
    return f"; {new.update_status.message} (spec version {new.spec_version})"

