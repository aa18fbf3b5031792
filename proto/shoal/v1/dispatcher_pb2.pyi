import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from shoal.v1 import objects_pb2 as _objects_pb2
from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionRequest(_message.Message):
    __slots__ = ("node_name", "description", "addr", "metrics_addr")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDR_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    description: _types_pb2.NodeDescription
    addr: str
    metrics_addr: str
    def __init__(self, node_name: _Optional[str] = ..., description: _Optional[_Union[_types_pb2.NodeDescription, _Mapping]] = ..., addr: _Optional[str] = ..., metrics_addr: _Optional[str] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("session_id", "node", "controllers", "heartbeat_period")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CONTROLLERS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    node: _objects_pb2.Node
    controllers: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_period: _duration_pb2.Duration
    def __init__(self, session_id: _Optional[str] = ..., node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ..., controllers: _Optional[_Iterable[str]] = ..., heartbeat_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: _duration_pb2.Duration
    def __init__(self, period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AssignmentsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class AssignmentChange(_message.Message):
    __slots__ = ("action", "task", "secret", "config", "registry_auth")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UPDATE: _ClassVar[AssignmentChange.Action]
        REMOVE: _ClassVar[AssignmentChange.Action]
    UPDATE: AssignmentChange.Action
    REMOVE: AssignmentChange.Action
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_FIELD_NUMBER: _ClassVar[int]
    action: AssignmentChange.Action
    task: _objects_pb2.Task
    secret: AssignedFile
    config: AssignedFile
    registry_auth: AssignedRegistryAuth
    def __init__(self, action: _Optional[_Union[AssignmentChange.Action, str]] = ..., task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ..., secret: _Optional[_Union[AssignedFile, _Mapping]] = ..., config: _Optional[_Union[AssignedFile, _Mapping]] = ..., registry_auth: _Optional[_Union[AssignedRegistryAuth, _Mapping]] = ...) -> None: ...

class AssignedRegistryAuth(_message.Message):
    __slots__ = ("id", "auth")
    ID_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    id: str
    auth: _types_pb2.RegistryAuth
    def __init__(self, id: _Optional[str] = ..., auth: _Optional[_Union[_types_pb2.RegistryAuth, _Mapping]] = ...) -> None: ...

class AssignedFile(_message.Message):
    __slots__ = ("id", "name", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    data: bytes
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class AssignmentsMessage(_message.Message):
    __slots__ = ("type", "applies_to", "results_in", "changes")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COMPLETE: _ClassVar[AssignmentsMessage.Type]
        INCREMENTAL: _ClassVar[AssignmentsMessage.Type]
    COMPLETE: AssignmentsMessage.Type
    INCREMENTAL: AssignmentsMessage.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    APPLIES_TO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_IN_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    type: AssignmentsMessage.Type
    applies_to: int
    results_in: int
    changes: _containers.RepeatedCompositeFieldContainer[AssignmentChange]
    def __init__(self, type: _Optional[_Union[AssignmentsMessage.Type, str]] = ..., applies_to: _Optional[int] = ..., results_in: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[AssignmentChange, _Mapping]]] = ...) -> None: ...

class TaskStatusUpdate(_message.Message):
    __slots__ = ("task_id", "status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: _types_pb2.TaskStatus
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class UpdateTaskStatusRequest(_message.Message):
    __slots__ = ("session_id", "updates")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    updates: _containers.RepeatedCompositeFieldContainer[TaskStatusUpdate]
    def __init__(self, session_id: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[TaskStatusUpdate, _Mapping]]] = ...) -> None: ...

class UpdateTaskStatusResponse(_message.Message):
    __slots__ = ("heartbeat_period",)
    HEARTBEAT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    heartbeat_period: _duration_pb2.Duration
    def __init__(self, heartbeat_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("heartbeat", "statuses")
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    heartbeat: HeartbeatRequest
    statuses: UpdateTaskStatusRequest
    def __init__(self, heartbeat: _Optional[_Union[HeartbeatRequest, _Mapping]] = ..., statuses: _Optional[_Union[UpdateTaskStatusRequest, _Mapping]] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("heartbeat", "statuses", "refused")
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    heartbeat: HeartbeatResponse
    statuses: UpdateTaskStatusResponse
    refused: str
    def __init__(self, heartbeat: _Optional[_Union[HeartbeatResponse, _Mapping]] = ..., statuses: _Optional[_Union[UpdateTaskStatusResponse, _Mapping]] = ..., refused: _Optional[str] = ...) -> None: ...
