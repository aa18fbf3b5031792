"""shoal.errors: one status code per error class, and the way back from a code."""

from __future__ import annotations

import grpc
import pytest

from shoal import errors


def all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(all_subclasses(sub))
    return out


# Errors defined elsewhere (e.g. the etcd adapter's Compacted) refine these; only this module's count here.
CLASSES = [c for c in all_subclasses(errors.ShoalError) if c.__module__ == errors.__name__]
#: NotLeader shares UNAVAILABLE with its parent on purpose: the leader address tells them apart.
DISTINCT = [c for c in CLASSES if c is not errors.NotLeader]


def test_every_error_class_has_its_own_code() -> None:
    codes = [c.code for c in DISTINCT]
    assert len(set(codes)) == len(codes)
    assert grpc.StatusCode.INTERNAL not in codes
    assert grpc.StatusCode.OK not in codes
    assert errors.NotLeader.code == errors.Unavailable.code


def test_the_hierarchy_is_the_documented_one() -> None:
    assert {c.__name__ for c in CLASSES} == {
        "InvalidArgument",
        "NotFound",
        "AlreadyExists",
        "FailedPrecondition",
        "PermissionDenied",
        "Unauthenticated",
        "ResourceExhausted",
        "Conflict",
        "Unavailable",
        "NotLeader",
        "DeadlineExceeded",
    }
    assert issubclass(errors.NotLeader, errors.Unavailable)
    assert errors.ShoalError.code == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize("cls", DISTINCT, ids=lambda c: c.__name__)
def test_from_code_round_trips(cls: type[errors.ShoalError]) -> None:
    exc = cls(f'service "web": {cls.__name__}')
    back = errors.from_code(errors.code_of(exc), str(exc))
    assert type(back) is cls
    assert str(back) == str(exc)


def test_not_leader_round_trips_with_the_leader_address() -> None:
    exc = errors.NotLeader(leader="10.0.0.2:4240")
    assert errors.code_of(exc) == grpc.StatusCode.UNAVAILABLE
    back = errors.from_code(errors.code_of(exc), str(exc), leader=exc.leader)
    assert type(back) is errors.NotLeader
    assert back.leader == "10.0.0.2:4240"  # type: ignore[attr-defined]
    assert str(back) == "this controller is not the leader"


def test_unavailable_without_a_leader_stays_unavailable() -> None:
    assert type(errors.from_code(grpc.StatusCode.UNAVAILABLE, "etcd down")) is errors.Unavailable


@pytest.mark.parametrize("code", [grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED])
def test_unknown_codes_become_the_base_error(code: grpc.StatusCode) -> None:
    back = errors.from_code(code, "boom")
    assert type(back) is errors.ShoalError
    assert str(back) == "boom"
