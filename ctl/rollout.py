"""`swarmctl service rollback` and `service rebalance`, and the waiting that create and update share.

Every command that starts a rollout prints the service ID on stdout, then
follows it (`progress.follow`) unless `--detach`: the exit status is 1 if
the rollout pauses or an update is rolled back. How a service's rollout
settings and state are shown in `service inspect` and `service ls` is here too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal import units
from shoal.ctl import context, output, progress
from shoal.v1 import objects_pb2, types_pb2

F = TypeVar("F", bound=Callable[..., Any])

UpdateStatus = types_pb2.UpdateStatus
UpdateConfig = types_pb2.UpdateConfig


def wait_options(fn: F) -> F:
    """`--detach` and `--quiet` of the commands that follow a rollout."""
    fn = click.option("--quiet", "-q", is_flag=True, help="Follow without printing progress.")(fn)
    return click.option(
        "--detach", "-d", is_flag=True, help="Return at once instead of following the service until it converges."
    )(fn)


def wait(g: context.Globals, service_id: str, kind: str, *, detach: bool, quiet: bool) -> None:
    """Follow the service (progress on stderr) unless `detach`; ShoalError (exit 1) if the rollout fails."""
    if detach:
        return
    sys.stdout.flush()  # the ID first, for a reader of the pipe
    g.call(lambda c: progress.follow(c, service_id, kind, quiet=quiet))


@click.command("rollback")
@click.argument("ref", metavar="SERVICE")
@wait_options
@context.pass_globals
def rollback(g: context.Globals, ref: str, detach: bool, quiet: bool) -> None:
    """Restore the service's previous spec, with its rollback settings, and follow it (unless --detach)."""
    reply = g.call(lambda c: c.rollback_service(ref))
    click.echo(reply.service.id)
    wait(g, reply.service.id, progress.ROLLBACK, detach=detach, quiet=quiet)


@click.command("rebalance")
@click.argument("ref", metavar="SERVICE")
@wait_options
@context.pass_globals
def rebalance(g: context.Globals, ref: str, detach: bool, quiet: bool) -> None:
    """Move a replicated service's tasks towards an even spread over its nodes, a few at a time.

    Moves use the update settings (parallelism, delay, monitor, failure
    action) and start the new task before the old one stops.
    """
    reply = g.call(lambda c: c.rebalance_service(ref))
    click.echo(reply.service.id)
    wait(g, reply.service.id, progress.REBALANCE, detach=detach, quiet=quiet)


# ---- how rollouts are shown -------------------------------------------------------


def state_cell(svc: objects_pb2.Service, width: int = 50) -> str:
    """The UPDATE column of `service ls`: the state, and the reason when it needs attention."""
    status = svc.update_status
    if status.state == UpdateStatus.UNKNOWN:
        return ""
    name = UpdateStatus.State.Name(status.state)
    if status.state in (UpdateStatus.PAUSED, UpdateStatus.ROLLBACK_PAUSED, UpdateStatus.REBALANCE_PAUSED) or (
        status.state in (UpdateStatus.ROLLBACK_STARTED, UpdateStatus.ROLLBACK_COMPLETED)
        and ":" in status.message
    ):
        return output.truncate(f"{name} ({status.message})", width)
    return name


def config_fields(label: str, cfg: types_pb2.UpdateConfig) -> list[tuple[str, str]]:
    """The lines `service inspect` shows for the update or the rollback settings."""
    monitor = units.from_duration(cfg.monitor) if cfg.HasField("monitor") else progress.DEFAULT_VERIFY
    return [
        (
            f"{label} config",
            f"parallelism {cfg.parallelism or 'all'}, delay {_seconds(units.from_duration(cfg.delay))}, "
            f"order {output.enum_name(UpdateConfig.Order, cfg.order).lower().replace('_', '-')}, "
            f"monitor {_seconds(monitor)}, "
            f"on failure {output.enum_name(UpdateConfig.FailureAction, cfg.failure_action).lower()}, "
            f"max failure ratio {cfg.max_failure_ratio:g}",
        )
    ]


def health_fields(container: types_pb2.ContainerSpec) -> list[tuple[str, str]]:
    """The health check line of `service inspect`."""
    if not container.HasField("healthcheck"):
        return [("Health check", "the image's, if any")]
    hc = container.healthcheck
    test = list(hc.test)
    if test == ["NONE"]:
        return [("Health check", "disabled")]
    words = [" ".join(test[1:]) if test else "the image's command"]
    for name in ("interval", "timeout", "start_period"):
        if hc.HasField(name):
            words.append(f"{name.replace('_', ' ')} {_seconds(units.from_duration(getattr(hc, name)))}")
    if hc.retries:
        words.append(f"retries {hc.retries}")
    return [("Health check", ", ".join(words))]


def status_fields(svc: objects_pb2.Service) -> list[tuple[str, str]]:
    """The rollout state of `service inspect`: state, when, why, failed tasks."""
    status = svc.update_status
    if status.state == UpdateStatus.UNKNOWN:
        return [("Update status", "-")]
    words = [UpdateStatus.State.Name(status.state)]
    started = output.relative_time(status.started_at)
    if started:
        words.append(f"(started {started})")
    fields = [("Update status", " ".join(words))]
    if status.message:
        fields.append(("Update message", status.message))
    if status.failed_tasks:
        shown = ", ".join(output.short_id(t) for t in status.failed_tasks[:10])
        more = f" and {len(status.failed_tasks) - 10} more" if len(status.failed_tasks) > 10 else ""
        fields.append(("Failed tasks", shown + more))
    return fields


def _seconds(value: float) -> str:
    return units.format_duration(value) if value else "0s"
