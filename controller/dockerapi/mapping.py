"""Docker Engine API JSON to and from Shoal's protobuf: the one place the two object models meet.

Readers (`service_spec`, `node_spec`, `file_spec`) take the JSON a Docker
client sent and build the protobuf the Control API takes. They are strict: a
key Docker does not have is refused, a key Docker has but Shoal does not
implement is refused when it carries a value (an empty one, as clients send
for defaults, is accepted), and a value of the wrong type is refused; each as
InvalidArgument naming the field by its Docker path
(`TaskTemplate.ContainerSpec.Mounts`), which the server turns into a 400.
Nothing is dropped silently.

Writers (`service`, `task`, `node`, `secret`, `config`, and the specs) turn
stored objects into Docker's JSON. `Version.Index` is the object's etcd
revision (meta.version), which Docker's optimistic updates send back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from shoal import errors
from shoal.v1 import objects_pb2, types_pb2

Json = dict[str, Any]

#: Go's zero time, which Docker shows for a time that was never set.
ZERO_TIME = "0001-01-01T00:00:00Z"

# ---- reading: type checks ---------------------------------------------------------


def _bad(path: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"{path}: {message}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def empty(value: Any) -> bool:
    """Whether a value is what Docker's clients send for "not set": null, "", 0, false, [], {} (recursively)."""
    if isinstance(value, dict):
        return all(empty(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return value in (None, "", 0, False)


def obj(value: Any, path: str) -> Json:
    """A JSON object (null reads as {})."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, f"expected an object, got {_kind(value)}")
    return value


def fields(doc: Json, path: str, supported: Iterable[str], unsupported: Iterable[str] = ()) -> Json:
    """The object with its keys spelt as Docker spells them; refuse keys Docker does not have, and keys
    Shoal does not implement when they carry a value.

    Keys match case-insensitively, as Go's JSON decoding (and so dockerd) matches them: the Docker SDK for
    Python sends `{"replicated": ...}` in a Mode.
    """
    known = {k.lower(): k for k in supported}
    refused = {k.lower(): k for k in unsupported}
    out: Json = {}
    for key, value in doc.items():
        where = f"{path}.{key}" if path else key
        name = known.get(key.lower())
        if name is not None:
            if name in out:
                raise errors.InvalidArgument(f"{where}: given twice")
            out[name] = value
            continue
        if key.lower() in refused:
            if empty(value):
                continue
            raise errors.InvalidArgument(f"{where} is not supported by Shoal")
        raise errors.InvalidArgument(f"unknown field {where}")
    return out


def string(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(path, f"expected a string, got {_kind(value)}")
    return value


def integer(value: Any, path: str, *, minimum: int | None = 0) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _bad(path, f"expected an integer, got {_kind(value)}")
    if minimum is not None and value < minimum:
        raise _bad(path, f"must be >= {minimum}")
    if abs(value) > 2**63 - 1:
        raise _bad(path, "is out of range")
    return int(value)


def number(value: Any, path: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(path, f"expected a number, got {_kind(value)}")
    return float(value)


def strings(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(path, f"expected an array of strings, got {_kind(value)}")
    return [string(v, f"{path}[{i}]") for i, v in enumerate(value)]


def string_map(value: Any, path: str) -> dict[str, str]:
    return {k: string(v, f"{path}.{k}") for k, v in obj(value, path).items()}


def items(value: Any, path: str) -> list[tuple[str, Json]]:
    """An array of objects, each with its path."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(path, f"expected an array, got {_kind(value)}")
    return [(f"{path}[{i}]", obj(v, f"{path}[{i}]")) for i, v in enumerate(value)]


def choice(value: Any, path: str, names: Mapping[str, int]) -> int:
    """An enum given by Docker's lowercase name ("" is the first)."""
    text = string(value, path).lower()
    if text not in names:
        raise _bad(path, f"unknown value {text!r} (known: {', '.join(n for n in names if n)})")
    return names[text]


def _set_duration(target: duration_pb2.Duration, value: Any, path: str) -> None:
    """Docker durations are integer nanoseconds; null leaves the field unset (Shoal's default applies)."""
    if value is not None:
        target.FromNanoseconds(integer(value, path))


def _duration_json(d: duration_pb2.Duration) -> int:
    return int(d.ToNanoseconds())


def timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """RFC 3339 with nanoseconds, or Go's zero time when unset."""
    if not ts.seconds and not ts.nanos:
        return ZERO_TIME
    return ts.ToJsonString()


def _version(meta: types_pb2.Meta) -> Json:
    return {"Index": meta.version}


def _meta(meta: types_pb2.Meta) -> Json:
    return {"Version": _version(meta), "CreatedAt": timestamp(meta.created_at), "UpdatedAt": timestamp(meta.updated_at)}


def _drop_empty(doc: Json) -> Json:
    """Docker's `omitempty`: leave out what is unset."""
    return {k: v for k, v in doc.items() if v not in (None, "", [], {}, 0, False)}


# ---- enums ---------------------------------------------------------------------------

RESTART_CONDITIONS = {"": 0, "any": 0, "on-failure": 1, "none": 2}
FAILURE_ACTIONS = {"": 0, "pause": 0, "continue": 1, "rollback": 2}
ORDERS = {"": 0, "stop-first": 0, "start-first": 1}
AVAILABILITIES = {"": 0, "active": 0, "pause": 1, "drain": 2}
_RESTART_NAMES = {0: "any", 1: "on-failure", 2: "none"}
_FAILURE_NAMES = {0: "pause", 1: "continue", 2: "rollback"}
_ORDER_NAMES = {0: "stop-first", 1: "start-first"}
_AVAILABILITY_NAMES = {0: "active", 1: "pause", 2: "drain"}
_NODE_STATES = {0: "unknown", 1: "down", 2: "ready", 3: "disconnected"}
_UPDATE_STATES = {
    1: "updating",
    2: "paused",
    3: "completed",
    4: "rollback_started",
    5: "rollback_paused",
    6: "rollback_completed",
    # A rebalance replaces tasks with the update settings: Docker's clients know it as an update.
    7: "updating",
    8: "paused",
    9: "completed",
}


def task_state_name(state: int) -> str:
    """Docker's name of a task state: "running", "shutdown" ..."""
    if state not in types_pb2.TaskState.values():
        return "unknown"
    return types_pb2.TaskState.Name(types_pb2.TaskState.ValueType(state)).lower()


TASK_STATES = {types_pb2.TaskState.Name(v).lower(): v for v in types_pb2.TaskState.values()}

# ---- ServiceSpec: reading ----------------------------------------------------------


def service_spec(doc: Any) -> types_pb2.ServiceSpec:
    """A Docker ServiceSpec (the body of POST /services/create and /services/{id}/update)."""
    d = fields(
        obj(doc, "ServiceSpec"),
        "",
        ("Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig", "RollbackConfig", "EndpointSpec"),
        ("Networks",),
    )
    spec = types_pb2.ServiceSpec(name=string(d.get("Name"), "Name"), labels=string_map(d.get("Labels"), "Labels"))
    _task_spec(spec.task, obj(d.get("TaskTemplate"), "TaskTemplate"), "TaskTemplate")
    _mode(spec, d.get("Mode"))
    for key, target in (("UpdateConfig", spec.update), ("RollbackConfig", spec.rollback)):
        if d.get(key) is not None:
            _update_config(target, obj(d[key], key), key)
    _endpoint(spec.task.container, obj(d.get("EndpointSpec"), "EndpointSpec"), "EndpointSpec")
    return spec


def _task_spec(task: types_pb2.TaskSpec, d: Json, path: str) -> None:
    d = fields(
        d,
        path,
        ("ContainerSpec", "Resources", "RestartPolicy", "Placement", "ForceUpdate", "Runtime"),
        ("PluginSpec", "NetworkAttachmentSpec", "Networks", "LogDriver"),
    )
    runtime = string(d.get("Runtime"), f"{path}.Runtime")
    if runtime not in ("", "container"):
        raise errors.InvalidArgument(f"{path}.Runtime {runtime!r} is not supported by Shoal (only containers)")
    _container_spec(task.container, obj(d.get("ContainerSpec"), f"{path}.ContainerSpec"), f"{path}.ContainerSpec")
    _resources(task.resources, obj(d.get("Resources"), f"{path}.Resources"), f"{path}.Resources")
    if d.get("RestartPolicy") is not None:
        _restart(task.restart, obj(d["RestartPolicy"], f"{path}.RestartPolicy"), f"{path}.RestartPolicy")
    _placement(task.placement, obj(d.get("Placement"), f"{path}.Placement"), f"{path}.Placement")
    task.force_update = integer(d.get("ForceUpdate"), f"{path}.ForceUpdate")


_CONTAINER_UNSUPPORTED = (
    "Groups",
    "Privileges",
    "Init",
    "TTY",
    "OpenStdin",
    "ReadOnly",
    "Mounts",
    "StopSignal",
    "Hosts",
    "DNSConfig",
    "Sysctls",
    "CapabilityAdd",
    "CapabilityDrop",
    "Ulimits",
    "OomScoreAdj",
)


def _container_spec(c: types_pb2.ContainerSpec, d: Json, path: str) -> None:
    d = fields(
        d,
        path,
        (
            "Image",
            "Labels",
            "Command",
            "Args",
            "Hostname",
            "Env",
            "Dir",
            "User",
            "StopGracePeriod",
            "Healthcheck",
            "Secrets",
            "Configs",
            "Isolation",
        ),
        _CONTAINER_UNSUPPORTED,
    )
    if d.get("Isolation") not in (None, "", "default"):
        raise errors.InvalidArgument(f"{path}.Isolation is not supported by Shoal")
    c.image = string(d.get("Image"), f"{path}.Image")
    c.labels.update(string_map(d.get("Labels"), f"{path}.Labels"))
    c.command.extend(strings(d.get("Command"), f"{path}.Command"))
    c.args.extend(strings(d.get("Args"), f"{path}.Args"))
    c.hostname = string(d.get("Hostname"), f"{path}.Hostname")
    c.env.extend(strings(d.get("Env"), f"{path}.Env"))
    c.workdir = string(d.get("Dir"), f"{path}.Dir")
    c.user = string(d.get("User"), f"{path}.User")
    _set_duration(c.stop_grace_period, d.get("StopGracePeriod"), f"{path}.StopGracePeriod")
    if d.get("Healthcheck") is not None:
        _health(c.healthcheck, obj(d["Healthcheck"], f"{path}.Healthcheck"), f"{path}.Healthcheck")
    for where, ref in items(d.get("Secrets"), f"{path}.Secrets"):
        c.secrets.append(_file_ref(ref, where, "Secret"))
    for where, ref in items(d.get("Configs"), f"{path}.Configs"):
        c.configs.append(_file_ref(ref, where, "Config"))


def _health(h: types_pb2.HealthConfig, d: Json, path: str) -> None:
    d = fields(d, path, ("Test", "Interval", "Timeout", "StartPeriod", "Retries"), ("StartInterval",))
    h.test.extend(strings(d.get("Test"), f"{path}.Test"))
    for key, target in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period)):
        _set_duration(target, d.get(key), f"{path}.{key}")
    h.retries = integer(d.get("Retries"), f"{path}.Retries")


#: Where Docker mounts secrets; Shoal's secret targets are file names under it.
SECRETS_DIR = "/run/secrets/"


def _file_ref(d: Json, path: str, kind: str) -> types_pb2.FileReference:
    d = fields(d, path, ("File", f"{kind}ID", f"{kind}Name"), ("Runtime",) if kind == "Config" else ())
    ref = types_pb2.FileReference(id=string(d.get(f"{kind}ID"), f"{path}.{kind}ID"))
    ref.name = string(d.get(f"{kind}Name"), f"{path}.{kind}Name")
    if d.get("File") is not None:
        f = fields(obj(d["File"], f"{path}.File"), f"{path}.File", ("Name", "UID", "GID", "Mode"))
        target = string(f.get("Name"), f"{path}.File.Name")
        if kind == "Secret" and target.startswith(SECRETS_DIR):
            target = target[len(SECRETS_DIR) :]
        elif kind == "Config" and target and not target.startswith("/"):
            target = "/" + target  # Docker puts a relative config target under /
        ref.target = target
        for owner in ("UID", "GID"):
            if string(f.get(owner), f"{path}.File.{owner}") not in ("", "0"):
                raise errors.InvalidArgument(f"{path}.File.{owner} other than 0 is not supported by Shoal")
        ref.mode = integer(f.get("Mode"), f"{path}.File.Mode")
    return ref


def _resources(r: types_pb2.ResourceRequirements, d: Json, path: str) -> None:
    d = fields(d, path, ("Limits", "Reservations"))
    for key, target, unsupported in (
        ("Limits", r.limits, ("Pids",)),
        ("Reservations", r.reservations, ("GenericResources",)),
    ):
        where = f"{path}.{key}"
        sub = fields(obj(d.get(key), where), where, ("NanoCPUs", "MemoryBytes"), unsupported)
        target.nano_cpus = integer(sub.get("NanoCPUs"), f"{where}.NanoCPUs")
        target.memory_bytes = integer(sub.get("MemoryBytes"), f"{where}.MemoryBytes")
    if not r.limits.ByteSize():
        r.ClearField("limits")
    if not r.reservations.ByteSize():
        r.ClearField("reservations")


def _restart(p: types_pb2.RestartPolicy, d: Json, path: str) -> None:
    d = fields(d, path, ("Condition", "Delay", "MaxAttempts", "Window"))
    p.condition = choice(d.get("Condition"), f"{path}.Condition", RESTART_CONDITIONS)  # type: ignore[assignment]
    _set_duration(p.delay, d.get("Delay"), f"{path}.Delay")
    p.max_attempts = integer(d.get("MaxAttempts"), f"{path}.MaxAttempts")
    _set_duration(p.window, d.get("Window"), f"{path}.Window")


def _placement(p: types_pb2.Placement, d: Json, path: str) -> None:
    d = fields(d, path, ("Constraints", "Preferences", "MaxReplicas"), ("Platforms",))
    p.constraints.extend(strings(d.get("Constraints"), f"{path}.Constraints"))
    for where, pref in items(d.get("Preferences"), f"{path}.Preferences"):
        spread = obj(fields(pref, where, ("Spread",)).get("Spread"), f"{where}.Spread")
        spread = fields(spread, f"{where}.Spread", ("SpreadDescriptor",))
        p.preferences.add(spread=string(spread.get("SpreadDescriptor"), f"{where}.Spread.SpreadDescriptor"))
    p.max_replicas = integer(d.get("MaxReplicas"), f"{path}.MaxReplicas")


def _mode(spec: types_pb2.ServiceSpec, value: Any) -> None:
    d = fields(obj(value, "Mode"), "Mode", ("Replicated", "Global", "ReplicatedJob", "GlobalJob"))
    given = [k for k, v in d.items() if v is not None]
    if len(given) > 1:
        raise errors.InvalidArgument(f"Mode: give one of Replicated, Global, ReplicatedJob, GlobalJob, not {given}")
    if not given:
        return  # Shoal's default: one replica, as Docker's
    key = given[0]
    sub = obj(d[key], f"Mode.{key}")
    if key == "Replicated":
        sub = fields(sub, "Mode.Replicated", ("Replicas",))
        spec.replicated.replicas = integer(sub.get("Replicas", 1), "Mode.Replicated.Replicas")
    elif key == "ReplicatedJob":
        sub = fields(sub, "Mode.ReplicatedJob", ("MaxConcurrent", "TotalCompletions"))
        spec.replicated_job.max_concurrent = integer(sub.get("MaxConcurrent"), "Mode.ReplicatedJob.MaxConcurrent")
        spec.replicated_job.total_completions = integer(
            sub.get("TotalCompletions"), "Mode.ReplicatedJob.TotalCompletions"
        )
    else:
        sub = fields(sub, f"Mode.{key}", ())
        getattr(spec, "global" if key == "Global" else "global_job").SetInParent()


def _update_config(u: types_pb2.UpdateConfig, d: Json, path: str) -> None:
    d = fields(d, path, ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order"))
    u.parallelism = integer(d.get("Parallelism"), f"{path}.Parallelism")
    _set_duration(u.delay, d.get("Delay"), f"{path}.Delay")
    u.failure_action = choice(d.get("FailureAction"), f"{path}.FailureAction", FAILURE_ACTIONS)  # type: ignore[assignment]
    _set_duration(u.monitor, d.get("Monitor"), f"{path}.Monitor")
    u.max_failure_ratio = number(d.get("MaxFailureRatio"), f"{path}.MaxFailureRatio")
    u.order = choice(d.get("Order"), f"{path}.Order", ORDERS)  # type: ignore[assignment]


def _endpoint(c: types_pb2.ContainerSpec, d: Json, path: str) -> None:
    d = fields(d, path, ("Mode", "Ports"))
    mode = string(d.get("Mode"), f"{path}.Mode").lower()
    if mode not in ("", "vip"):
        raise errors.InvalidArgument(f"{path}.Mode {mode!r} is not supported by Shoal (only vip, the default)")
    for where, port in items(d.get("Ports"), f"{path}.Ports"):
        port = fields(port, where, ("Protocol", "TargetPort", "PublishedPort", "PublishMode"), ("Name",))
        publish = string(port.get("PublishMode"), f"{where}.PublishMode").lower()
        if publish not in ("", "host"):
            raise errors.InvalidArgument(
                f"{where}.PublishMode {publish!r} is not supported by Shoal: publish in host mode "
                "(--publish mode=host,target=PORT,published=PORT)"
            )
        if not publish:
            # Docker's default is the ingress mesh, which Shoal does not have: say so rather than change its meaning.
            raise errors.InvalidArgument(
                f"{where}.PublishMode ingress (the default) is not supported by Shoal: publish in host mode "
                "(--publish mode=host,target=PORT,published=PORT)"
            )
        c.ports.add(
            target=integer(port.get("TargetPort"), f"{where}.TargetPort"),
            published=integer(port.get("PublishedPort"), f"{where}.PublishedPort"),
            protocol=string(port.get("Protocol"), f"{where}.Protocol").lower(),
        )


# ---- ServiceSpec: writing ----------------------------------------------------------


def service_spec_json(spec: types_pb2.ServiceSpec) -> Json:
    """A Shoal ServiceSpec as Docker's ServiceSpec."""
    out: Json = {"Name": spec.name, "Labels": dict(spec.labels), "TaskTemplate": task_spec_json(spec.task)}
    out["Mode"] = _mode_json(spec)
    out["UpdateConfig"] = _update_json(spec.update)
    out["RollbackConfig"] = _update_json(spec.rollback)
    out["EndpointSpec"] = _endpoint_json(spec.task.container)
    return out


def _mode_json(spec: types_pb2.ServiceSpec) -> Json:
    mode = spec.WhichOneof("mode") or "replicated"
    if mode == "replicated":
        return {"Replicated": {"Replicas": max(0, spec.replicated.replicas)}}
    if mode == "replicated_job":
        job = spec.replicated_job
        return {"ReplicatedJob": {"MaxConcurrent": job.max_concurrent, "TotalCompletions": job.total_completions}}
    return {"Global": {}} if mode == "global" else {"GlobalJob": {}}


def _update_json(u: types_pb2.UpdateConfig) -> Json:
    out: Json = {"Parallelism": u.parallelism}
    if u.HasField("delay"):
        out["Delay"] = _duration_json(u.delay)
    out["FailureAction"] = _FAILURE_NAMES[u.failure_action]
    if u.HasField("monitor"):
        out["Monitor"] = _duration_json(u.monitor)
    out["MaxFailureRatio"] = round(u.max_failure_ratio, 6)
    out["Order"] = _ORDER_NAMES[u.order]
    return out


def _endpoint_json(c: types_pb2.ContainerSpec) -> Json:
    ports = [
        {
            "Protocol": p.protocol or "tcp",
            "TargetPort": p.target,
            "PublishedPort": p.published,
            "PublishMode": "host",
        }
        for p in c.ports
    ]
    return {"Mode": "vip", "Ports": ports} if ports else {"Mode": "vip"}


def task_spec_json(task: types_pb2.TaskSpec) -> Json:
    """A Shoal TaskSpec as Docker's TaskSpec (the service's TaskTemplate, a task's Spec)."""
    out: Json = {"ContainerSpec": _container_json(task.container)}
    out["Resources"] = {
        key: _drop_empty({"NanoCPUs": r.nano_cpus, "MemoryBytes": r.memory_bytes})
        for key, r, present in (
            ("Limits", task.resources.limits, task.resources.HasField("limits")),
            ("Reservations", task.resources.reservations, task.resources.HasField("reservations")),
        )
        if present
    }
    if task.HasField("restart"):
        restart: Json = {"Condition": _RESTART_NAMES[task.restart.condition], "MaxAttempts": task.restart.max_attempts}
        if task.restart.HasField("delay"):
            restart["Delay"] = _duration_json(task.restart.delay)
        if task.restart.HasField("window"):
            restart["Window"] = _duration_json(task.restart.window)
        out["RestartPolicy"] = restart
    p = task.placement
    placement: Json = _drop_empty(
        {
            "Constraints": list(p.constraints),
            "Preferences": [{"Spread": {"SpreadDescriptor": pref.spread}} for pref in p.preferences],
            "MaxReplicas": p.max_replicas,
        }
    )
    out["Placement"] = placement
    out["ForceUpdate"] = task.force_update
    out["Runtime"] = "container"
    return out


def _container_json(c: types_pb2.ContainerSpec) -> Json:
    out: Json = _drop_empty(
        {
            "Image": c.image,
            "Labels": dict(c.labels),
            "Command": list(c.command),
            "Args": list(c.args),
            "Hostname": c.hostname,
            "Env": list(c.env),
            "Dir": c.workdir,
            "User": c.user,
        }
    )
    if c.HasField("stop_grace_period"):
        out["StopGracePeriod"] = _duration_json(c.stop_grace_period)
    if c.HasField("healthcheck"):
        h = c.healthcheck
        health: Json = {"Test": list(h.test)}
        for key, d in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period)):
            if d.seconds or d.nanos:
                health[key] = _duration_json(d)
        if h.retries:
            health["Retries"] = h.retries
        out["Healthcheck"] = health
    for key, refs, kind in (("Secrets", c.secrets, "Secret"), ("Configs", c.configs, "Config")):
        if refs:
            out[key] = [_file_ref_json(ref, kind) for ref in refs]
    return out


def _file_ref_json(ref: types_pb2.FileReference, kind: str) -> Json:
    return {
        "File": {"Name": ref.target, "UID": "0", "GID": "0", "Mode": ref.mode},
        f"{kind}ID": ref.id,
        f"{kind}Name": ref.name,
    }


# ---- objects: writing ----------------------------------------------------------------


def service(svc: objects_pb2.Service, status: Json | None = None) -> Json:
    """A Service as Docker shows it; `status` is ServiceStatus (running/desired/completed), when asked for."""
    out: Json = {"ID": svc.id, **_meta(svc.meta), "Spec": service_spec_json(svc.spec)}
    if svc.HasField("previous_spec"):
        out["PreviousSpec"] = service_spec_json(svc.previous_spec)
    endpoint = out["Spec"]["EndpointSpec"]
    out["Endpoint"] = {"Spec": endpoint, **({"Ports": endpoint["Ports"]} if "Ports" in endpoint else {})}
    if svc.update_status.state in _UPDATE_STATES:
        u = svc.update_status
        out["UpdateStatus"] = {
            "State": _UPDATE_STATES[u.state],
            "StartedAt": timestamp(u.started_at),
            "CompletedAt": timestamp(u.completed_at),
            "Message": u.message,
        }
    if svc.spec.WhichOneof("mode") in ("replicated_job", "global_job"):
        out["JobStatus"] = {
            "JobIteration": {"Index": svc.spec_version},
            "LastExecution": timestamp(svc.meta.updated_at),
        }
    if status is not None:
        out["ServiceStatus"] = status
    return out


def task(t: objects_pb2.Task, *, with_spec: bool = True) -> Json:
    """A Task as Docker shows it (without its Spec for `tasks_json`, which adds it)."""
    s = t.status
    status: Json = {
        "Timestamp": timestamp(s.timestamp),
        "State": task_state_name(s.state),
        "Message": s.message,
        "ContainerStatus": {
            "ContainerID": s.container.container_id,
            "PID": s.container.pid,
            "ExitCode": s.container.exit_code,
        },
        "PortStatus": {},
    }
    if s.err:
        status["Err"] = s.err
    out: Json = {
        "ID": t.id,
        **_meta(t.meta),
        "Labels": {},
        "ServiceID": t.service_id,
        "NodeID": t.node_id,
        "Status": status,
        "DesiredState": task_state_name(t.desired_state),
    }
    if t.slot:
        out["Slot"] = t.slot
    if with_spec:
        out["Spec"] = task_spec_json(t.spec)
    return out


def tasks_json(tasks: Iterable[objects_pb2.Task]) -> bytes:
    """A list of tasks as Docker's JSON, encoded.

    The tasks of one service version share one spec, which is most of a task's JSON: each distinct spec
    (by its bytes) is mapped and encoded once and spliced in, so listing a 1,000-task service costs
    about as much as encoding its statuses.
    """
    specs: dict[bytes, str] = {}
    parts = []
    for t in tasks:
        key = t.spec.SerializeToString(deterministic=True)
        spec = specs.get(key)
        if spec is None:
            spec = specs[key] = json.dumps(task_spec_json(t.spec))
        parts.append(f'{json.dumps(task(t, with_spec=False))[:-1]}, "Spec": {spec}}}')
    return f"[{', '.join(parts)}]".encode()


def node(n: objects_pb2.Node) -> Json:
    """A Node as Docker shows it: every Shoal node is a worker (controllers are not nodes)."""
    d = n.description
    return {
        "ID": n.id,
        **_meta(n.meta),
        "Spec": {
            "Name": n.name,
            "Labels": dict(n.spec.labels),
            "Role": "worker",
            "Availability": _AVAILABILITY_NAMES[n.spec.availability],
        },
        "Description": {
            "Hostname": d.hostname or n.name,
            "Platform": {"Architecture": d.platform.architecture, "OS": d.platform.os},
            "Resources": {"NanoCPUs": d.resources.nano_cpus, "MemoryBytes": d.resources.memory_bytes},
            "Engine": {"EngineVersion": d.engine.engine_version, "Labels": dict(d.engine.labels), "Plugins": []},
            "TLSInfo": {},
        },
        "Status": {"State": _NODE_STATES[n.status.state], "Message": n.status.message, "Addr": _host(n.status.addr)},
    }


def _host(addr: str) -> str:
    """Docker shows a node's IP address, without the agent's port."""
    host, sep, port = addr.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else addr


def secret(s: objects_pb2.Secret) -> Json:
    """A Secret as Docker shows it: never its data."""
    return {"ID": s.id, **_meta(s.meta), "Spec": {"Name": s.spec.name, "Labels": dict(s.spec.labels)}}


def config(c: objects_pb2.Config) -> Json:
    """A Config as Docker shows it, data included (base64)."""
    spec = {"Name": c.spec.name, "Labels": dict(c.spec.labels), "Data": base64.b64encode(c.spec.data).decode()}
    return {"ID": c.id, **_meta(c.meta), "Spec": spec}


# ---- other specs: reading ------------------------------------------------------------


def node_spec(doc: Any, current: objects_pb2.Node) -> types_pb2.NodeSpec:
    """A Docker NodeSpec (POST /nodes/{id}/update): labels and availability; the role cannot change."""
    d = fields(obj(doc, "NodeSpec"), "", ("Name", "Labels", "Role", "Availability"))
    name = string(d.get("Name"), "Name")
    if name and name != current.name:
        raise errors.InvalidArgument(f"Name: a node's name cannot be changed (it is {current.name!r})")
    role = string(d.get("Role"), "Role").lower()
    if role not in ("", "worker"):
        raise errors.InvalidArgument(
            f"Role: Shoal nodes are workers and cannot become {role!r}: controllers are separate processes "
            "(swarmd controller)"
        )
    spec = types_pb2.NodeSpec(labels=string_map(d.get("Labels"), "Labels"))
    spec.availability = choice(d.get("Availability"), "Availability", AVAILABILITIES)  # type: ignore[assignment]
    return spec


def file_spec(doc: Any, kind: str) -> types_pb2.FileSpec:
    """A Docker SecretSpec or ConfigSpec: name, labels, base64 data."""
    d = fields(obj(doc, f"{kind}Spec"), "", ("Name", "Labels", "Data"), ("Driver", "Templating"))
    spec = types_pb2.FileSpec(name=string(d.get("Name"), "Name"), labels=string_map(d.get("Labels"), "Labels"))
    data = string(d.get("Data"), "Data")
    try:
        spec.data = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument("Data: not valid base64") from None
    return spec


#: The writer for each kind of object Docker lists (for the routes' generic handlers).
WRITERS: dict[str, Callable[[Any], Json]] = {
    "service": service,
    "task": task,
    "node": node,
    "secret": secret,
    "config": config,
}
