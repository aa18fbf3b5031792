"""Rollout pieces outside the plan: the rollback swap, restart windows, validation and defaults of the new settings."""

from __future__ import annotations

import pytest
from controller_fakes import NOW, make_service, make_task

from shoal import errors, states, units
from shoal.controller import rollout, validation
from shoal.controller.orchestrator import restart
from shoal.v1 import objects_pb2, types_pb2

Status = types_pb2.UpdateStatus
Config = types_pb2.UpdateConfig


def test_rolled_back_swaps_specs_and_versions_and_keeps_the_rollout_settings() -> None:
    svc = make_service(version=5, previous=True)
    svc.previous_spec_version = 3
    svc.spec.update.parallelism = 4
    svc.spec.rollback.order = Config.START_FIRST
    back = rollout.rolled_back(svc, now=NOW, message="rollback requested")
    assert back.spec.task == svc.previous_spec.task
    assert (back.spec_version, back.previous_spec_version) == (3, 5)
    assert back.previous_spec == svc.spec
    assert back.spec.update.parallelism == 4 and back.spec.rollback.order == Config.START_FIRST
    assert back.update_status.state == Status.ROLLBACK_STARTED
    assert rollout.effective_config(back) == back.spec.rollback
    again = rollout.rolled_back(back, now=NOW, message="rollback requested")
    assert (again.spec.task, again.spec_version) == (svc.spec.task, 5)


def test_next_spec_version_is_never_one_used_before() -> None:
    svc = make_service(version=3)
    svc.previous_spec_version = 9
    assert rollout.next_spec_version(svc, [make_task(svc, 1, version=12)]) == 13
    assert rollout.next_spec_version(svc, []) == 10


def _failed(svc: objects_pb2.Service, at: float) -> objects_pb2.Task:
    return make_task(svc, 1, state=states.FAILED, desired=states.SHUTDOWN, created=at - 1, status_at=at)


def test_the_restart_window_counts_only_recent_attempts() -> None:
    svc = make_service(replicas=1)
    svc.spec.task.restart.max_attempts = 1
    svc.spec.task.restart.window.CopyFrom(units.to_duration(10))
    old = _failed(svc, NOW - 30)
    current = make_task(svc, 1, state=states.FAILED, created=NOW - 2, status_at=NOW)
    assert restart.should_restart(current, [old, current], NOW)  # the old attempt is out of the window
    recent = _failed(svc, NOW - 5)
    assert not restart.should_restart(current, [recent, current], NOW)


def test_attempts_before_the_spec_version_became_current_do_not_count() -> None:
    svc = make_service(replicas=1)
    svc.spec.task.restart.max_attempts = 1
    earlier = _failed(svc, NOW - 300)  # same version, before a rollback brought it back
    current = make_task(svc, 1, state=states.FAILED, created=NOW - 2, status_at=NOW)
    assert not restart.should_restart(current, [earlier, current], NOW)
    assert restart.should_restart(current, [earlier, current], NOW, since=NOW - 100)


def _spec() -> types_pb2.ServiceSpec:
    s = types_pb2.ServiceSpec(name="web")
    s.replicated.replicas = 1
    s.task.container.image = "busybox"
    return s


def test_defaults_fill_the_monitor_windows_and_keep_parallelism_one() -> None:
    s = _spec()
    validation.apply_defaults(s)
    assert units.from_duration(s.update.monitor) == units.from_duration(s.rollback.monitor) == 5.0
    assert (s.update.parallelism, s.rollback.parallelism) == (1, 1)
    zero = _spec()
    zero.update.monitor.CopyFrom(units.to_duration(0))
    validation.apply_defaults(zero)
    assert units.from_duration(zero.update.monitor) == 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: setattr(s.rollback, "failure_action", Config.ROLLBACK), "rollback failure action must be pause"),
        (lambda s: setattr(s.update, "failure_action", 9), "unknown update failure action"),
        (lambda s: setattr(s.update, "order", 5), "unknown update order"),
        (lambda s: s.task.container.healthcheck.test.extend(["SHELL", "x"]), "health check test must be"),
        (lambda s: s.task.container.healthcheck.test.extend(["NONE", "x"]), "health check test must be"),
        (lambda s: s.task.container.healthcheck.test.extend(["CMD"]), "health check test must be"),
        (
            lambda s: s.task.container.healthcheck.interval.CopyFrom(units.to_duration(0.0001)),
            "health check interval must be 0 or at least 1ms",
        ),
        (lambda s: setattr(s.task.restart, "condition", 7), "unknown restart condition"),
    ],
)
def test_bad_rollout_and_health_settings_are_refused(change, match: str) -> None:  # type: ignore[no-untyped-def]
    s = _spec()
    change(s)
    with pytest.raises(errors.InvalidArgument, match=match):
        validation.check_service_spec(s)


@pytest.mark.parametrize("test", [["NONE"], ["CMD", "true"], ["CMD-SHELL", "wget -q -O- localhost"], []])
def test_good_health_checks_pass(test: list[str]) -> None:
    s = _spec()
    s.task.container.healthcheck.test.extend(test)
    s.task.container.healthcheck.interval.CopyFrom(units.to_duration(1))
    s.task.container.healthcheck.retries = 2
    validation.check_service_spec(s)
