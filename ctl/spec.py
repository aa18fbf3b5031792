"""Service spec flags shared by `service create` and `service update`, and how they change a spec.

`task_options` adds the flags both verbs take; `update_only_options` the
removals and `--force` that only make sense on an existing service. The verbs
collect the parsed values into a `SpecChanges` and call `new_spec` (create) or
`apply` (update on a copy of the spec read from the controller). Only a
flag that was given changes the spec; everything else is left to the
controller's defaults and validation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from shoal import errors, units
from shoal.ctl import modes, mountflags, network_flags, options, rollout_flags
from shoal.v1 import types_pb2

F = TypeVar("F", bound=Callable[..., Any])

_RESTART_CONDITIONS = {
    "any": types_pb2.RestartPolicy.ANY,
    "on-failure": types_pb2.RestartPolicy.ON_FAILURE,
    "none": types_pb2.RestartPolicy.NONE,
}


@dataclasses.dataclass(frozen=True)
class SpecChanges:
    """The spec flags as parsed: None or empty means "not given"."""

    image: str | None = None
    replicas: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    env_rm: tuple[str, ...] = ()
    label: tuple[tuple[str, str], ...] = ()
    label_rm: tuple[str, ...] = ()
    container_label: tuple[tuple[str, str], ...] = ()
    container_label_rm: tuple[str, ...] = ()
    constraint: tuple[str, ...] = ()
    constraint_rm: tuple[str, ...] = ()
    reserve_cpu: int | None = None
    reserve_memory: int | None = None
    limit_cpu: int | None = None
    limit_memory: int | None = None
    restart_condition: str | None = None
    restart_delay: float | None = None
    restart_max_attempts: int | None = None
    update_parallelism: int | None = None
    update_delay: float | None = None
    # Rollout, restart-window and health flags (ctl/rollout_flags.py).
    update_order: str | None = None
    update_monitor: float | None = None
    update_failure_action: str | None = None
    update_max_failure_ratio: float | None = None
    rollback_parallelism: int | None = None
    rollback_delay: float | None = None
    rollback_order: str | None = None
    rollback_monitor: float | None = None
    rollback_failure_action: str | None = None
    rollback_max_failure_ratio: float | None = None
    restart_window: float | None = None
    health_cmd: str | None = None
    health_interval: float | None = None
    health_timeout: float | None = None
    health_retries: int | None = None
    health_start_period: float | None = None
    no_healthcheck: bool | None = None
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    stop_grace_period: float | None = None
    command: tuple[str, ...] = ()
    force: bool = False
    secret: tuple[types_pb2.FileReference, ...] = ()
    secret_rm: tuple[str, ...] = ()
    config: tuple[types_pb2.FileReference, ...] = ()
    config_rm: tuple[str, ...] = ()
    # Network flags (ctl/network_flags.py): `publish` holds (mode, PortConfig) pairs.
    publish: tuple[tuple[str, types_pb2.PortConfig], ...] = ()
    publish_rm: tuple[str, ...] = ()
    network: tuple[types_pb2.NetworkAttachmentConfig, ...] = ()
    network_rm: tuple[str, ...] = ()
    endpoint_mode: str | None = None
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    max_concurrent: int | None = None
    placement_pref: tuple[str, ...] = ()
    placement_pref_rm: tuple[str, ...] = ()
    replicas_max_per_node: int | None = None
    # Storage (ctl/mountflags.py).
    mount: tuple[types_pb2.Mount, ...] = ()
    mount_rm: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SpecChanges:
        """Pick this class's fields out of a command's keyword arguments."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def task_options(fn: F) -> F:
    """The spec flags `service create` and `service update` share."""
    decorators = [
        click.option("--replicas", type=int, help="Number of tasks (replicated services); completions (jobs)."),
        click.option(
            "--max-concurrent", type=int, help="Tasks of a replicated job run at once [default: --replicas]."
        ),
        click.option(
            "--replicas-max-per-node", type=int, help="Tasks of the service one node may run at once (0: no limit)."
        ),
        click.option(
            "--placement-pref",
            metavar="spread=node.labels.KEY",
            multiple=True,
            help="Spread tasks evenly over the values of a node label (repeatable, nested in order).",
        ),
        click.option(
            "--env",
            "-e",
            type=options.KEY_VALUE,
            multiple=True,
            help="Set an environment variable (repeatable).",
        ),
        click.option(
            "--label", "-l", type=options.KEY_VALUE, multiple=True, help="Set a service label (repeatable)."
        ),
        click.option(
            "--container-label",
            type=options.KEY_VALUE,
            multiple=True,
            help="Set a container label (repeatable).",
        ),
        click.option(
            "--constraint",
            metavar="EXPR",
            multiple=True,
            help='Placement constraint such as "node.labels.zone==a" (repeatable).',
        ),
        click.option("--reserve-cpu", type=options.CPUS, help="CPUs reserved per task (e.g. 0.5)."),
        click.option("--reserve-memory", type=options.SIZE, help="Memory reserved per task (e.g. 256M)."),
        click.option("--limit-cpu", type=options.CPUS, help="CPU limit per task."),
        click.option("--limit-memory", type=options.SIZE, help="Memory limit per task."),
        click.option(
            "--restart-condition",
            type=click.Choice(sorted(_RESTART_CONDITIONS)),
            help="When to replace a finished task.",
        ),
        click.option("--restart-delay", type=options.DURATION, help="Delay before a replacement starts."),
        click.option("--restart-max-attempts", type=int, help="Replacements allowed (0: unlimited)."),
        click.option("--update-parallelism", type=int, help="Tasks updated at once (0: all)."),
        click.option("--update-delay", type=options.DURATION, help="Delay between update batches."),
        click.option("--workdir", "-w", help="Working directory in the container."),
        click.option("--user", "-u", help="User the container runs as."),
        click.option("--hostname", help="Container hostname."),
        click.option(
            "--stop-grace-period",
            type=options.DURATION,
            help="Time to stop gracefully before the container is killed.",
        ),
        click.option(
            "--secret",
            type=options.FILE_REF,
            multiple=True,
            help="Mount a secret at /run/secrets/TARGET: NAME[,target=TARGET,mode=0400] (repeatable).",
        ),
        click.option(
            "--config",
            type=options.FILE_REF,
            multiple=True,
            help="Mount a config: NAME[,target=/PATH,mode=0444] (repeatable).",
        ),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return network_flags.options_(rollout_flags.options_(mountflags.options_(fn)))


def update_only_options(fn: F) -> F:
    """The flags only `service update` takes: removals, a new image, and --force."""
    decorators = [
        click.option("--image", help="New image."),
        click.option("--env-rm", metavar="KEY", multiple=True, help="Remove an environment variable."),
        click.option("--label-rm", metavar="KEY", multiple=True, help="Remove a service label."),
        click.option("--container-label-rm", metavar="KEY", multiple=True, help="Remove a container label."),
        click.option("--constraint-rm", metavar="EXPR", multiple=True, help="Remove a placement constraint."),
        click.option(
            "--placement-pref-rm",
            metavar="spread=node.labels.KEY",
            multiple=True,
            help="Remove a placement preference.",
        ),
        click.option("--secret-rm", metavar="NAME", multiple=True, help="Stop mounting a secret."),
        click.option("--config-rm", metavar="NAME", multiple=True, help="Stop mounting a config."),
        click.option("--force", is_flag=True, help="Redeploy every task even if nothing changed."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return mountflags.update_options_(network_flags.update_options(fn))


def new_spec(name: str, mode: str, changes: SpecChanges) -> types_pb2.ServiceSpec:
    """The spec `service create` sends: name, mode (1 replica unless told) and the flags given."""
    spec = types_pb2.ServiceSpec(name=name)
    modes.set_mode(spec, mode, changes.replicas)
    spec.task.container.SetInParent()
    # As `docker service create`: one slot at a time unless told otherwise.
    spec.update.parallelism = 1
    return apply(spec, changes)


def apply(spec: types_pb2.ServiceSpec, changes: SpecChanges) -> types_pb2.ServiceSpec:
    """A copy of `spec` with only the given flags applied (removals first, then additions).

    Nothing else is touched, not even an empty sub-message, so that an update
    with no task change is not mistaken for one.
    """
    out = types_pb2.ServiceSpec()
    out.CopyFrom(spec)
    task, container = out.task, out.task.container
    if changes.image is not None:
        container.image = changes.image
    if changes.replicas is not None:
        _set_replicas(out, changes.replicas)
    if changes.env or changes.env_rm:
        _set_env(container.env, changes.env, changes.env_rm)
    _set_map(out.labels, changes.label, changes.label_rm)
    _set_map(container.labels, changes.container_label, changes.container_label_rm)
    if changes.constraint or changes.constraint_rm:
        _set_constraints(task.placement.constraints, changes.constraint, changes.constraint_rm)
    _set_resources(task.resources, changes)
    modes.apply_placement(
        out,
        max_concurrent=changes.max_concurrent,
        placement_pref=changes.placement_pref,
        placement_pref_rm=changes.placement_pref_rm,
        replicas_max_per_node=changes.replicas_max_per_node,
    )
    _set_restart(task.restart, changes)
    _set_update(out.update, changes)
    rollout_flags.apply(out, changes)
    if changes.workdir is not None:
        container.workdir = changes.workdir
    if changes.user is not None:
        container.user = changes.user
    if changes.hostname is not None:
        container.hostname = changes.hostname
    if changes.stop_grace_period is not None:
        container.stop_grace_period.CopyFrom(units.to_duration(changes.stop_grace_period))
    if changes.command:
        container.ClearField("command")
        container.ClearField("args")
        container.command.append(changes.command[0])
        container.args.extend(changes.command[1:])
    _set_files(container.secrets, changes.secret, changes.secret_rm)
    _set_files(container.configs, changes.config, changes.config_rm)
    network_flags.apply(out, changes)
    mountflags.apply(container.mounts, changes.mount, changes.mount_rm)
    if changes.force:
        task.force_update += 1
    return out


def _set_files(refs: Any, add: Sequence[types_pb2.FileReference], remove: Sequence[str]) -> None:
    """Drop references by name, replace those named again, append new ones."""
    if not add and not remove:
        return
    by_name = {r.name: r for r in refs if r.name not in remove}
    for ref in add:
        by_name[ref.name] = ref
    del refs[:]
    refs.extend(by_name.values())


def replicas_spec(spec: types_pb2.ServiceSpec, replicas: int) -> types_pb2.ServiceSpec:
    """A copy of `spec` scaled to `replicas`; a global service cannot be scaled."""
    return apply(spec, SpecChanges(replicas=replicas))


def _set_replicas(spec: types_pb2.ServiceSpec, replicas: int) -> None:
    # Replicas of a replicated service, completions of a replicated job (ctl/modes.py).
    modes.set_replicas(spec, replicas)


def _set_env(env: Any, add: Sequence[tuple[str, str]], remove: Sequence[str]) -> None:
    """Drop the `remove` keys, replace entries whose key is set again in place, append new keys."""
    latest = dict(add)  # a key given twice keeps its last value
    removed = set(remove) - latest.keys()
    kept, placed = [], set()
    for entry in env:
        key = entry.partition("=")[0]
        if key in removed or key in placed:
            continue
        if key in latest:
            entry = f"{key}={latest[key]}"
            placed.add(key)
        kept.append(entry)
    kept += [f"{k}={v}" for k, v in latest.items() if k not in placed]
    del env[:]
    env.extend(kept)


def _set_map(labels: Any, add: Sequence[tuple[str, str]], remove: Sequence[str]) -> None:
    for key in remove:
        labels.pop(key, None)
    for key, value in add:
        labels[key] = value


def _set_constraints(constraints: Any, add: Sequence[str], remove: Sequence[str]) -> None:
    drop = {_normal(c) for c in remove}
    kept = [c for c in constraints if _normal(c) not in drop]
    for expr in add:
        if _normal(expr) not in {_normal(c) for c in kept}:
            kept.append(expr)
    del constraints[:]
    constraints.extend(kept)


def _normal(expr: str) -> str:
    """A constraint without spaces, so "a == b" and "a==b" are the same one."""
    return "".join(expr.split())


def _set_resources(res: types_pb2.ResourceRequirements, changes: SpecChanges) -> None:
    if changes.reserve_cpu is not None:
        res.reservations.nano_cpus = changes.reserve_cpu
    if changes.reserve_memory is not None:
        res.reservations.memory_bytes = changes.reserve_memory
    if changes.limit_cpu is not None:
        res.limits.nano_cpus = changes.limit_cpu
    if changes.limit_memory is not None:
        res.limits.memory_bytes = changes.limit_memory


def _set_restart(restart: types_pb2.RestartPolicy, changes: SpecChanges) -> None:
    if changes.restart_condition is not None:
        restart.condition = _RESTART_CONDITIONS[changes.restart_condition]
    if changes.restart_delay is not None:
        restart.delay.CopyFrom(units.to_duration(changes.restart_delay))
    if changes.restart_max_attempts is not None:
        _non_negative("restart-max-attempts", changes.restart_max_attempts)
        restart.max_attempts = changes.restart_max_attempts


def _set_update(update: types_pb2.UpdateConfig, changes: SpecChanges) -> None:
    if changes.update_parallelism is not None:
        _non_negative("update-parallelism", changes.update_parallelism)
        update.parallelism = changes.update_parallelism
    if changes.update_delay is not None:
        update.delay.CopyFrom(units.to_duration(changes.update_delay))


def _non_negative(flag: str, value: int) -> None:
    # The wire type is unsigned, so a negative value cannot even reach the controller.
    if value < 0:
        raise errors.InvalidArgument(f"{flag} must be >= 0")
