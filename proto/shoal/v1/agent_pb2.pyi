import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskLogsRequest(_message.Message):
    __slots__ = ("task_id", "follow", "tail", "since")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    follow: bool
    tail: int
    since: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("task_id", "timestamp", "stream", "data")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STDOUT: _ClassVar[LogLine.Stream]
        STDERR: _ClassVar[LogLine.Stream]
    STDOUT: LogLine.Stream
    STDERR: LogLine.Stream
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    timestamp: _timestamp_pb2.Timestamp
    stream: LogLine.Stream
    data: bytes
    def __init__(self, task_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[_Union[LogLine.Stream, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class InspectTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class InspectTaskResponse(_message.Message):
    __slots__ = ("container_json",)
    CONTAINER_JSON_FIELD_NUMBER: _ClassVar[int]
    container_json: str
    def __init__(self, container_json: _Optional[str] = ...) -> None: ...

class ListNodeVolumesRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListNodeVolumesResponse(_message.Message):
    __slots__ = ("volumes",)
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Volume]
    def __init__(self, volumes: _Optional[_Iterable[_Union[_types_pb2.Volume, _Mapping]]] = ...) -> None: ...

class RemoveNodeVolumeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveNodeVolumeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
