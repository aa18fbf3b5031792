import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal.v1 import agent_pb2 as _agent_pb2
from shoal.v1 import objects_pb2 as _objects_pb2
from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetNodeRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _objects_pb2.Node
    def __init__(self, node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[_objects_pb2.Node, _Mapping]]] = ...) -> None: ...

class UpdateNodeRequest(_message.Message):
    __slots__ = ("ref", "version", "spec")
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ref: str
    version: int
    spec: _types_pb2.NodeSpec
    def __init__(self, ref: _Optional[str] = ..., version: _Optional[int] = ..., spec: _Optional[_Union[_types_pb2.NodeSpec, _Mapping]] = ...) -> None: ...

class UpdateNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _objects_pb2.Node
    def __init__(self, node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("ref", "force")
    REF_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    ref: str
    force: bool
    def __init__(self, ref: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateServiceRequest(_message.Message):
    __slots__ = ("spec", "request_id", "registry_auth", "no_resolve_image")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_FIELD_NUMBER: _ClassVar[int]
    NO_RESOLVE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    spec: _types_pb2.ServiceSpec
    request_id: str
    registry_auth: _types_pb2.RegistryAuth
    no_resolve_image: bool
    def __init__(self, spec: _Optional[_Union[_types_pb2.ServiceSpec, _Mapping]] = ..., request_id: _Optional[str] = ..., registry_auth: _Optional[_Union[_types_pb2.RegistryAuth, _Mapping]] = ..., no_resolve_image: _Optional[bool] = ...) -> None: ...

class CreateServiceResponse(_message.Message):
    __slots__ = ("service", "warnings")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceReplicas(_message.Message):
    __slots__ = ("service_id", "running", "desired", "completed", "completions")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    running: int
    desired: int
    completed: int
    completions: int
    def __init__(self, service_id: _Optional[str] = ..., running: _Optional[int] = ..., desired: _Optional[int] = ..., completed: _Optional[int] = ..., completions: _Optional[int] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services", "replicas")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Service]
    replicas: _containers.RepeatedCompositeFieldContainer[ServiceReplicas]
    def __init__(self, services: _Optional[_Iterable[_Union[_objects_pb2.Service, _Mapping]]] = ..., replicas: _Optional[_Iterable[_Union[ServiceReplicas, _Mapping]]] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("ref", "version", "spec", "registry_auth", "no_resolve_image")
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_FIELD_NUMBER: _ClassVar[int]
    NO_RESOLVE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    ref: str
    version: int
    spec: _types_pb2.ServiceSpec
    registry_auth: _types_pb2.RegistryAuth
    no_resolve_image: bool
    def __init__(self, ref: _Optional[str] = ..., version: _Optional[int] = ..., spec: _Optional[_Union[_types_pb2.ServiceSpec, _Mapping]] = ..., registry_auth: _Optional[_Union[_types_pb2.RegistryAuth, _Mapping]] = ..., no_resolve_image: _Optional[bool] = ...) -> None: ...

class UpdateServiceResponse(_message.Message):
    __slots__ = ("service", "warnings")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveServiceRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class RemoveServiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackServiceRequest(_message.Message):
    __slots__ = ("ref", "version")
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ref: str
    version: int
    def __init__(self, ref: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RebalanceServiceRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class UpdateClusterRequest(_message.Message):
    __slots__ = ("version", "task_history_limit", "auto_rebalance")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    AUTO_REBALANCE_FIELD_NUMBER: _ClassVar[int]
    version: int
    task_history_limit: int
    auto_rebalance: bool
    def __init__(self, version: _Optional[int] = ..., task_history_limit: _Optional[int] = ..., auto_rebalance: _Optional[bool] = ...) -> None: ...

class UpdateClusterResponse(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: _objects_pb2.Cluster
    def __init__(self, cluster: _Optional[_Union[_objects_pb2.Cluster, _Mapping]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _objects_pb2.Task
    def __init__(self, task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("service_ids", "node_ids", "desired_states")
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATES_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[str]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    desired_states: _containers.RepeatedScalarFieldContainer[_types_pb2.TaskState]
    def __init__(self, service_ids: _Optional[_Iterable[str]] = ..., node_ids: _Optional[_Iterable[str]] = ..., desired_states: _Optional[_Iterable[_Union[_types_pb2.TaskState, str]]] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[_objects_pb2.Task, _Mapping]]] = ...) -> None: ...

class GetJoinTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetJoinTokensResponse(_message.Message):
    __slots__ = ("worker", "controller")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    worker: str
    controller: str
    def __init__(self, worker: _Optional[str] = ..., controller: _Optional[str] = ...) -> None: ...

class RotateJoinTokenRequest(_message.Message):
    __slots__ = ("role",)
    ROLE_FIELD_NUMBER: _ClassVar[int]
    role: str
    def __init__(self, role: _Optional[str] = ...) -> None: ...

class CreateFileRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _types_pb2.FileSpec
    def __init__(self, spec: _Optional[_Union[_types_pb2.FileSpec, _Mapping]] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class ListFilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveFileResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SecretResponse(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: _objects_pb2.Secret
    def __init__(self, secret: _Optional[_Union[_objects_pb2.Secret, _Mapping]] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Secret]
    def __init__(self, secrets: _Optional[_Iterable[_Union[_objects_pb2.Secret, _Mapping]]] = ...) -> None: ...

class ConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _objects_pb2.Config
    def __init__(self, config: _Optional[_Union[_objects_pb2.Config, _Mapping]] = ...) -> None: ...

class ListConfigsResponse(_message.Message):
    __slots__ = ("configs",)
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    configs: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Config]
    def __init__(self, configs: _Optional[_Iterable[_Union[_objects_pb2.Config, _Mapping]]] = ...) -> None: ...

class GetClusterInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ControllerInfo(_message.Message):
    __slots__ = ("id", "addr", "leader")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    id: str
    addr: str
    leader: bool
    def __init__(self, id: _Optional[str] = ..., addr: _Optional[str] = ..., leader: _Optional[bool] = ...) -> None: ...

class EtcdMemberInfo(_message.Message):
    __slots__ = ("name", "client_urls", "healthy", "leader", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_URLS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    client_urls: _containers.RepeatedScalarFieldContainer[str]
    healthy: bool
    leader: bool
    error: str
    def __init__(self, name: _Optional[str] = ..., client_urls: _Optional[_Iterable[str]] = ..., healthy: _Optional[bool] = ..., leader: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class GetClusterInfoResponse(_message.Message):
    __slots__ = ("cluster", "controllers", "etcd_endpoints", "etcd_members")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    CONTROLLERS_FIELD_NUMBER: _ClassVar[int]
    ETCD_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    ETCD_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    cluster: _objects_pb2.Cluster
    controllers: _containers.RepeatedCompositeFieldContainer[ControllerInfo]
    etcd_endpoints: _containers.RepeatedScalarFieldContainer[str]
    etcd_members: _containers.RepeatedCompositeFieldContainer[EtcdMemberInfo]
    def __init__(self, cluster: _Optional[_Union[_objects_pb2.Cluster, _Mapping]] = ..., controllers: _Optional[_Iterable[_Union[ControllerInfo, _Mapping]]] = ..., etcd_endpoints: _Optional[_Iterable[str]] = ..., etcd_members: _Optional[_Iterable[_Union[EtcdMemberInfo, _Mapping]]] = ...) -> None: ...

class ListTaskStatsRequest(_message.Message):
    __slots__ = ("service_ids", "node_ids")
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[str]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service_ids: _Optional[_Iterable[str]] = ..., node_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskStats(_message.Message):
    __slots__ = ("task_id", "service_id", "service_name", "slot", "node_id", "node_name", "cpu_cores", "cpu_seconds_total", "memory_bytes", "memory_limit_bytes", "network_rx_bytes", "network_tx_bytes", "pids")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    service_id: str
    service_name: str
    slot: int
    node_id: str
    node_name: str
    cpu_cores: float
    cpu_seconds_total: float
    memory_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    pids: int
    def __init__(self, task_id: _Optional[str] = ..., service_id: _Optional[str] = ..., service_name: _Optional[str] = ..., slot: _Optional[int] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., cpu_cores: _Optional[float] = ..., cpu_seconds_total: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., network_rx_bytes: _Optional[int] = ..., network_tx_bytes: _Optional[int] = ..., pids: _Optional[int] = ...) -> None: ...

class NodeStatsError(_message.Message):
    __slots__ = ("node_id", "node_name", "error")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    node_name: str
    error: str
    def __init__(self, node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ListTaskStatsResponse(_message.Message):
    __slots__ = ("stats", "errors")
    STATS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[TaskStats]
    errors: _containers.RepeatedCompositeFieldContainer[NodeStatsError]
    def __init__(self, stats: _Optional[_Iterable[_Union[TaskStats, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[NodeStatsError, _Mapping]]] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("service_ref", "task_ref", "follow", "tail", "since")
    SERVICE_REF_FIELD_NUMBER: _ClassVar[int]
    TASK_REF_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    service_ref: str
    task_ref: str
    follow: bool
    tail: int
    since: _timestamp_pb2.Timestamp
    def __init__(self, service_ref: _Optional[str] = ..., task_ref: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogMessage(_message.Message):
    __slots__ = ("task_id", "task_name", "node_id", "node_name", "timestamp", "stream", "data", "warning")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_name: str
    node_id: str
    node_name: str
    timestamp: _timestamp_pb2.Timestamp
    stream: _agent_pb2.LogLine.Stream
    data: bytes
    warning: str
    def __init__(self, task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[_Union[_agent_pb2.LogLine.Stream, str]] = ..., data: _Optional[bytes] = ..., warning: _Optional[str] = ...) -> None: ...

class EventsRequest(_message.Message):
    __slots__ = ("types", "since_revision")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[str]
    since_revision: int
    def __init__(self, types: _Optional[_Iterable[str]] = ..., since_revision: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("revision", "type", "action", "id", "name", "service", "task", "node")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    type: str
    action: str
    id: str
    name: str
    service: _objects_pb2.Service
    task: _objects_pb2.Task
    node: _objects_pb2.Node
    def __init__(self, revision: _Optional[int] = ..., type: _Optional[str] = ..., action: _Optional[str] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ..., node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ...) -> None: ...

class ListVolumesRequest(_message.Message):
    __slots__ = ("node_refs", "name")
    NODE_REFS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    node_refs: _containers.RepeatedScalarFieldContainer[str]
    name: str
    def __init__(self, node_refs: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ...) -> None: ...

class UnreachableNode(_message.Message):
    __slots__ = ("node_id", "node_name", "error")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    node_name: str
    error: str
    def __init__(self, node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ListVolumesResponse(_message.Message):
    __slots__ = ("volumes", "unreachable")
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Volume]
    unreachable: _containers.RepeatedCompositeFieldContainer[UnreachableNode]
    def __init__(self, volumes: _Optional[_Iterable[_Union[_types_pb2.Volume, _Mapping]]] = ..., unreachable: _Optional[_Iterable[_Union[UnreachableNode, _Mapping]]] = ...) -> None: ...

class RemoveVolumeRequest(_message.Message):
    __slots__ = ("name", "node_ref")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_REF_FIELD_NUMBER: _ClassVar[int]
    name: str
    node_ref: str
    def __init__(self, name: _Optional[str] = ..., node_ref: _Optional[str] = ...) -> None: ...

class RemoveVolumeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResolveImageRequest(_message.Message):
    __slots__ = ("image", "registry_auth")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_FIELD_NUMBER: _ClassVar[int]
    image: str
    registry_auth: _types_pb2.RegistryAuth
    def __init__(self, image: _Optional[str] = ..., registry_auth: _Optional[_Union[_types_pb2.RegistryAuth, _Mapping]] = ...) -> None: ...

class ResolveImageResponse(_message.Message):
    __slots__ = ("digest", "pinned", "media_type")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    digest: str
    pinned: str
    media_type: str
    def __init__(self, digest: _Optional[str] = ..., pinned: _Optional[str] = ..., media_type: _Optional[str] = ...) -> None: ...
