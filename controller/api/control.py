"""The Control API servicer: CRUD on nodes, services and tasks.

Reads come from the leader's cache; writes are fenced transactions through
the writer, which returns once the cache has seen them (so a create followed
by a get sees the object). Handlers never touch the control loops: the
orchestrator, scheduler and reaper react to what is written.
"""

from __future__ import annotations

import logging

import grpc

from shoal import errors, ids, states
from shoal.controller import validation
from shoal.controller.api import refs
from shoal.controller.context import Leadership
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import control_pb2, control_pb2_grpc, objects_pb2, types_pb2

log = logging.getLogger(__name__)


class ControlServicer(control_pb2_grpc.ControlServicer):
    """swarmctl's API."""

    def __init__(self, leadership: Leadership, keys: Keys) -> None:
        self._leadership = leadership
        self._keys = keys

    # ---- nodes --------------------------------------------------------------

    @handle
    async def GetNode(self, request: control_pb2.GetNodeRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        cache = self._leadership.require().cache
        return control_pb2.GetNodeResponse(node=refs.resolve("node", request.ref, cache.nodes, cache.node_by_name))

    @handle
    async def ListNodes(self, request: control_pb2.ListNodesRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        cache = self._leadership.require().cache
        return control_pb2.ListNodesResponse(nodes=sorted(cache.nodes.values(), key=lambda n: n.name))

    @handle
    async def UpdateNode(self, request: control_pb2.UpdateNodeRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        term = self._leadership.require()
        node = refs.resolve("node", request.ref, term.cache.nodes, term.cache.node_by_name)
        validation.check_node_spec(node.name, request.spec)
        _check_version("node", node.name, request.version, node.meta.version)
        new = objects_pb2.Node()
        new.CopyFrom(node)
        new.spec.CopyFrom(request.spec)
        try:
            await term.writer.commit([w.Put(new, request.version)])
        except errors.Conflict:
            raise errors.Conflict(f'node "{node.name}" changed since it was read; read it again') from None
        return control_pb2.UpdateNodeResponse(node=term.cache.nodes[node.id])

    @handle
    async def RemoveNode(self, request: control_pb2.RemoveNodeRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        term = self._leadership.require()
        node = refs.resolve("node", request.ref, term.cache.nodes, term.cache.node_by_name)
        if node.status.state == types_pb2.NodeStatus.READY and not request.force:
            raise errors.FailedPrecondition(
                f'node "{node.name}" is READY: stop its agent first, or use --force to remove it anyway'
            )
        ops: list[w.Op] = [w.delete(node), w.Claim(self._keys.name(Kind.NODE, node.name), None, None)]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.Conflict(f'node "{node.name}" changed while being removed; try again') from None
        log.info("node %s (%s) removed", node.name, node.id)
        return control_pb2.RemoveNodeResponse()

    # ---- services -----------------------------------------------------------

    @handle
    async def CreateService(  # noqa: N802
        self, request: control_pb2.CreateServiceRequest, context: grpc.aio.ServicerContext
    ):
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(request.spec)
        validation.apply_defaults(spec)
        validation.check_service_spec(spec)
        term = self._leadership.require()
        cache = term.cache
        existing = self._created_by(cache, request.request_id)
        if existing is not None:
            return control_pb2.CreateServiceResponse(service=existing)
        if spec.name in cache.service_by_name:
            raise errors.AlreadyExists(f'service "{spec.name}" already exists')
        service = objects_pb2.Service(id=ids.new_id(), spec=spec, spec_version=1, create_request_id=request.request_id)
        ops: list[w.Op] = [w.create(service), w.Claim(self._keys.name(Kind.SERVICE, spec.name), service.id.encode())]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            # Either the name was taken meanwhile, or this is a retry of a create that landed.
            existing = self._created_by(cache, request.request_id)
            if existing is not None:
                return control_pb2.CreateServiceResponse(service=existing)
            raise errors.AlreadyExists(f'service "{spec.name}" already exists') from None
        log.info("service %s (%s) created", spec.name, service.id)
        return control_pb2.CreateServiceResponse(service=cache.services[service.id])

    @staticmethod
    def _created_by(cache, request_id: str) -> objects_pb2.Service | None:  # type: ignore[no-untyped-def]
        service_id = cache.service_by_request.get(request_id) if request_id else None
        return cache.services.get(service_id) if service_id else None

    @handle
    async def GetService(self, request: control_pb2.GetServiceRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        cache = self._leadership.require().cache
        service = refs.resolve("service", request.ref, cache.services, cache.service_by_name)
        return control_pb2.GetServiceResponse(service=service)

    @handle
    async def ListServices(  # noqa: N802
        self, request: control_pb2.ListServicesRequest, context: grpc.aio.ServicerContext
    ):
        cache = self._leadership.require().cache
        services = sorted(cache.services.values(), key=lambda s: s.spec.name)
        replicas = []
        for s in services:
            running = sum(
                1
                for t in cache.tasks_of_service(s.id)
                if t.status.state == states.RUNNING and t.desired_state == states.RUNNING
            )
            replicas.append(
                control_pb2.ServiceReplicas(service_id=s.id, running=running, desired=s.spec.replicated.replicas)
            )
        return control_pb2.ListServicesResponse(services=services, replicas=replicas)

    @handle
    async def UpdateService(  # noqa: N802
        self, request: control_pb2.UpdateServiceRequest, context: grpc.aio.ServicerContext
    ):
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(request.spec)
        validation.apply_defaults(spec)
        validation.check_service_spec(spec)
        name = service.spec.name
        if spec.name != name:
            raise errors.InvalidArgument(f'service "{name}": renaming a service is not supported')
        if spec.WhichOneof("mode") != service.spec.WhichOneof("mode"):
            raise errors.InvalidArgument(f'service "{name}": the mode of a service cannot change')
        _check_version("service", name, request.version, service.meta.version)
        new = objects_pb2.Service()
        new.CopyFrom(service)
        new.previous_spec.CopyFrom(service.spec)
        new.spec.CopyFrom(spec)
        if spec.task != service.spec.task:
            new.spec_version += 1
        try:
            await term.writer.commit([w.Put(new, request.version)])
        except errors.Conflict:
            raise errors.Conflict(f'service "{name}" changed since it was read; read it again') from None
        log.info("service %s (%s) updated", name, service.id)
        return control_pb2.UpdateServiceResponse(service=term.cache.services[service.id])

    @handle
    async def RemoveService(  # noqa: N802
        self, request: control_pb2.RemoveServiceRequest, context: grpc.aio.ServicerContext
    ):
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        ops: list[w.Op] = [w.delete(service), w.Claim(self._keys.name(Kind.SERVICE, service.spec.name), None, None)]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.Conflict(f'service "{service.spec.name}" changed while being removed; try again') from None
        log.info("service %s (%s) removed", service.spec.name, service.id)
        return control_pb2.RemoveServiceResponse()

    # ---- tasks --------------------------------------------------------------

    @handle
    async def GetTask(self, request: control_pb2.GetTaskRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        cache = self._leadership.require().cache
        return control_pb2.GetTaskResponse(task=refs.resolve("task", request.ref, cache.tasks))

    @handle
    async def ListTasks(self, request: control_pb2.ListTasksRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        cache = self._leadership.require().cache
        if request.service_ids:
            candidates = [t for sid in request.service_ids for t in cache.tasks_of_service(sid)]
        elif request.node_ids:
            candidates = [t for nid in request.node_ids for t in cache.tasks_of_node(nid)]
        else:
            candidates = list(cache.tasks.values())
        nodes = set(request.node_ids)
        desired = set(request.desired_states)
        tasks = [
            t for t in candidates if (not nodes or t.node_id in nodes) and (not desired or t.desired_state in desired)
        ]
        tasks.sort(key=lambda t: (t.service_name, t.slot, -t.status.timestamp.ToNanoseconds()))
        return control_pb2.ListTasksResponse(tasks=tasks)

    # ---- cluster ------------------------------------------------------------

    @handle
    async def GetClusterInfo(  # noqa: N802
        self, request: control_pb2.GetClusterInfoRequest, context: grpc.aio.ServicerContext
    ):
        term = self._leadership.require()
        election = self._leadership.election
        me = election.me
        return control_pb2.GetClusterInfoResponse(
            cluster=term.cache.cluster,
            controllers=[control_pb2.ControllerInfo(id=me.controller_id, addr=me.addr, leader=election.is_leader)],
            etcd_endpoints=self._leadership.settings.etcd_endpoints,
        )


def _check_version(kind: str, name: str, given: int, current: int) -> None:
    if given != current:
        raise errors.Conflict(
            f'{kind} "{name}" changed since it was read (version {given}, now {current}); read it again'
        )
