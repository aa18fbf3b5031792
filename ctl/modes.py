"""Service modes and placement flags in swarmctl: `--mode`, `--replicas`, `--max-concurrent`,
`--placement-pref`, `--replicas-max-per-node`, and how `service ls`/`inspect` show them.

spec.py calls `set_mode` when a service is created and `apply_placement` (and
`set_replicas`) for every create and update; service.py shows the modes with
`mode_name`, `replicas_cell` and `mode_fields`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal import errors
from shoal.v1 import control_pb2, types_pb2

#: `--mode` values and the spec's oneof field each one sets.
MODES = {
    "replicated": "replicated",
    "global": "global",
    "replicated-job": "replicated_job",
    "global-job": "global_job",
}
NAMES = {field: name for name, field in MODES.items()}


def mode_name(spec: types_pb2.ServiceSpec) -> str:
    """The mode as `--mode` spells it ("replicated" when unset)."""
    return NAMES.get(spec.WhichOneof("mode") or "replicated", "replicated")


def set_mode(spec: types_pb2.ServiceSpec, mode: str, replicas: int | None) -> None:
    """The mode of a new service: replicated services and replicated jobs default to 1 replica."""
    field = MODES[mode]
    if replicas is not None and field in ("global", "global_job"):
        raise errors.InvalidArgument(f'service "{spec.name}": --replicas does not apply to a {mode} service')
    if field == "replicated":
        spec.replicated.replicas = 1
    elif field == "replicated_job":
        # As `docker service create --mode replicated-job`: one completion unless told, as many at once.
        spec.replicated_job.total_completions = 1
    else:
        getattr(spec, field).SetInParent()  # `global` is a Python keyword


def set_replicas(spec: types_pb2.ServiceSpec, replicas: int) -> None:
    """Replicas of a replicated service, or completions of a replicated job; refused for global modes."""
    field = spec.WhichOneof("mode")
    if field in ("global", "global_job"):
        raise errors.InvalidArgument(
            f'service "{spec.name}" is {mode_name(spec)}: replicas apply to replicated services and jobs'
        )
    try:
        if field == "replicated_job":
            _non_negative("replicas", replicas)
            spec.replicated_job.total_completions = replicas
        else:
            # Sent as given: the controller refuses a negative count (INVALID_ARGUMENT) with its own message.
            spec.replicated.replicas = replicas
    except ValueError:  # out of the wire type's range
        raise errors.InvalidArgument(f'service "{spec.name}": replicas out of range: {replicas}') from None


def apply_placement(
    spec: types_pb2.ServiceSpec,
    *,
    max_concurrent: int | None,
    placement_pref: Sequence[str],
    placement_pref_rm: Sequence[str],
    replicas_max_per_node: int | None,
) -> None:
    """Apply the mode and placement flags that were given; leave everything else as it is."""
    if max_concurrent is not None:
        if spec.WhichOneof("mode") != "replicated_job":
            raise errors.InvalidArgument(f'service "{spec.name}": --max-concurrent applies to replicated jobs only')
        _non_negative("max-concurrent", max_concurrent)
        spec.replicated_job.max_concurrent = max_concurrent
    placement = spec.task.placement
    if placement_pref or placement_pref_rm:
        _set_preferences(placement.preferences, placement_pref, placement_pref_rm)
    if replicas_max_per_node is not None:
        _non_negative("replicas-max-per-node", replicas_max_per_node)
        placement.max_replicas = replicas_max_per_node


def _set_preferences(prefs: Any, add: Sequence[str], remove: Sequence[str]) -> None:
    """Preferences in order: drop the removed ones, then append the new ones not already there."""
    drop = {_spread_of(r) for r in remove}
    kept = [p.spread for p in prefs if p.spread not in drop]
    for pref in add:
        descriptor = _spread_of(pref)
        if descriptor not in kept:
            kept.append(descriptor)
    del prefs[:]
    prefs.extend(types_pb2.PlacementPreference(spread=d) for d in kept)


def _spread_of(pref: str) -> str:
    """The label of `spread=node.labels.zone` (the controller checks that it names a node label)."""
    strategy, sep, descriptor = pref.partition("=")
    if not sep or strategy.strip() != "spread" or not descriptor.strip():
        raise errors.InvalidArgument(f"--placement-pref {pref!r}: expected spread=node.labels.KEY")
    return descriptor.strip()


def _non_negative(flag: str, value: int) -> None:
    if value < 0:
        raise errors.InvalidArgument(f"{flag} must be >= 0")


def replicas_cell(spec: types_pb2.ServiceSpec, counts: control_pb2.ServiceReplicas | None) -> str:
    """The REPLICAS column of `service ls`: "2/3"; for a job also "(4/5 completed)"."""
    field = spec.WhichOneof("mode")
    if counts is None:
        if field == "replicated":
            return f"?/{spec.replicated.replicas}"
        return "?"
    cell = f"{counts.running}/{counts.desired}"
    if field in ("replicated_job", "global_job"):
        cell += f" ({counts.completed}/{counts.completions} completed)"
    return cell


def mode_fields(spec: types_pb2.ServiceSpec, spec_version: int) -> list[tuple[str, str]]:
    """The mode's lines of `service inspect`."""
    field = spec.WhichOneof("mode")
    fields = [("Mode", mode_name(spec))]
    if field == "replicated":
        fields.append(("Replicas", str(spec.replicated.replicas)))
    elif field == "replicated_job":
        job = spec.replicated_job
        fields += [("Completions", str(job.total_completions)), ("Max concurrent", str(job.max_concurrent))]
    if field in ("replicated_job", "global_job"):
        fields.append(("Job iteration", str(spec_version)))
    return fields


def placement_fields(spec: types_pb2.ServiceSpec) -> list[tuple[str, str]]:
    """The placement lines of `service inspect` beyond constraints."""
    placement = spec.task.placement
    fields = []
    if placement.preferences:
        fields.append(("Placement preferences", "\n".join(f"spread={p.spread}" for p in placement.preferences)))
    if placement.max_replicas:
        fields.append(("Max replicas per node", str(placement.max_replicas)))
    return fields
