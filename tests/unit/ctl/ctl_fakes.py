"""An in-memory Control API for swarmctl's unit tests, served by a real grpc.aio server.

`FakeControl` implements `shoal.v1.control_pb2_grpc.ControlServicer` over
dicts, resolving refs as the controller does (ID, then name, then unique ID
prefix) and keeping versions, so that the CLI's requests and its handling of
every status code go over real gRPC. `Follower`, `Unavailable` and `Stalled`
are controllers that misbehave in one way each. `ServerThread` serves one on a
free loopback port in its own thread and event loop, since swarmctl itself
calls `asyncio.run`, with mutual TLS and the controller's `authz.Authorizer`,
as a real controller serves the Control API.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from shoal import authz, errors, tls
from shoal.v1 import control_pb2, control_pb2_grpc, objects_pb2, types_pb2

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


def _validate(spec: types_pb2.ServiceSpec) -> None:
    """The controller's checks that these tests rely on."""
    if not _NAME.match(spec.name):
        raise errors.InvalidArgument(f'service name "{spec.name}" is invalid')
    if spec.replicated.replicas < 0:
        raise errors.InvalidArgument(f'service "{spec.name}": replicas must be >= 0')


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    """A Timestamp `seconds` after the epoch."""
    return timestamp_pb2.Timestamp(seconds=seconds)


class FakeControl(control_pb2_grpc.ControlServicer):
    """The Control API over dicts: enough behaviour to check what swarmctl sends and prints."""

    def __init__(self) -> None:
        self.services: dict[str, objects_pb2.Service] = {}
        self.nodes: dict[str, objects_pb2.Node] = {}
        self.tasks: dict[str, objects_pb2.Task] = {}
        self.networks: dict[str, objects_pb2.Network] = {}
        self.running: dict[str, int] = {}
        #: Every request received, as (method name, request).
        self.requests: list[tuple[str, Any]] = []
        #: Who made each request: the CN and OU of the client certificate, as the Authorizer read them.
        self.callers: list[authz.Caller] = []
        #: The next N update calls fail with ABORTED, as if another writer got there first.
        self.conflicts = 0
        self._revision = 100

    # Helpers for tests

    def add_service(self, service_id: str, name: str, *, replicas: int | None = 1, image: str = "busybox") -> None:
        spec = types_pb2.ServiceSpec(name=name)
        spec.task.container.image = image
        if replicas is None:
            getattr(spec, "global").SetInParent()
        else:
            spec.replicated.replicas = replicas
        self.services[service_id] = objects_pb2.Service(id=service_id, spec=spec, meta=self._meta())

    def add_node(self, node_id: str, name: str, **status: Any) -> None:
        node = objects_pb2.Node(id=node_id, name=name, meta=self._meta())
        node.status.state = status.get("state", types_pb2.NodeStatus.READY)
        node.status.addr = status.get("addr", "10.0.0.1:4241")
        node.description.engine.engine_version = "27.0.1"
        self.nodes[node_id] = node

    def add_task(self, task: objects_pb2.Task) -> None:
        if not task.meta.version:
            self._bump(task.meta)
        self.tasks[task.id] = task

    def calls(self, method: str) -> list[Any]:
        """The requests received by `method`, oldest first."""
        return [req for name, req in self.requests if name == method]

    def _meta(self) -> types_pb2.Meta:
        self._revision += 1
        return types_pb2.Meta(version=self._revision, created_at=ts(1_000), updated_at=ts(1_000))

    def _bump(self, meta: types_pb2.Meta) -> None:
        self._revision += 1
        meta.version = self._revision

    @staticmethod
    def _resolve(objects: dict[str, Any], ref: str, name_of: Callable[[Any], str], kind: str) -> Any:
        if ref in objects:
            return objects[ref]
        named = [o for o in objects.values() if name_of(o) == ref]
        if named:
            return named[0]
        prefixed = [o for i, o in objects.items() if ref and i.startswith(ref)]
        if len(prefixed) > 1:
            raise errors.InvalidArgument(f'{kind} prefix "{ref}" is ambiguous')
        if not prefixed:
            raise errors.NotFound(f'{kind} "{ref}" not found')
        return prefixed[0]

    def _service(self, ref: str) -> objects_pb2.Service:
        return self._resolve(self.services, ref, lambda s: s.spec.name, "service")

    def _node(self, ref: str) -> objects_pb2.Node:
        return self._resolve(self.nodes, ref, lambda n: n.name, "node")

    async def _serve(self, context: grpc.aio.ServicerContext, method: str, request: Any, fn: Callable[[], Any]) -> Any:
        self.requests.append((method, request))
        self.callers.append(authz.caller())
        try:
            return fn()
        except errors.ShoalError as exc:
            await context.abort(exc.code, str(exc))

    # Services

    async def CreateService(self, request, context):  # noqa: N802 - gRPC method name
        def create() -> control_pb2.CreateServiceResponse:
            for svc in self.services.values():
                if request.request_id and svc.create_request_id == request.request_id:
                    return control_pb2.CreateServiceResponse(service=svc)
            _validate(request.spec)
            if any(s.spec.name == request.spec.name for s in self.services.values()):
                raise errors.AlreadyExists(f'service "{request.spec.name}" already exists')
            svc = objects_pb2.Service(
                id=uuid.uuid4().hex[:25],
                spec=request.spec,
                meta=self._meta(),
                create_request_id=request.request_id,
            )
            self.services[svc.id] = svc
            return control_pb2.CreateServiceResponse(service=svc)

        return await self._serve(context, "CreateService", request, create)

    async def GetService(self, request, context):  # noqa: N802
        return await self._serve(
            context,
            "GetService",
            request,
            lambda: control_pb2.GetServiceResponse(service=self._service(request.ref)),
        )

    async def ListServices(self, request, context):  # noqa: N802
        def ls() -> control_pb2.ListServicesResponse:
            reply = control_pb2.ListServicesResponse(services=list(self.services.values()))
            for svc in self.services.values():
                desired = svc.spec.replicated.replicas if svc.spec.HasField("replicated") else len(self.nodes)
                reply.replicas.add(service_id=svc.id, running=self.running.get(svc.id, 0), desired=desired)
            return reply

        return await self._serve(context, "ListServices", request, ls)

    async def UpdateService(self, request, context):  # noqa: N802
        def update() -> control_pb2.UpdateServiceResponse:
            svc = self._service(request.ref)
            if self.conflicts:
                self.conflicts -= 1
                self._bump(svc.meta)
            if request.version != svc.meta.version:
                raise errors.Conflict(f'service "{svc.spec.name}" changed since version {request.version}')
            _validate(request.spec)
            svc.spec.CopyFrom(request.spec)
            self._bump(svc.meta)
            return control_pb2.UpdateServiceResponse(service=svc)

        return await self._serve(context, "UpdateService", request, update)

    async def RemoveService(self, request, context):  # noqa: N802
        def remove() -> control_pb2.RemoveServiceResponse:
            del self.services[self._service(request.ref).id]
            return control_pb2.RemoveServiceResponse()

        return await self._serve(context, "RemoveService", request, remove)

    # Nodes

    async def GetNode(self, request, context):  # noqa: N802
        return await self._serve(
            context, "GetNode", request, lambda: control_pb2.GetNodeResponse(node=self._node(request.ref))
        )

    async def ListNodes(self, request, context):  # noqa: N802
        return await self._serve(
            context,
            "ListNodes",
            request,
            lambda: control_pb2.ListNodesResponse(nodes=list(self.nodes.values())),
        )

    async def UpdateNode(self, request, context):  # noqa: N802
        def update() -> control_pb2.UpdateNodeResponse:
            node = self._node(request.ref)
            if self.conflicts:
                self.conflicts -= 1
                self._bump(node.meta)
            if request.version != node.meta.version:
                raise errors.Conflict(f'node "{node.name}" changed since version {request.version}')
            node.spec.CopyFrom(request.spec)
            self._bump(node.meta)
            return control_pb2.UpdateNodeResponse(node=node)

        return await self._serve(context, "UpdateNode", request, update)

    async def RemoveNode(self, request, context):  # noqa: N802
        def remove() -> control_pb2.RemoveNodeResponse:
            node = self._node(request.ref)
            if node.status.state == types_pb2.NodeStatus.READY and not request.force:
                raise errors.FailedPrecondition(f'node "{node.name}" is READY; drain it or use --force')
            del self.nodes[node.id]
            return control_pb2.RemoveNodeResponse()

        return await self._serve(context, "RemoveNode", request, remove)

    # Networks

    async def ListNetworks(self, request, context):  # noqa: N802
        return await self._serve(
            context,
            "ListNetworks",
            request,
            lambda: control_pb2.ListNetworksResponse(networks=list(self.networks.values())),
        )

    # Tasks

    async def GetTask(self, request, context):  # noqa: N802
        return await self._serve(
            context,
            "GetTask",
            request,
            lambda: control_pb2.GetTaskResponse(task=self._resolve(self.tasks, request.ref, lambda t: "", "task")),
        )

    async def ListTasks(self, request, context):  # noqa: N802
        def ls() -> control_pb2.ListTasksResponse:
            tasks = [
                t
                for t in self.tasks.values()
                if (not request.service_ids or t.service_id in request.service_ids)
                and (not request.node_ids or t.node_id in request.node_ids)
                and (not request.desired_states or t.desired_state in request.desired_states)
            ]
            return control_pb2.ListTasksResponse(tasks=tasks)

        return await self._serve(context, "ListTasks", request, ls)


class Follower(control_pb2_grpc.ControlServicer):
    """A controller that is not the leader: every call is UNAVAILABLE naming `leader`."""

    def __init__(self, leader: str) -> None:
        self.leader = leader
        self.calls = 0

    async def _redirect(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            "this controller is not the leader",
            trailing_metadata=((errors.LEADER_METADATA_KEY, self.leader),),
        )

    async def ListServices(self, request, context):  # noqa: N802
        await self._redirect(context)

    async def CreateService(self, request, context):  # noqa: N802
        await self._redirect(context)


class Unavailable(control_pb2_grpc.ControlServicer):
    """A controller that records creates and then answers UNAVAILABLE (its etcd is gone)."""

    def __init__(self) -> None:
        self.requests: list[control_pb2.CreateServiceRequest] = []

    async def CreateService(self, request, context):  # noqa: N802
        self.requests.append(request)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "etcd is unreachable")


class Stalled(control_pb2_grpc.ControlServicer):
    """A controller that answers GetService but never answers a create or a remove."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def GetService(self, request, context):  # noqa: N802
        svc = objects_pb2.Service(id="svc1", spec=types_pb2.ServiceSpec(name=request.ref))
        return control_pb2.GetServiceResponse(service=svc)

    async def CreateService(self, request, context):  # noqa: N802
        self.requests.append(request)
        await asyncio.Event().wait()

    async def RemoveService(self, request, context):  # noqa: N802
        self.requests.append(request)
        await asyncio.Event().wait()


class ServerThread:
    """A grpc.aio server for one servicer on a free loopback port, in a thread with its own loop.

    It serves with `bundle` (a controller certificate) and asks for a client
    certificate from the same CA and cluster, with the controller's own rules.
    """

    def __init__(self, servicer: control_pb2_grpc.ControlServicer, bundle: tls.Bundle) -> None:
        self.servicer = servicer
        self.bundle = bundle
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-control", daemon=True)
        self.server: grpc.aio.Server | None = None
        self.addr = ""

    def __enter__(self) -> ServerThread:
        self.thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        self.addr = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    async def _start(self) -> int:
        cluster_id = self.bundle.identity.cluster_id
        self.server = grpc.aio.server(interceptors=[authz.Authorizer(lambda: cluster_id, authz.CONTROLLER_RULES)])
        control_pb2_grpc.add_ControlServicer_to_server(self.servicer, self.server)
        port = self.server.add_secure_port("127.0.0.1:0", tls.ServingCertificate(self.bundle).credentials())
        await self.server.start()
        return port
