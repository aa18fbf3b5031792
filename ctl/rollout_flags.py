"""Service flags for rollouts and health: `--update-*`, `--rollback-*`, `--restart-window`, `--health-*`.

`options` adds them to `service create` and `service update` (through
`spec.task_options`); `apply` writes the given ones into a spec, like the
rest of `spec.apply`: a flag that was not given leaves its field alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal import errors, units
from shoal.ctl import options
from shoal.v1 import types_pb2

F = TypeVar("F", bound=Callable[..., Any])

FAILURE_ACTIONS = {
    "pause": types_pb2.UpdateConfig.PAUSE,
    "continue": types_pb2.UpdateConfig.CONTINUE,
    "rollback": types_pb2.UpdateConfig.ROLLBACK,
}
ORDERS = {"stop-first": types_pb2.UpdateConfig.STOP_FIRST, "start-first": types_pb2.UpdateConfig.START_FIRST}

#: The SpecChanges fields these flags fill.
FIELDS = (
    "update_order",
    "update_monitor",
    "update_failure_action",
    "update_max_failure_ratio",
    "rollback_parallelism",
    "rollback_delay",
    "rollback_order",
    "rollback_monitor",
    "rollback_failure_action",
    "rollback_max_failure_ratio",
    "restart_window",
    "health_cmd",
    "health_interval",
    "health_timeout",
    "health_retries",
    "health_start_period",
    "no_healthcheck",
)


def options_(fn: F) -> F:
    """Add the rollout and health flags to a command."""
    decorators = [
        click.option(
            "--update-order",
            type=click.Choice(list(ORDERS)),
            help="Stop the old task first, or start the new one first [default: stop-first].",
        ),
        click.option(
            "--update-monitor",
            type=options.DURATION,
            help="How long a new task must run without failing (and within which it must start) [default: 5s].",
        ),
        click.option(
            "--update-failure-action",
            type=click.Choice(list(FAILURE_ACTIONS)),
            help="What a failed update does [default: pause].",
        ),
        click.option(
            "--update-max-failure-ratio",
            type=click.FloatRange(0, 1),
            help="Fraction of tasks that may fail before the failure action [default: 0].",
        ),
        click.option("--rollback-parallelism", type=int, help="Tasks rolled back at once (0: all) [default: 1]."),
        click.option("--rollback-delay", type=options.DURATION, help="Delay between rollback batches."),
        click.option("--rollback-order", type=click.Choice(list(ORDERS)), help="Order of a rollback's replacements."),
        click.option("--rollback-monitor", type=options.DURATION, help="Monitor window of a rollback [default: 5s]."),
        click.option(
            "--rollback-failure-action",
            type=click.Choice(["pause", "continue"]),
            help="What a failed rollback does [default: pause]; a rollback is never rolled back.",
        ),
        click.option(
            "--rollback-max-failure-ratio", type=click.FloatRange(0, 1), help="Failures a rollback tolerates."
        ),
        click.option(
            "--restart-window",
            type=options.DURATION,
            help="Window in which --restart-max-attempts are counted (0: ever) [default: 0s].",
        ),
        click.option("--health-cmd", metavar="COMMAND", help="Health check run in the container by its shell."),
        click.option("--health-interval", type=options.DURATION, help="Time between health checks [default: 30s]."),
        click.option("--health-timeout", type=options.DURATION, help="Time a health check may take [default: 30s]."),
        click.option("--health-retries", type=int, help="Failed checks in a row that make a task unhealthy."),
        click.option(
            "--health-start-period",
            type=options.DURATION,
            help="Time after the start during which failed checks do not count.",
        ),
        click.option("--no-healthcheck", is_flag=True, default=None, help="Disable the image's health check."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def apply(spec: types_pb2.ServiceSpec, changes: Any) -> None:
    """Write the given rollout, restart-window and health flags of `changes` (a SpecChanges) into `spec`."""
    _config(spec.update, "update", changes)
    _config(spec.rollback, "rollback", changes)
    if changes.restart_window is not None:
        spec.task.restart.window.CopyFrom(units.to_duration(changes.restart_window))
    _health(spec.task.container, changes)


def _config(cfg: types_pb2.UpdateConfig, prefix: str, changes: Any) -> None:
    def given(name: str) -> Any:
        return getattr(changes, f"{prefix}_{name}", None)

    if given("parallelism") is not None and prefix == "rollback":
        if changes.rollback_parallelism < 0:
            raise errors.InvalidArgument("rollback-parallelism must be >= 0")
        cfg.parallelism = changes.rollback_parallelism
    if given("delay") is not None and prefix == "rollback":
        cfg.delay.CopyFrom(units.to_duration(changes.rollback_delay))
    if given("order") is not None:
        cfg.order = ORDERS[given("order")]
    if given("monitor") is not None:
        cfg.monitor.CopyFrom(units.to_duration(given("monitor")))
    if given("failure_action") is not None:
        cfg.failure_action = FAILURE_ACTIONS[given("failure_action")]
    if given("max_failure_ratio") is not None:
        cfg.max_failure_ratio = given("max_failure_ratio")


def _health(container: types_pb2.ContainerSpec, changes: Any) -> None:
    timings = (changes.health_interval, changes.health_timeout, changes.health_retries, changes.health_start_period)
    if changes.no_healthcheck:
        if changes.health_cmd is not None or any(v is not None for v in timings):
            raise errors.InvalidArgument("--no-healthcheck conflicts with the --health-* flags")
        container.healthcheck.Clear()
        container.healthcheck.test.append("NONE")
        return
    hc = container.healthcheck
    if changes.health_cmd is not None or any(v is not None for v in timings):
        hc.SetInParent()
        if list(hc.test) == ["NONE"]:
            del hc.test[:]
    if changes.health_cmd is not None:
        del hc.test[:]
        if changes.health_cmd:
            hc.test.extend(["CMD-SHELL", changes.health_cmd])
    for name in ("interval", "timeout", "start_period"):
        value = getattr(changes, f"health_{name}")
        if value is not None:
            getattr(hc, name).CopyFrom(units.to_duration(value))
    if changes.health_retries is not None:
        if changes.health_retries < 0:
            raise errors.InvalidArgument("health-retries must be >= 0")
        hc.retries = changes.health_retries
