"""Shoal's error hierarchy and its one mapping to gRPC status codes.

    ShoalError                 INTERNAL (base; never raised itself)
      InvalidArgument          INVALID_ARGUMENT     bad spec or flag; nothing written
      NotFound                 NOT_FOUND
      AlreadyExists            ALREADY_EXISTS       name taken
      FailedPrecondition       FAILED_PRECONDITION  e.g. removing a node that is READY
      PermissionDenied         PERMISSION_DENIED    a node reporting on another's task
      Unauthenticated          UNAUTHENTICATED      no (valid) client certificate
      ResourceExhausted        RESOURCE_EXHAUSTED   rate limits, size limits
      Conflict                 ABORTED              version compare failed: re-read, retry
      Unavailable              UNAVAILABLE          etcd or the leader unreachable
        NotLeader              UNAVAILABLE          this controller is not the leader
      DeadlineExceeded         DEADLINE_EXCEEDED

Store, control loops and validation raise these, never gRPC errors. The
controller's API layer turns them into status codes (`code_of`), and clients
turn status codes back into them (`from_code`), so both ends speak one language.
"""

from __future__ import annotations

import grpc

#: gRPC trailing-metadata key that carries the leader's address on NotLeader.
LEADER_METADATA_KEY = "shoal-leader"


class ShoalError(Exception):
    """Base of every error Shoal raises on purpose."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(ShoalError):
    """The request is malformed; nothing was written."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ShoalError):
    """The object does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ShoalError):
    """An object with that name or ID already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ShoalError):
    """The object is not in a state that allows the operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(ShoalError):
    """The caller may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ShoalError):
    """The caller did not prove who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(ShoalError):
    """Too many requests or too much data; slow down."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Conflict(ShoalError):
    """The object changed since the caller read it; re-read and retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(ShoalError):
    """A dependency (etcd, the leader) cannot be reached; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class NotLeader(Unavailable):
    """This controller is not the leader; `leader` is its address, if known."""

    def __init__(self, message: str = "this controller is not the leader", leader: str = "") -> None:
        super().__init__(message)
        self.leader = leader


class DeadlineExceeded(ShoalError):
    """The operation did not finish within its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


# Most specific first: NotLeader must win over Unavailable on the way back.
_BY_CODE: dict[grpc.StatusCode, type[ShoalError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Conflict,
        Unavailable,
        DeadlineExceeded,
    )
}


def code_of(exc: ShoalError) -> grpc.StatusCode:
    """The gRPC status code that reports `exc`."""
    return exc.code


def from_code(code: grpc.StatusCode, message: str, leader: str = "") -> ShoalError:
    """The ShoalError for a status code a server returned."""
    if code == grpc.StatusCode.UNAVAILABLE and leader:
        return NotLeader(message, leader=leader)
    return _BY_CODE.get(code, ShoalError)(message)


def first_leaf(group: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: the one reason to report."""
    exc = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
