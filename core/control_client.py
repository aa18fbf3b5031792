"""The async Control API client: swarmctl's, and the Docker API's on the controller.

It holds the list of controller addresses (`shoal.remotes.Remotes`) and one
gRPC channel per address it has dialled. A call goes to the current address;
when that one is UNAVAILABLE (refused, unresolvable, or a server without etcd)
the next one is tried, and when a follower names the leader in the trailing
metadata `shoal.errors.LEADER_METADATA_KEY`, the call is repeated there. Every
attempt carries the `timeout` deadline. gRPC errors leave this module as
`shoal.errors.ShoalError`s (`from_code`), never as `grpc.aio.AioRpcError`.

swarmctl's command modules call it through `asyncio.run` (shoal.ctl.client
re-exports it); the controller's Docker Engine API (shoal.controller.dockerapi)
keeps one open for its lifetime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from shoal import errors, remotes, tls
from shoal.v1 import control_pb2, control_pb2_grpc, objects_pb2, types_pb2

Request = TypeVar("Request")
Reply = TypeVar("Reply")

#: Leader redirects followed per call beyond the host list: enough for one
#: election to settle, few enough that two confused followers cannot ping-pong forever.
_MAX_REDIRECTS = 3

#: Substrings of gRPC's connection-failure details and the short reason swarmctl prints.
_CONNECT_REASONS = (
    ("handshake", "TLS handshake failed: is --tls-dir the admin bundle of this cluster?"),
    ("verification", "TLS verification failed: is this a controller of the cluster of --tls-dir?"),
    ("certificate", "TLS handshake failed: is --tls-dir the admin bundle of this cluster?"),
    ("connection refused", "connection refused"),
    ("errors resolving", "cannot resolve the host name"),
    ("dns resolution failed", "cannot resolve the host name"),
    ("connection reset", "connection reset"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("failed to connect", "cannot connect"),
    ("socket closed", "connection closed"),
    ("connection timed out", "connection timed out"),
)


#: Replies as large as the controller sends (listing 100,000 tasks is tens of MB; gRPC's default is 4 MB).
MAX_REPLY = 256 * 1024 * 1024


def open_channel(addr: str, bundle: tls.Bundle) -> grpc.aio.Channel:
    """The one place a channel to a controller is made: mutual TLS with the admin bundle."""
    return tls.secure_channel(addr, bundle, options=[("grpc.max_receive_message_length", MAX_REPLY)])


@dataclasses.dataclass
class _Failure:
    """Why one address did not answer, for the final message."""

    addr: str
    reason: str
    connect: bool


class ControlClient:
    """Calls the Control API on whichever controller answers, following the leader.

    Use as an async context manager; the channels close on exit.
    """

    def __init__(self, hosts: remotes.Remotes, *, timeout: float, bundle: tls.Bundle) -> None:
        self._hosts = hosts
        self._timeout = timeout
        self._bundle = bundle
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closed = False

    async def __aenter__(self) -> ControlClient:
        if self._closed:
            raise RuntimeError("ControlClient cannot be reopened after it was closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def replace_bundle(self, bundle: tls.Bundle) -> None:
        """Use a renewed certificate: channels made from now on present it (the open ones are closed)."""
        self._bundle = bundle
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace=5.0)

    async def close(self) -> None:
        """Close every channel this client opened."""
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    # Nodes

    async def get_node(self, ref: str) -> control_pb2.GetNodeResponse:
        """GetNode by ID, name or unique ID prefix."""
        req = control_pb2.GetNodeRequest(ref=ref)
        return await self._call(lambda s: s.GetNode, req, idempotent=True)

    async def list_nodes(self) -> control_pb2.ListNodesResponse:
        """ListNodes."""
        return await self._call(lambda s: s.ListNodes, control_pb2.ListNodesRequest(), idempotent=True)

    async def update_node(
        self, ref: str, version: int, spec: types_pb2.NodeSpec
    ) -> control_pb2.UpdateNodeResponse:
        """UpdateNode; ABORTED (Conflict) if the node changed since `version`."""
        req = control_pb2.UpdateNodeRequest(ref=ref, version=version, spec=spec)
        return await self._call(lambda s: s.UpdateNode, req)

    async def remove_node(self, ref: str, *, force: bool = False) -> control_pb2.RemoveNodeResponse:
        """RemoveNode."""
        req = control_pb2.RemoveNodeRequest(ref=ref, force=force)
        return await self._call(lambda s: s.RemoveNode, req)

    # Services

    async def create_service(
        self,
        spec: types_pb2.ServiceSpec,
        request_id: str,
        *,
        registry_auth: types_pb2.RegistryAuth | None = None,
        no_resolve_image: bool = False,
    ) -> control_pb2.CreateServiceResponse:
        """CreateService; safe to repeat with the same `request_id`, so it is retried once on a timeout."""
        req = control_pb2.CreateServiceRequest(
            spec=spec, request_id=request_id, registry_auth=registry_auth, no_resolve_image=no_resolve_image
        )
        return await self._call(lambda s: s.CreateService, req, idempotent=True)

    async def get_service(self, ref: str) -> control_pb2.GetServiceResponse:
        """GetService by ID, name or unique ID prefix."""
        req = control_pb2.GetServiceRequest(ref=ref)
        return await self._call(lambda s: s.GetService, req, idempotent=True)

    async def list_services(self) -> control_pb2.ListServicesResponse:
        """ListServices (with the running/desired replica counts)."""
        req = control_pb2.ListServicesRequest()
        return await self._call(lambda s: s.ListServices, req, idempotent=True)

    async def update_service(
        self,
        ref: str,
        version: int,
        spec: types_pb2.ServiceSpec,
        *,
        registry_auth: types_pb2.RegistryAuth | None = None,
        no_resolve_image: bool = False,
    ) -> control_pb2.UpdateServiceResponse:
        """UpdateService; ABORTED (Conflict) if the service changed since `version`."""
        req = control_pb2.UpdateServiceRequest(
            ref=ref, version=version, spec=spec, registry_auth=registry_auth, no_resolve_image=no_resolve_image
        )
        return await self._call(lambda s: s.UpdateService, req)

    async def remove_service(self, ref: str) -> control_pb2.RemoveServiceResponse:
        """RemoveService."""
        req = control_pb2.RemoveServiceRequest(ref=ref)
        return await self._call(lambda s: s.RemoveService, req)

    async def rollback_service(self, ref: str, version: int = 0) -> control_pb2.UpdateServiceResponse:
        """RollbackService: restore the previous spec (ABORTED if the service changed since `version`, when given)."""
        req = control_pb2.RollbackServiceRequest(ref=ref, version=version)
        return await self._call(lambda s: s.RollbackService, req)

    async def rebalance_service(self, ref: str) -> control_pb2.UpdateServiceResponse:
        """RebalanceService: move tasks towards an even spread."""
        req = control_pb2.RebalanceServiceRequest(ref=ref)
        return await self._call(lambda s: s.RebalanceService, req)

    # Tasks

    async def get_task(self, ref: str) -> control_pb2.GetTaskResponse:
        """GetTask by ID or unique ID prefix."""
        req = control_pb2.GetTaskRequest(ref=ref)
        return await self._call(lambda s: s.GetTask, req, idempotent=True)

    async def list_tasks(
        self,
        *,
        service_ids: Sequence[str] = (),
        node_ids: Sequence[str] = (),
        desired_states: Sequence[types_pb2.TaskState.ValueType] = (),
    ) -> control_pb2.ListTasksResponse:
        """ListTasks, keeping those that match every filter given."""
        req = control_pb2.ListTasksRequest(
            service_ids=service_ids, node_ids=node_ids, desired_states=desired_states
        )
        return await self._call(lambda s: s.ListTasks, req, idempotent=True)

    async def get_join_tokens(self) -> control_pb2.GetJoinTokensResponse:
        """GetJoinTokens."""
        return await self._call(lambda s: s.GetJoinTokens, control_pb2.GetJoinTokensRequest(), idempotent=True)

    async def rotate_join_token(self, role: str) -> control_pb2.GetJoinTokensResponse:
        """RotateJoinToken for "worker" or "controller"."""
        return await self._call(lambda s: s.RotateJoinToken, control_pb2.RotateJoinTokenRequest(role=role))

    async def update_cluster(
        self, version: int, *, task_history_limit: int, auto_rebalance: bool
    ) -> control_pb2.UpdateClusterResponse:
        """UpdateCluster: every setting, with the cluster version read; ABORTED if it changed since."""
        req = control_pb2.UpdateClusterRequest(
            version=version, task_history_limit=task_history_limit, auto_rebalance=auto_rebalance
        )
        return await self._call(lambda s: s.UpdateCluster, req)

    # Secrets and configs: `kind` is "Secret" or "Config".

    async def create_file(self, kind: str, spec: types_pb2.FileSpec) -> Any:
        """CreateSecret / CreateConfig."""
        return await self._call(lambda s: getattr(s, f"Create{kind}"), control_pb2.CreateFileRequest(spec=spec))

    async def get_file(self, kind: str, ref: str) -> Any:
        """GetSecret / GetConfig by ID, name or unique ID prefix."""
        req = control_pb2.GetFileRequest(ref=ref)
        return await self._call(lambda s: getattr(s, f"Get{kind}"), req, idempotent=True)

    async def list_files(self, kind: str) -> Any:
        """ListSecrets / ListConfigs."""
        req = control_pb2.ListFilesRequest()
        return await self._call(lambda s: getattr(s, f"List{kind}s"), req, idempotent=True)

    async def update_file(self, kind: str, ref: str, version: int, spec: types_pb2.FileSpec) -> Any:
        """UpdateSecret / UpdateConfig: new labels (ABORTED if the object changed since `version`)."""
        req = control_pb2.UpdateFileRequest(ref=ref, version=version, spec=spec)
        return await self._call(lambda s: getattr(s, f"Update{kind}"), req)

    async def remove_file(self, kind: str, ref: str) -> Any:
        """RemoveSecret / RemoveConfig."""
        return await self._call(lambda s: getattr(s, f"Remove{kind}"), control_pb2.GetFileRequest(ref=ref))

    # Networks

    async def create_network(self, spec: objects_pb2.NetworkSpec) -> control_pb2.NetworkResponse:
        """CreateNetwork."""
        return await self._call(lambda s: s.CreateNetwork, control_pb2.CreateNetworkRequest(spec=spec))

    async def get_network(self, ref: str) -> control_pb2.NetworkResponse:
        """GetNetwork by ID, name or unique ID prefix."""
        return await self._call(lambda s: s.GetNetwork, control_pb2.GetNetworkRequest(ref=ref), idempotent=True)

    async def list_networks(self) -> control_pb2.ListNetworksResponse:
        """ListNetworks."""
        return await self._call(lambda s: s.ListNetworks, control_pb2.ListNetworksRequest(), idempotent=True)

    async def remove_network(self, ref: str) -> control_pb2.RemoveNetworkResponse:
        """RemoveNetwork."""
        return await self._call(lambda s: s.RemoveNetwork, control_pb2.GetNetworkRequest(ref=ref))

    async def get_cluster_info(self) -> control_pb2.GetClusterInfoResponse:
        """GetClusterInfo."""
        req = control_pb2.GetClusterInfoRequest()
        return await self._call(lambda s: s.GetClusterInfo, req, idempotent=True)

    async def list_task_stats(
        self, *, service_ids: Sequence[str] = (), node_ids: Sequence[str] = ()
    ) -> control_pb2.ListTaskStatsResponse:
        """ListTaskStats: running tasks' CPU and memory, as their agents last sampled them."""
        req = control_pb2.ListTaskStatsRequest(service_ids=service_ids, node_ids=node_ids)
        return await self._call(lambda s: s.ListTaskStats, req, idempotent=True)

    # Volumes and images (issue 18)

    async def list_volumes(self, *, node_refs: Sequence[str] = (), name: str = "") -> control_pb2.ListVolumesResponse:
        """ListVolumes: the Shoal volumes of the nodes asked (every node by default), from their agents."""
        req = control_pb2.ListVolumesRequest(node_refs=node_refs, name=name)
        return await self._call(lambda s: s.ListVolumes, req, idempotent=True)

    async def remove_volume(self, name: str, node_ref: str) -> control_pb2.RemoveVolumeResponse:
        """RemoveVolume from one node."""
        req = control_pb2.RemoveVolumeRequest(name=name, node_ref=node_ref)
        return await self._call(lambda s: s.RemoveVolume, req)

    # Transport

    def _stub(self, addr: str) -> control_pb2_grpc.ControlAsyncStub:
        if self._closed:
            raise RuntimeError("ControlClient used after it was closed")
        channel = self._channels.get(addr)
        if channel is None:
            channel = self._channels[addr] = open_channel(addr, self._bundle)
        return control_pb2_grpc.ControlStub(channel)

    async def _call(
        self,
        method: Callable[[control_pb2_grpc.ControlAsyncStub], grpc.aio.UnaryUnaryMultiCallable[Request, Reply]],
        request: Request,
        *,
        idempotent: bool = False,
    ) -> Reply:
        """One RPC, moving to the next controller on UNAVAILABLE and to the leader when named.

        `idempotent` calls are also repeated once, on the next controller, after
        DEADLINE_EXCEEDED, since running them twice does no harm.
        """
        untried = self._hosts.all
        failures: list[_Failure] = []
        redirects = 0
        deadline_retried = False
        addr = self._hosts.current
        while True:
            try:
                return await method(self._stub(addr))(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                code, details, leader = exc.code(), exc.details() or "", _leader_of(exc)
            if addr in untried:
                untried.remove(addr)
            if code == grpc.StatusCode.UNAVAILABLE and leader and redirects < _MAX_REDIRECTS:
                redirects += 1
                self._hosts.prefer(leader)
                addr = leader
                continue
            if code == grpc.StatusCode.UNAVAILABLE:
                failures.append(_describe(addr, details))
            elif code == grpc.StatusCode.DEADLINE_EXCEEDED and idempotent and not deadline_retried:
                deadline_retried = True
                failures.append(_Failure(addr, f"no answer within {self._timeout:g}s", connect=True))
                # The connection itself may be what lost the answer: ask again on a fresh one.
                stale = self._channels.pop(addr, None)
                if stale is not None:
                    await stale.close()
            else:
                raise self._error(code, details, leader, addr)
            self._hosts.failed(addr)
            if untried:
                addr = untried[0]
            elif deadline_retried and len(failures) == 1:
                # The only controller timed out; an idempotent call may ask it once more.
                addr = self._hosts.current
            else:
                raise _unreachable(failures)

    async def stream(
        self,
        method: Callable[[control_pb2_grpc.ControlAsyncStub], Callable[..., Any]],
        request: Any,
        *,
        timeout: float | None,
    ) -> AsyncIterator[Any]:
        """A server-streaming RPC (logs, events), moving on like `_call` until the stream is established.

        A follower refuses at once, naming the leader, and an unreachable
        controller fails before any message: both are retried elsewhere, as
        for unary calls. Once the first message (or the end) has arrived, the
        stream stays where it is and an error ends it. `timeout` bounds the
        whole stream (None: until the server ends it or the caller stops).
        """
        untried = self._hosts.all
        failures: list[_Failure] = []
        redirects = 0
        addr = self._hosts.current
        while True:
            call = method(self._stub(addr))(request, timeout=timeout)
            try:
                try:
                    first = await call.read()
                except grpc.aio.AioRpcError as exc:
                    code, details, leader = exc.code(), exc.details() or "", _leader_of(exc)
                else:
                    if first is grpc.aio.EOF:
                        return
                    yield first
                    try:
                        while (item := await call.read()) is not grpc.aio.EOF:
                            yield item
                    except grpc.aio.AioRpcError as exc:
                        raise self._error(exc.code(), exc.details() or "", _leader_of(exc), addr) from None
                    return
            finally:
                call.cancel()
            if addr in untried:
                untried.remove(addr)
            if code == grpc.StatusCode.UNAVAILABLE and leader and redirects < _MAX_REDIRECTS:
                redirects += 1
                self._hosts.prefer(leader)
                addr = leader
                continue
            if code != grpc.StatusCode.UNAVAILABLE:
                raise self._error(code, details, leader, addr)
            failures.append(_describe(addr, details))
            self._hosts.failed(addr)
            if not untried:
                raise _unreachable(failures)
            addr = untried[0]

    def _error(self, code: grpc.StatusCode, details: str, leader: str, addr: str) -> errors.ShoalError:
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return errors.DeadlineExceeded(f"no answer from {addr} within {self._timeout:g}s")
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return errors.ShoalError(f"{addr} does not serve the Shoal control API ({_one_line(details)})")
        return errors.from_code(code, _one_line(details) or code.name.lower(), leader)


def _leader_of(exc: grpc.aio.AioRpcError) -> str:
    """The leader address a follower put in the trailing metadata, or ""."""
    for key, value in exc.trailing_metadata() or ():
        if key == errors.LEADER_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def _describe(addr: str, details: str) -> _Failure:
    """Turn gRPC's long connection-failure text into a short reason."""
    lowered = details.lower()
    for needle, reason in _CONNECT_REASONS:
        if needle in lowered:
            return _Failure(addr, reason, connect=True)
    return _Failure(addr, _one_line(details) or "unavailable", connect=False)


def _unreachable(failures: list[_Failure]) -> errors.Unavailable:
    """The one-line error when no controller answered."""
    last = failures[-1]
    if not last.connect:
        # The controller answered but cannot serve (no etcd, no leader): its own words are best.
        return errors.Unavailable(f"{last.addr}: {last.reason}")
    reasons = list(dict.fromkeys(f.reason for f in failures))
    addrs = ", ".join(dict.fromkeys(f.addr for f in failures))
    if len(reasons) == 1:
        return errors.Unavailable(f"cannot reach a controller at {addrs} ({reasons[0]})")
    detail = "; ".join(f"{f.addr}: {f.reason}" for f in failures)
    return errors.Unavailable(f"cannot reach a controller ({detail})")


def _one_line(text: str) -> str:
    return " ".join(text.split())
