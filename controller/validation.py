"""Validation and defaults for specs coming from clients.

Every check raises InvalidArgument with one line that names the object and
the field; nothing is written when one fails. Bounds keep a single spec small
(etcd refuses requests over 1.5 MiB, and a hostile client should not get
close).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from shoal import errors, units
from shoal.controller import constraint, mounts
from shoal.v1 import types_pb2

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$")
_ENV_KEY = re.compile(r"^[^=\x00]+$")

MAX_REPLICAS = 1_000_000
MAX_ENV = 1024
MAX_LABELS = 256
MAX_CONSTRAINTS = 64
MAX_ARGV = 1024
MAX_VALUE_BYTES = 32 * 1024
MAX_ARGV_BYTES = 64 * 1024
MAX_IMAGE = 512
MAX_FILES = 64

#: Docker Swarm's default: five seconds between a task's end and its replacement.
DEFAULT_RESTART_DELAY = 5.0
DEFAULT_STOP_GRACE = 10.0
#: Docker Swarm's default: a new task is watched for failure for five seconds (and must run within them).
DEFAULT_MONITOR = 5.0


def check_name(kind: str, name: str) -> None:
    """Names follow DNS label rules: lowercase letters, digits and '-', at most 63 characters."""
    if not name:
        raise errors.InvalidArgument(f"{kind} name must not be empty")
    if not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            f"{kind} name {name[:80]!r} is invalid: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )


def check_labels(what: str, labels: Mapping[str, str]) -> None:
    """Label keys are short identifiers; values are bounded."""
    items = dict(labels)
    if len(items) > MAX_LABELS:
        raise errors.InvalidArgument(f"{what}: at most {MAX_LABELS} labels")
    for key, value in items.items():
        if not _LABEL_KEY.fullmatch(key):
            raise errors.InvalidArgument(f"{what}: invalid label key {key[:80]!r}")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise errors.InvalidArgument(f"{what}: label {key!r} is longer than {MAX_VALUE_BYTES} bytes")


def check_service_spec(spec: types_pb2.ServiceSpec) -> None:
    """Refuse anything a service must not be; InvalidArgument names the field."""
    check_name("service", spec.name)
    what = f'service "{spec.name}"'
    check_labels(what, spec.labels)
    mode = spec.WhichOneof("mode")
    check_mode_and_placement(what, spec)
    if mode == "replicated":
        if spec.replicated.replicas < 0:
            raise errors.InvalidArgument(f"{what}: replicas must be >= 0")
        if spec.replicated.replicas > MAX_REPLICAS:
            raise errors.InvalidArgument(f"{what}: replicas must be <= {MAX_REPLICAS}")
    _check_task_spec(what, spec.task)
    for field in ("update", "rollback"):
        cfg = getattr(spec, field)
        if cfg.delay.ToNanoseconds() < 0 or cfg.monitor.ToNanoseconds() < 0:
            raise errors.InvalidArgument(f"{what}: {field} delay and monitor must not be negative")
        if not 0 <= cfg.max_failure_ratio <= 1:
            raise errors.InvalidArgument(f"{what}: {field} max failure ratio must be between 0 and 1")
        if cfg.failure_action not in types_pb2.UpdateConfig.FailureAction.values():
            raise errors.InvalidArgument(f"{what}: unknown {field} failure action {cfg.failure_action}")
        if cfg.order not in types_pb2.UpdateConfig.Order.values():
            raise errors.InvalidArgument(f"{what}: unknown {field} order {cfg.order}")
    if spec.rollback.failure_action == types_pb2.UpdateConfig.ROLLBACK:
        # A rollback is never rolled back: a failing one pauses.
        raise errors.InvalidArgument(f"{what}: the rollback failure action must be pause or continue")


def _check_task_spec(what: str, task: types_pb2.TaskSpec) -> None:
    c = task.container
    if not c.image:
        raise errors.InvalidArgument(f"{what}: an image is required")
    if len(c.image) > MAX_IMAGE or any(ch.isspace() for ch in c.image):
        raise errors.InvalidArgument(f"{what}: invalid image reference {c.image[:80]!r}")
    if len(c.env) > MAX_ENV:
        raise errors.InvalidArgument(f"{what}: at most {MAX_ENV} environment variables")
    for entry in c.env:
        key = entry.split("=", 1)[0]
        if not _ENV_KEY.fullmatch(key) or "\x00" in entry or len(entry.encode()) > MAX_VALUE_BYTES:
            raise errors.InvalidArgument(f"{what}: invalid environment entry {entry[:80]!r} (use KEY=VALUE)")
    argv = [*c.command, *c.args]
    if len(argv) > MAX_ARGV or sum(len(a.encode()) for a in argv) > MAX_ARGV_BYTES:
        raise errors.InvalidArgument(f"{what}: command and arguments are too long")
    if any("\x00" in a for a in argv):
        raise errors.InvalidArgument(f"{what}: command and arguments must not contain NUL characters")
    check_labels(f"{what} container", c.labels)
    check_ports(what, c.ports)
    if len(c.secrets) > MAX_FILES or len(c.configs) > MAX_FILES:
        raise errors.InvalidArgument(f"{what}: at most {MAX_FILES} secrets and {MAX_FILES} configs")
    if c.stop_grace_period.ToNanoseconds() < 0:
        raise errors.InvalidArgument(f"{what}: stop grace period must not be negative")
    for name in ("limits", "reservations"):
        res = getattr(task.resources, name)
        if res.nano_cpus < 0 or res.memory_bytes < 0:
            raise errors.InvalidArgument(f"{what}: resource {name} must not be negative")
    if task.restart.delay.ToNanoseconds() < 0 or task.restart.window.ToNanoseconds() < 0:
        raise errors.InvalidArgument(f"{what}: restart delay and window must not be negative")
    if task.restart.condition not in types_pb2.RestartPolicy.Condition.values():
        raise errors.InvalidArgument(f"{what}: unknown restart condition {task.restart.condition}")
    _check_healthcheck(what, c.healthcheck)
    mounts.check_mounts(what, c, check_labels)  # volumes, bind mounts, tmpfs (issue 18)
    if len(task.placement.constraints) > MAX_CONSTRAINTS:
        raise errors.InvalidArgument(f"{what}: at most {MAX_CONSTRAINTS} constraints")
    for expr in task.placement.constraints:
        try:
            constraint.parse(expr)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"{what}: {exc}") from None


def _check_healthcheck(what: str, hc: types_pb2.HealthConfig) -> None:
    """The Engine's rules: a known test form, durations of 0 (inherit) or at least 1 ms."""
    test = list(hc.test)
    if test and (
        test[0] not in ("NONE", "CMD", "CMD-SHELL")
        or (test[0] == "NONE" and len(test) != 1)
        or (test[0] == "CMD-SHELL" and len(test) != 2)
        or (test[0] == "CMD" and len(test) < 2)
    ):
        raise errors.InvalidArgument(
            f'{what}: health check test must be ["NONE"], ["CMD", ARG...] or ["CMD-SHELL", COMMAND]'
        )
    if len(test) > MAX_ARGV or sum(len(a.encode()) for a in test) > MAX_ARGV_BYTES or any("\x00" in a for a in test):
        raise errors.InvalidArgument(f"{what}: health check command is too long or contains NUL characters")
    for name in ("interval", "timeout", "start_period"):
        nanos = getattr(hc, name).ToNanoseconds()
        if nanos < 0 or 0 < nanos < 1_000_000:
            raise errors.InvalidArgument(f"{what}: health check {name.replace('_', ' ')} must be 0 or at least 1ms")


def check_ports(what: str, ports: Iterable[types_pb2.PortConfig], *, chosen: bool = False) -> None:
    """Ports in range, a known protocol, none published twice.

    `chosen`: a port published as 0 gets its number from the controller (the routing mesh), so it
    clashes with nothing yet; otherwise 0 means the target's number (host mode).
    """
    seen = set()
    for p in ports:
        if not 1 <= p.target <= 65535 or not 0 <= p.published <= 65535:
            raise errors.InvalidArgument(f"{what}: port {p.published}:{p.target} is out of range (1-65535)")
        if p.protocol not in ("", "tcp", "udp"):
            raise errors.InvalidArgument(f"{what}: unknown protocol {p.protocol!r} (use tcp or udp)")
        if chosen and not p.published:
            continue
        key = (p.published or p.target, p.protocol or "tcp")
        if key in seen:
            raise errors.InvalidArgument(f"{what}: port {key[0]}/{key[1]} is published twice")
        seen.add(key)


def apply_defaults(spec: types_pb2.ServiceSpec) -> None:
    """Fill what the user left unset, as Docker Swarm does (restart delay 5 s, one replica, ...)."""
    if spec.WhichOneof("mode") is None:
        spec.replicated.replicas = 1
    apply_job_defaults(spec)
    if not spec.task.restart.HasField("delay"):
        spec.task.restart.delay.CopyFrom(units.to_duration(DEFAULT_RESTART_DELAY))
    if not spec.task.container.HasField("stop_grace_period"):
        spec.task.container.stop_grace_period.CopyFrom(units.to_duration(DEFAULT_STOP_GRACE))
    if not spec.HasField("update"):
        spec.update.parallelism = 1
    if not spec.HasField("rollback"):
        spec.rollback.parallelism = 1
    for cfg in (spec.update, spec.rollback):
        if not cfg.HasField("monitor"):
            cfg.monitor.CopyFrom(units.to_duration(DEFAULT_MONITOR))


def check_node_spec(name: str, spec: types_pb2.NodeSpec) -> None:
    """Labels must be well formed and the availability known."""
    check_labels(f'node "{name}"', spec.labels)
    if spec.availability not in types_pb2.NodeSpec.Availability.values():
        raise errors.InvalidArgument(f'node "{name}": unknown availability {spec.availability}')


# ---- modes and placement (global services, jobs, spread, max per node) ------

MAX_PREFERENCES = 8


def check_mode_and_placement(what: str, spec: types_pb2.ServiceSpec) -> None:
    """Job counts are bounded; a per-node maximum needs a replicated mode; preferences name node labels."""
    mode = spec.WhichOneof("mode")
    if mode == "replicated_job":
        job = spec.replicated_job
        if job.total_completions > MAX_REPLICAS or job.max_concurrent > MAX_REPLICAS:
            raise errors.InvalidArgument(f"{what}: job completions and concurrency must be <= {MAX_REPLICAS}")
    placement = spec.task.placement
    if placement.max_replicas and mode not in ("replicated", "replicated_job"):
        raise errors.InvalidArgument(
            f"{what}: a maximum of replicas per node applies to replicated services and jobs, not to "
            f"{mode.replace('_', '-') if mode else 'this mode'}"
        )
    if len(placement.preferences) > MAX_PREFERENCES:
        raise errors.InvalidArgument(f"{what}: at most {MAX_PREFERENCES} placement preferences")
    for pref in placement.preferences:
        try:
            constraint.parse_spread(pref.spread)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"{what}: {exc}") from None


def apply_job_defaults(spec: types_pb2.ServiceSpec) -> None:
    """As Docker: a replicated job completes once unless told, running as many tasks at once as completions."""
    if spec.WhichOneof("mode") == "replicated_job":
        job = spec.replicated_job
        if not job.total_completions:
            job.total_completions = job.max_concurrent or 1
        if not job.max_concurrent:
            job.max_concurrent = job.total_completions
