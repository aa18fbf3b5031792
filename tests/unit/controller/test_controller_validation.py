"""Spec validation (InvalidArgument naming the field) and defaults."""

from __future__ import annotations

import pytest

from shoal import errors, units
from shoal.controller import validation
from shoal.v1 import types_pb2


def spec(**changes: object) -> types_pb2.ServiceSpec:
    s = types_pb2.ServiceSpec(name="web")
    s.replicated.replicas = 2
    s.task.container.image = "busybox:1.36"
    s.task.container.env.extend(["A=1", "B="])
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = s
        for p in parents:
            target = getattr(target, p)
        setattr(target, leaf, value)
    return s


def refused(s: types_pb2.ServiceSpec, match: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=match):
        validation.check_service_spec(s)


def test_a_plain_spec_is_valid() -> None:
    validation.check_service_spec(spec())


@pytest.mark.parametrize("name", ["a", "web", "web-1", "1web", "a" * 63, "a-b-c9"])
def test_good_names(name: str) -> None:
    validation.check_name("service", name)


@pytest.mark.parametrize("name", ["a" * 64, "Web", "-web", "web-", "web_1", "web.1", "wéb", "web 1"])
def test_names_follow_dns_label_rules(name: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="is invalid"):
        validation.check_name("service", name)


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="is invalid"):
        validation.check_name("service", "web\n")


def test_a_label_key_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid label key"):
        validation.check_labels("node", {"zone\n": "a"})


def test_an_empty_name_is_refused() -> None:
    refused(spec(name=""), "service name must not be empty")


def test_negative_replicas_are_refused_naming_the_service() -> None:
    refused(spec(replicated__replicas=-1), 'service "web": replicas must be >= 0')


def test_zero_replicas_are_fine_and_too_many_are_not() -> None:
    validation.check_service_spec(spec(replicated__replicas=0))
    refused(spec(replicated__replicas=validation.MAX_REPLICAS + 1), "replicas must be <=")


def test_global_mode_is_valid() -> None:
    s = spec()
    s.ClearField("replicated")
    getattr(s, "global").SetInParent()  # "global" is a Python keyword
    validation.check_service_spec(s)


@pytest.mark.parametrize("image", ["", "busy box", "a" * (validation.MAX_IMAGE + 1), "busybox\t"])
def test_bad_images_are_refused(image: str) -> None:
    refused(spec(task__container__image=image), "image")


@pytest.mark.parametrize("entry", ["=value", "", "\x00A=1"])
def test_bad_env_entries_are_refused(entry: str) -> None:
    s = spec()
    s.task.container.env.append(entry)
    refused(s, "invalid environment entry")


def test_an_env_value_with_a_nul_is_refused() -> None:
    """A NUL cannot reach a container's environment; like argv, refuse it before writing."""
    s = spec()
    s.task.container.env.append("A=x\x00y")
    refused(s, "environment")


def test_an_env_entry_without_a_value_passes() -> None:
    s = spec()
    s.task.container.env.append("PASSED_THROUGH")
    validation.check_service_spec(s)


def test_too_many_env_entries_are_refused() -> None:
    s = spec()
    s.task.container.env.extend(f"K{i}=v" for i in range(validation.MAX_ENV))
    refused(s, "at most 1024 environment variables")


def test_bad_constraints_are_refused_naming_the_service() -> None:
    s = spec()
    s.task.placement.constraints.append("zone==a")
    refused(s, r'service "web": constraint .*unknown key')


def test_too_many_constraints_are_refused() -> None:
    s = spec()
    s.task.placement.constraints.extend(["node.labels.a==1"] * (validation.MAX_CONSTRAINTS + 1))
    refused(s, "at most 64 constraints")


def test_argv_bounds_and_nul() -> None:
    s = spec()
    s.task.container.args.extend(["x"] * (validation.MAX_ARGV + 1))
    refused(s, "too long")
    s = spec()
    s.task.container.command.append("a\x00b")
    refused(s, "NUL")


def test_negative_resources_and_durations_are_refused() -> None:
    refused(spec(task__resources__reservations__memory_bytes=-1), "reservations must not be negative")
    refused(spec(task__resources__limits__nano_cpus=-1), "limits must not be negative")
    s = spec()
    s.task.restart.delay.FromSeconds(-1)
    refused(s, "restart delay")
    s = spec()
    s.update.delay.FromSeconds(-1)
    refused(s, "update delay")
    s = spec()
    s.task.container.stop_grace_period.FromSeconds(-1)
    refused(s, "stop grace period")


def test_failure_ratio_must_be_a_fraction() -> None:
    refused(spec(rollback__max_failure_ratio=1.5), "rollback max failure ratio")


def test_label_keys_and_counts_are_bounded() -> None:
    s = spec()
    s.labels["bad key"] = "x"
    refused(s, "invalid label key")
    s = spec()
    s.labels.update({f"k{i}": "v" for i in range(validation.MAX_LABELS + 1)})
    refused(s, "at most 256 labels")
    s = spec()
    s.task.container.labels["k"] = "x" * (validation.MAX_VALUE_BYTES + 1)
    refused(s, "longer than")


def test_node_spec_availability_must_be_known() -> None:
    validation.check_node_spec("n1", types_pb2.NodeSpec(availability=types_pb2.NodeSpec.DRAIN))
    with pytest.raises(errors.InvalidArgument, match='node "n1": unknown availability 7'):
        validation.check_node_spec("n1", types_pb2.NodeSpec(availability=7))  # type: ignore[arg-type]


def test_defaults_fill_what_was_left_unset() -> None:
    s = types_pb2.ServiceSpec(name="web")
    validation.apply_defaults(s)
    assert s.WhichOneof("mode") == "replicated"
    assert s.replicated.replicas == 1
    assert units.from_duration(s.task.restart.delay) == 5.0
    assert units.from_duration(s.task.container.stop_grace_period) == 10.0
    assert (s.update.parallelism, s.rollback.parallelism) == (1, 1)


def test_defaults_keep_what_was_set_even_when_zero() -> None:
    s = types_pb2.ServiceSpec(name="web")
    s.replicated.replicas = 0
    s.task.restart.delay.CopyFrom(units.to_duration(0))
    s.update.parallelism = 0
    s.update.delay.CopyFrom(units.to_duration(3))
    validation.apply_defaults(s)
    assert s.replicated.replicas == 0
    assert units.from_duration(s.task.restart.delay) == 0
    assert s.update.parallelism == 0
