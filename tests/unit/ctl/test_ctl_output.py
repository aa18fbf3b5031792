"""Pure pieces of swarmctl: tables, times, host lists and spec merging."""

from __future__ import annotations

import datetime

import pytest
from ctl_fakes import ts

from shoal import errors
from shoal.ctl import context, output, spec
from shoal.v1 import types_pb2

NOW = datetime.datetime.fromtimestamp(10_000, datetime.UTC)


def test_table_aligns_columns_under_an_upper_case_header() -> None:
    text = output.format_table(["id", "name", "image"], [["a1", "web", "busybox"], ["b2222", "api-server", ""]])

    assert text == (
        "ID      NAME         IMAGE\n"
        "a1      web          busybox\n"
        "b2222   api-server\n"
    )  # fmt: skip


def test_table_with_no_rows_is_the_header() -> None:
    assert output.format_table(["ID", "NAME"], []) == "ID   NAME\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "Less than a second"),
        (1, "1 second"),
        (5, "5 seconds"),
        (65, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (15 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert output.human_duration(seconds) == text


def test_relative_time() -> None:
    assert output.relative_time(ts(10_000 - 5), NOW) == "5 seconds ago"
    assert output.relative_time(ts(10_000 - 120), NOW) == "2 minutes ago"
    assert output.relative_time(ts(0), NOW) == ""
    assert output.since(ts(10_000 - 5), NOW) == "1970-01-01T02:46:35Z (5 seconds ago)"
    assert output.since(ts(0), NOW) == "-"


def test_truncate() -> None:
    assert output.truncate("short") == "short"
    assert output.truncate("a\nb") == "a b"
    long = output.truncate("x" * 100)
    assert len(long) == output.ERROR_WIDTH and long.endswith("...")


def test_current_state_capitalises() -> None:
    from shoal.ctl import task

    status = types_pb2.TaskStatus(state=types_pb2.RUNNING, timestamp=ts(10_000 - 5))
    assert task.current_state(status, NOW) == "Running 5 seconds ago"
    assert task.current_state(types_pb2.TaskStatus(state=types_pb2.PENDING), NOW) == "Pending"


@pytest.mark.parametrize(
    ("values", "hosts"),
    [
        ((), ("127.0.0.1:4240",)),
        (("a:1",), ("a:1",)),
        (("a:1,b:2", "c:3"), ("a:1", "b:2", "c:3")),
        (("a:1 b:2",), ("a:1", "b:2")),  # SWARMCTL_HOST may separate with spaces
        (("ctl1",), ("ctl1:4240",)),
        (("tcp://ctl1:99",), ("ctl1:99",)),
        (("[::1]", "[::1]:5"), ("[::1]:4240", "[::1]:5")),
        (("a:1", "a:1"), ("a:1",)),
    ],
)
def test_parse_hosts(values: tuple[str, ...], hosts: tuple[str, ...]) -> None:
    assert context.parse_hosts(values) == hosts


def _base() -> types_pb2.ServiceSpec:
    base = types_pb2.ServiceSpec(name="web")
    base.replicated.replicas = 2
    base.task.container.image = "busybox"
    base.task.container.env.extend(["A=1", "B=2"])
    base.task.restart.condition = types_pb2.RestartPolicy.ON_FAILURE
    return base


def test_apply_without_changes_is_an_equal_copy() -> None:
    base = _base()

    out = spec.apply(base, spec.SpecChanges())

    assert out == base and out is not base
    assert out.task.ListFields() == base.task.ListFields()


def test_apply_leaves_the_original_alone() -> None:
    base = _base()

    spec.apply(base, spec.SpecChanges(env=(("A", "9"),), force=True))

    assert list(base.task.container.env) == ["A=1", "B=2"]
    assert base.task.force_update == 0


def test_apply_env_key_given_twice_keeps_the_last() -> None:
    out = spec.apply(_base(), spec.SpecChanges(env=(("C", "1"), ("C", "2"))))

    assert list(out.task.container.env) == ["A=1", "B=2", "C=2"]


def test_apply_restart_delay_keeps_the_condition() -> None:
    out = spec.apply(_base(), spec.SpecChanges(restart_delay=2.5))

    assert out.task.restart.condition == types_pb2.RestartPolicy.ON_FAILURE
    assert out.task.restart.delay.ToNanoseconds() == 2_500_000_000


def test_new_global_spec_rejects_replicas() -> None:
    with pytest.raises(errors.InvalidArgument):
        spec.new_spec("agent", "global", spec.SpecChanges(image="x", replicas=2))


def test_replicas_of_a_global_service_are_refused() -> None:
    global_spec = spec.new_spec("agent", "global", spec.SpecChanges(image="x"))

    with pytest.raises(errors.InvalidArgument, match="global"):
        spec.replicas_spec(global_spec, 3)


def test_apply_env_replaces_in_place_and_rm_then_set_keeps_the_new_value() -> None:
    base = _base()
    base.task.container.env.extend(["A=dup", "PATH=/bin"])

    out = spec.apply(base, spec.SpecChanges(env=(("A", "9"), ("B", "8")), env_rm=("A", "PATH")))

    assert list(out.task.container.env) == ["A=9", "B=8"]
