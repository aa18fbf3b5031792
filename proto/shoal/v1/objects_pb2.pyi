import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Node(_message.Message):
    __slots__ = ("id", "meta", "name", "spec", "description", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    name: str
    spec: _types_pb2.NodeSpec
    description: _types_pb2.NodeDescription
    status: _types_pb2.NodeStatus
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[_types_pb2.NodeSpec, _Mapping]] = ..., description: _Optional[_Union[_types_pb2.NodeDescription, _Mapping]] = ..., status: _Optional[_Union[_types_pb2.NodeStatus, _Mapping]] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("id", "meta", "spec", "previous_spec", "spec_version", "update_status", "create_request_id", "previous_spec_version", "rebalanced_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    REBALANCED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    spec: _types_pb2.ServiceSpec
    previous_spec: _types_pb2.ServiceSpec
    spec_version: int
    update_status: _types_pb2.UpdateStatus
    create_request_id: str
    previous_spec_version: int
    rebalanced_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., spec: _Optional[_Union[_types_pb2.ServiceSpec, _Mapping]] = ..., previous_spec: _Optional[_Union[_types_pb2.ServiceSpec, _Mapping]] = ..., spec_version: _Optional[int] = ..., update_status: _Optional[_Union[_types_pb2.UpdateStatus, _Mapping]] = ..., create_request_id: _Optional[str] = ..., previous_spec_version: _Optional[int] = ..., rebalanced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "meta", "service_id", "service_name", "slot", "node_id", "spec", "spec_version", "desired_state", "status", "start_after", "origin")
    class Origin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SLOT: _ClassVar[Task.Origin]
        RESTART: _ClassVar[Task.Origin]
        UPDATE: _ClassVar[Task.Origin]
        MOVE: _ClassVar[Task.Origin]
    SLOT: Task.Origin
    RESTART: Task.Origin
    UPDATE: Task.Origin
    MOVE: Task.Origin
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    service_id: str
    service_name: str
    slot: int
    node_id: str
    spec: _types_pb2.TaskSpec
    spec_version: int
    desired_state: _types_pb2.TaskState
    status: _types_pb2.TaskStatus
    start_after: _timestamp_pb2.Timestamp
    origin: Task.Origin
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., service_id: _Optional[str] = ..., service_name: _Optional[str] = ..., slot: _Optional[int] = ..., node_id: _Optional[str] = ..., spec: _Optional[_Union[_types_pb2.TaskSpec, _Mapping]] = ..., spec_version: _Optional[int] = ..., desired_state: _Optional[_Union[_types_pb2.TaskState, str]] = ..., status: _Optional[_Union[_types_pb2.TaskStatus, _Mapping]] = ..., start_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[_Union[Task.Origin, str]] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("id", "meta", "task_history_limit", "removed_nodes", "node_cert_validity", "auto_rebalance")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    TASK_HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_NODES_FIELD_NUMBER: _ClassVar[int]
    NODE_CERT_VALIDITY_FIELD_NUMBER: _ClassVar[int]
    AUTO_REBALANCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    task_history_limit: int
    removed_nodes: _containers.RepeatedScalarFieldContainer[str]
    node_cert_validity: _duration_pb2.Duration
    auto_rebalance: bool
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., task_history_limit: _Optional[int] = ..., removed_nodes: _Optional[_Iterable[str]] = ..., node_cert_validity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., auto_rebalance: _Optional[bool] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("id", "meta", "spec", "sealed", "digest")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    spec: _types_pb2.FileSpec
    sealed: bytes
    digest: str
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., spec: _Optional[_Union[_types_pb2.FileSpec, _Mapping]] = ..., sealed: _Optional[bytes] = ..., digest: _Optional[str] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("id", "meta", "spec")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    spec: _types_pb2.FileSpec
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., spec: _Optional[_Union[_types_pb2.FileSpec, _Mapping]] = ...) -> None: ...

class CertificateAuthority(_message.Message):
    __slots__ = ("id", "meta", "root_cert_pem", "root_key_pem", "worker_token", "controller_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    ROOT_CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    ROOT_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    WORKER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    root_cert_pem: bytes
    root_key_pem: bytes
    worker_token: str
    controller_token: str
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., root_cert_pem: _Optional[bytes] = ..., root_key_pem: _Optional[bytes] = ..., worker_token: _Optional[str] = ..., controller_token: _Optional[str] = ...) -> None: ...

class RegistryCredential(_message.Message):
    __slots__ = ("id", "meta", "service_id", "registry", "sealed")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: _types_pb2.Meta
    service_id: str
    registry: str
    sealed: bytes
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[_types_pb2.Meta, _Mapping]] = ..., service_id: _Optional[str] = ..., registry: _Optional[str] = ..., sealed: _Optional[bytes] = ...) -> None: ...
