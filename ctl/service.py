"""`swarmctl service`: create, list, inspect, update, scale and remove services, and list their tasks.

Flags become a spec through `spec.py`; changes are read-modify-write with the
service's version (`update_service_spec`), retried when another writer got
there first. Rendering goes through `output.py`; task tables through `task.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import click

from shoal import errors, units
from shoal.ctl import client as client_
from shoal.ctl import (
    context,
    images,
    logs,
    modes,
    mountflags,
    network,
    network_flags,
    output,
    progress,
    rollout,
    spec,
    stats,
    task,
)
from shoal.v1 import control_pb2, objects_pb2, types_pb2

#: Re-reads after a version conflict (ABORTED) before giving up: another writer
#: (the orchestrator recording update progress, a second user) rarely wins more often.
CONFLICT_RETRIES = 3

SERVICE_HEADERS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "UPDATE")


@click.group("service")
def service_group() -> None:
    """Manage services."""


service_group.add_command(stats.service_stats)
service_group.add_command(logs.service_logs)
service_group.add_command(rollout.rollback)
service_group.add_command(rollout.rebalance)


@service_group.command("create", context_settings={"allow_interspersed_args": False})
@click.option("--name", required=True, help="Service name.")
@click.option("--image", required=True, help="Image the tasks run.")
@click.option(
    "--mode",
    type=click.Choice(list(modes.MODES)),
    default="replicated",
    show_default=True,
    help="Replicated (N tasks), global (one task per node), or a job run to completion: replicated-job, global-job.",
)
@spec.task_options
@rollout.wait_options
@click.argument("command", metavar="[-- COMMAND [ARG]...]", nargs=-1, type=click.UNPROCESSED)
@context.pass_globals
def create(
    g: context.Globals, /, name: str, mode: str, command: tuple[str, ...], detach: bool, quiet: bool, **flags: Any
) -> None:
    """Create a service; print its ID, then follow it until it converges (unless --detach).

    COMMAND and ARGs follow `--`.
    """
    changes = spec.SpecChanges.from_params({**flags, "command": command})
    service_spec = spec.new_spec(name, mode, changes)
    request_id = uuid.uuid4().hex
    extra = images.request_fields(service_spec.task.container.image, flags)
    reply = g.call(lambda c: c.create_service(service_spec, request_id, **extra))
    images.echo_warnings(reply.warnings)
    click.echo(reply.service.id)
    rollout.wait(g, reply.service.id, progress.CREATE, detach=detach, quiet=quiet)


@service_group.command("ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only service IDs.")
@context.pass_globals_and_format
def ls(g: context.Globals, quiet: bool) -> None:
    """List services."""
    reply = g.call(lambda c: c.list_services())
    services = sorted(reply.services, key=lambda s: s.spec.name)
    if quiet:
        output.echo_ids(s.id for s in services)
    elif g.json:
        output.echo_json(services)
    else:
        counts = {r.service_id: r for r in reply.replicas}
        output.echo_table(SERVICE_HEADERS, (service_row(s, counts.get(s.id)) for s in services))


@service_group.command("inspect")
@click.argument("refs", metavar="SERVICE...", nargs=-1, required=True)
@context.pass_globals_and_format
def inspect(g: context.Globals, refs: tuple[str, ...]) -> None:
    """Show services' details (name, ID or unique ID prefix)."""

    async def fetch(c: client_.ControlClient) -> tuple[list[objects_pb2.Service], dict[str, str]]:
        return [(await c.get_service(ref)).service for ref in refs], await network.names(c)

    services, network_names = g.call(fetch)
    if g.json:
        output.echo_json(services[0] if len(services) == 1 else services)
        return
    for i, svc in enumerate(services):
        if i:
            click.echo()
        output.echo_fields(service_fields(svc, network_names))


@service_group.command("ps")
@click.argument("ref", metavar="SERVICE")
@click.option("--quiet", "-q", is_flag=True, help="Print only task IDs.")
@click.option("--no-trunc", is_flag=True, help="Show errors in full.")
@context.pass_globals_and_format
def ps(g: context.Globals, ref: str, quiet: bool, no_trunc: bool) -> None:
    """List a service's tasks, finished ones included."""

    async def fetch(c: client_.ControlClient) -> tuple[list[objects_pb2.Task], dict[str, str]]:
        svc = (await c.get_service(ref)).service
        tasks, nodes = await asyncio.gather(c.list_tasks(service_ids=[svc.id]), c.list_nodes())
        for t in tasks.tasks:
            t.service_name = t.service_name or svc.spec.name
        return list(tasks.tasks), {n.id: n.name for n in nodes.nodes}

    tasks, node_names = g.call(fetch)
    task.echo_tasks(g, task.sort_tasks(tasks, node_names), node_names, quiet=quiet, no_trunc=no_trunc)


@service_group.command("update")
@click.argument("ref", metavar="SERVICE")
@spec.update_only_options
@spec.task_options
@rollout.wait_options
@click.argument("command", metavar="[-- COMMAND [ARG]...]", nargs=-1, type=click.UNPROCESSED)
@context.pass_globals
def update(
    g: context.Globals, /, ref: str, command: tuple[str, ...], detach: bool, quiet: bool, **flags: Any
) -> None:
    """Change a service (only the flags given change) and follow the update (unless --detach).

    A new COMMAND and ARGs follow `--`. Exits with status 1 if the update pauses or is rolled back.
    """
    changes = spec.SpecChanges.from_params({**flags, "command": command})
    if changes.network or changes.network_rm:
        # The stored spec names networks by ID: name the ones given the same way.
        found = g.call(lambda c: c.list_networks()).networks
        changes = network_flags.by_id(changes, {n.spec.name: n.id for n in found})
    warnings: list[str] = []
    svc = g.call(
        lambda c: update_service_spec(
            c,
            ref,
            lambda s: spec.apply(s.spec, changes),
            extra=lambda new: images.request_fields(new.task.container.image, flags),
            warnings=warnings,
        )
    )
    images.echo_warnings(warnings)
    click.echo(svc.id)
    rollout.wait(g, svc.id, progress.UPDATE, detach=detach, quiet=quiet)


@service_group.command("scale")
@click.argument(
    "targets",
    metavar="SERVICE=REPLICAS...",
    nargs=-1,
    required=True,
    callback=lambda ctx, param, values: [_scale_target(v, ctx, param) for v in values],
)
@context.pass_globals
def scale(g: context.Globals, targets: list[tuple[str, int]]) -> int:
    """Set the number of replicas of one or more services."""

    async def run(c: client_.ControlClient) -> int:
        failed = 0
        for ref, replicas in targets:
            try:
                svc = await update_service_spec(c, ref, _scaled_to(replicas))
            except errors.ShoalError as exc:
                failed += 1
                _warn(exc)
                continue
            click.echo(f"{svc.spec.name} scaled to {replicas}")
        return failed

    return 1 if g.call(run) else 0


@service_group.command("rm")
@click.argument("refs", metavar="SERVICE...", nargs=-1, required=True)
@context.pass_globals
def rm(g: context.Globals, refs: tuple[str, ...]) -> int:
    """Remove services; their tasks stop."""

    async def run(c: client_.ControlClient) -> int:
        failed = 0
        for ref in refs:
            try:
                svc = (await c.get_service(ref)).service
                await c.remove_service(svc.id)
            except errors.ShoalError as exc:
                failed += 1
                _warn(exc)
                continue
            click.echo(svc.spec.name)
        return failed

    return 1 if g.call(run) else 0


async def update_service_spec(
    c: client_.ControlClient,
    ref: str,
    change: Callable[[objects_pb2.Service], types_pb2.ServiceSpec],
    *,
    extra: Callable[[types_pb2.ServiceSpec], dict[str, Any]] | None = None,
    warnings: list[str] | None = None,
) -> objects_pb2.Service:
    """Read the service, change its spec and write it back at that version, re-reading on a conflict.

    `extra` gives the request's other fields for the new spec (registry credentials); the
    controller's warnings are added to `warnings`.
    """
    for attempt in range(CONFLICT_RETRIES + 1):
        svc = (await c.get_service(ref)).service
        new = change(svc)
        try:
            reply: control_pb2.UpdateServiceResponse = await c.update_service(
                svc.id, svc.meta.version, new, **(extra(new) if extra else {})
            )
        except errors.Conflict as exc:
            if attempt == CONFLICT_RETRIES:
                raise errors.Conflict(f"{exc} (gave up after {attempt + 1} attempts)") from exc
            continue
        if warnings is not None:
            warnings.extend(reply.warnings)
        return reply.service
    raise AssertionError("unreachable")


def service_mode(svc_spec: types_pb2.ServiceSpec) -> str:
    """The mode name: "replicated", "global", "replicated-job" or "global-job"."""
    return modes.mode_name(svc_spec)


def service_row(svc: objects_pb2.Service, counts: control_pb2.ServiceReplicas | None) -> list[str]:
    """One row under SERVICE_HEADERS."""
    replicas = modes.replicas_cell(svc.spec, counts)
    return [
        output.short_id(svc.id),
        svc.spec.name,
        service_mode(svc.spec),
        replicas,
        svc.spec.task.container.image,
        rollout.state_cell(svc),
    ]


def service_fields(svc: objects_pb2.Service, network_names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The key/value lines of `service inspect`."""
    s, t = svc.spec, svc.spec.task
    c = t.container
    fields = [("ID", svc.id), ("Name", s.name), ("Labels", output.mapping(s.labels) or "-")]
    fields += modes.mode_fields(s, svc.spec_version)
    fields += [
        *images.image_fields(c),
        ("Command", " ".join(c.command) or "-"),
        ("Args", " ".join(c.args) or "-"),
        ("Env", "\n".join(c.env) or "-"),
    ]
    for key, value in (
        ("Container labels", output.mapping(c.labels)),
        ("Workdir", c.workdir),
        ("User", c.user),
        ("Hostname", c.hostname),
    ):
        if value:
            fields.append((key, value))
    if c.mounts:
        fields.append(("Mounts", "\n".join(mountflags.describe(m) for m in c.mounts)))
    if c.HasField("stop_grace_period"):
        fields.append(("Stop grace period", units.format_duration(units.from_duration(c.stop_grace_period))))
    fields += [
        ("Constraints", "\n".join(t.placement.constraints) or "-"),
        *modes.placement_fields(s),
        ("Reservations", _resources(t.resources.reservations)),
        ("Limits", _resources(t.resources.limits)),
        ("Restart condition", output.enum_name(types_pb2.RestartPolicy.Condition, t.restart.condition)),
        ("Restart delay", _duration(t.restart, "delay")),
        ("Restart attempts", str(t.restart.max_attempts or "unlimited")),
        ("Restart window", _duration(t.restart, "window") if t.restart.HasField("window") else "unbounded"),
        *rollout.health_fields(c),
        *network.endpoint_fields(svc, network_names or {}),
        ("Update parallelism", str(s.update.parallelism or "all")),
        ("Update delay", _duration(s.update, "delay")),
        *rollout.config_fields("Update", s.update),
        *rollout.config_fields("Rollback", s.rollback),
        *rollout.status_fields(svc),
        ("Force update", str(t.force_update)),
        ("Created", output.since(svc.meta.created_at)),
        ("Updated", output.since(svc.meta.updated_at)),
        ("Version", str(svc.meta.version)),
        ("Spec version", str(svc.spec_version)),
    ]
    return fields


def _resources(res: types_pb2.Resources) -> str:
    parts = []
    if res.nano_cpus:
        parts.append(f"cpu={output.cpus(res.nano_cpus)}")
    if res.memory_bytes:
        parts.append(f"memory={output.size(res.memory_bytes)}")
    return " ".join(parts) or "-"


def _duration(msg: Any, field: str) -> str:
    if not msg.HasField(field):
        return "default"
    return units.format_duration(units.from_duration(getattr(msg, field)))


def _scaled_to(replicas: int) -> Callable[[objects_pb2.Service], types_pb2.ServiceSpec]:
    return lambda svc: spec.replicas_spec(svc.spec, replicas)


def _scale_target(value: str, ctx: click.Context, param: click.Parameter) -> tuple[str, int]:
    ref, sep, count = value.rpartition("=")
    try:
        replicas = int(count)
    except ValueError:
        replicas = None
    if not sep or not ref or replicas is None:
        raise click.BadParameter(f"{value!r} is not SERVICE=REPLICAS", ctx=ctx, param=param)
    return ref, replicas


def _warn(exc: errors.ShoalError) -> None:
    """Report one failure of a multi-object command and go on with the rest."""
    click.echo(f"swarmctl: {exc}", err=True)
