"""Docker JSON <-> Shoal protobuf (controller/dockerapi/mapping.py): every field both ways, and every refusal.

Each supported field of Docker's ServiceSpec is set alone on a minimal spec,
read into Shoal's protobuf, checked there, and written back: the value comes
out at the same Docker path. Unknown keys, unsupported keys with a value and
wrong types are refused with a message naming the field.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from shoal import errors
from shoal.controller.dockerapi import filters, mapping
from shoal.v1 import objects_pb2, types_pb2

BASE: dict[str, Any] = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1"}}}
S = 1_000_000_000


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    here = doc
    keys = path.split(".")
    for key in keys[:-1]:
        here = here.setdefault(key, {})
    here[keys[-1]] = value
    return doc


def _at(doc: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        doc = doc[key]
    return doc


C = "TaskTemplate.ContainerSpec"
T = "TaskTemplate"
ROUND_TRIPS: list[tuple[str, Any, Any]] = [
    ("Name", "api", lambda s: s.name == "api"),
    ("Labels", {"tier": "front"}, lambda s: dict(s.labels) == {"tier": "front"}),
    (f"{C}.Image", "reg:5000/app:2", lambda s: s.task.container.image == "reg:5000/app:2"),
    (f"{C}.Labels", {"a": "b"}, lambda s: dict(s.task.container.labels) == {"a": "b"}),
    (f"{C}.Command", ["/bin/sh", "-c"], lambda s: list(s.task.container.command) == ["/bin/sh", "-c"]),
    (f"{C}.Args", ["echo", "hi"], lambda s: list(s.task.container.args) == ["echo", "hi"]),
    (f"{C}.Hostname", "h1", lambda s: s.task.container.hostname == "h1"),
    (f"{C}.Env", ["A=1", "B=2"], lambda s: list(s.task.container.env) == ["A=1", "B=2"]),
    (f"{C}.Dir", "/srv", lambda s: s.task.container.workdir == "/srv"),
    (f"{C}.User", "nobody", lambda s: s.task.container.user == "nobody"),
    (f"{C}.StopGracePeriod", 3 * S, lambda s: s.task.container.stop_grace_period.seconds == 3),
    (
        f"{C}.Healthcheck",
        {"Test": ["CMD", "true"], "Interval": 2 * S, "Timeout": S, "StartPeriod": 5 * S, "Retries": 4},
        lambda s: (
            (list(s.task.container.healthcheck.test), s.task.container.healthcheck.retries) == (["CMD", "true"], 4)
        ),
    ),
    (
        f"{C}.Secrets",
        [{"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretID": "s1", "SecretName": "pw"}],
        lambda s: (s.task.container.secrets[0].target, s.task.container.secrets[0].mode) == ("pw", 0o400),
    ),
    (
        f"{C}.Configs",
        [
            {
                "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o444},
                "ConfigID": "c1",
                "ConfigName": "app",
            }
        ],
        lambda s: (s.task.container.configs[0].target, s.task.container.configs[0].name) == ("/etc/app.conf", "app"),
    ),
    (
        f"{T}.Resources",
        {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20}, "Reservations": {"MemoryBytes": 16 << 20}},
        lambda s: (
            (s.task.resources.limits.nano_cpus, s.task.resources.reservations.memory_bytes) == (500_000_000, 16 << 20)
        ),
    ),
    (
        f"{T}.RestartPolicy",
        {"Condition": "on-failure", "MaxAttempts": 3, "Delay": 2 * S, "Window": 10 * S},
        lambda s: (
            (s.task.restart.condition, s.task.restart.max_attempts, s.task.restart.window.seconds)
            == (types_pb2.RestartPolicy.ON_FAILURE, 3, 10)
        ),
    ),
    (
        f"{T}.Placement.Constraints",
        ["node.labels.zone==a"],
        lambda s: list(s.task.placement.constraints) == ["node.labels.zone==a"],
    ),
    (
        f"{T}.Placement.Preferences",
        [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
        lambda s: s.task.placement.preferences[0].spread == "node.labels.zone",
    ),
    (f"{T}.Placement.MaxReplicas", 2, lambda s: s.task.placement.max_replicas == 2),
    (f"{T}.ForceUpdate", 7, lambda s: s.task.force_update == 7),
    ("Mode", {"Replicated": {"Replicas": 5}}, lambda s: s.replicated.replicas == 5),
    (
        "Mode",
        {"Replicated": {"Replicas": 0}},
        lambda s: s.WhichOneof("mode") == "replicated" and s.replicated.replicas == 0,
    ),
    ("Mode", {"Global": {}}, lambda s: s.WhichOneof("mode") == "global"),
    (
        "Mode",
        {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 6}},
        lambda s: (s.replicated_job.max_concurrent, s.replicated_job.total_completions) == (2, 6),
    ),
    ("Mode", {"GlobalJob": {}}, lambda s: s.WhichOneof("mode") == "global_job"),
    (
        "UpdateConfig",
        {
            "Parallelism": 2,
            "Delay": S,
            "FailureAction": "rollback",
            "Monitor": 4 * S,
            "MaxFailureRatio": 0.5,
            "Order": "start-first",
        },
        lambda s: (
            (s.update.parallelism, s.update.failure_action, s.update.order)
            == (2, types_pb2.UpdateConfig.ROLLBACK, types_pb2.UpdateConfig.START_FIRST)
        ),
    ),
    (
        "RollbackConfig",
        {
            "Parallelism": 0,
            "Delay": 0,
            "FailureAction": "continue",
            "Monitor": S,
            "MaxFailureRatio": 0.25,
            "Order": "stop-first",
        },
        lambda s: (s.rollback.failure_action, s.rollback.max_failure_ratio) == (types_pb2.UpdateConfig.CONTINUE, 0.25),
    ),
    (
        "EndpointSpec",
        {"Mode": "vip", "Ports": [{"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}]},
        lambda s: (
            (s.task.container.ports[0].target, s.task.container.ports[0].published, s.task.container.ports[0].protocol)
            == (53, 5353, "udp")
        ),
    ),
]


@pytest.mark.parametrize(("path", "value", "check"), ROUND_TRIPS, ids=[f"{p}={v}"[:60] for p, v, _ in ROUND_TRIPS])
def test_each_field_maps_to_protobuf_and_back(path: str, value: Any, check: Any) -> None:
    spec = mapping.service_spec(_with(path, value))
    assert check(spec)
    assert _at(mapping.service_spec_json(spec), path) == value
    # And what was written reads back to the same (the CLI's update sends inspect's spec back).
    written = mapping.service_spec_json(spec)
    assert mapping.service_spec_json(mapping.service_spec(written)) == written


REFUSED = [
    (_with("Bogus", 1), "unknown field Bogus"),
    (_with(f"{C}.Mounts", [{"Type": "volume", "Target": "/data"}]), f"{C}.Mounts is not supported by Shoal"),
    (_with(f"{C}.TTY", True), f"{C}.TTY is not supported by Shoal"),
    (_with(f"{T}.Networks", [{"Target": "net"}]), f"{T}.Networks is not supported by Shoal"),
    (_with(f"{T}.LogDriver", {"Name": "syslog"}), f"{T}.LogDriver is not supported by Shoal"),
    (_with(f"{T}.Placement.Platforms", [{"OS": "linux"}]), f"{T}.Placement.Platforms is not supported by Shoal"),
    (_with(f"{T}.Resources.Limits.Pids", 10), f"{T}.Resources.Limits.Pids is not supported by Shoal"),
    (_with(f"{T}.Runtime", "plugin"), "Runtime 'plugin' is not supported by Shoal"),
    (_with("EndpointSpec", {"Mode": "dnsrr"}), "EndpointSpec.Mode 'dnsrr' is not supported by Shoal"),
    (
        _with("EndpointSpec", {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}),
        "PublishMode ingress (the default)",
    ),
    (_with(f"{C}.Secrets", [{"File": {"Name": "pw", "UID": "1000"}, "SecretName": "pw"}]), "File.UID other than 0"),
    (_with("Mode", {"Replicated": {"Replicas": "three"}}), "Mode.Replicated.Replicas: expected an integer, got string"),
    (_with("Mode", {"Replicated": {"Replicas": 1.5}}), "Mode.Replicated.Replicas: expected an integer, got number"),
    (_with("Mode", {"Replicated": {"Replicas": True}}), "expected an integer, got boolean"),
    (_with("Mode", {"Replicated": {"Replicas": -1}}), "Mode.Replicated.Replicas: must be >= 0"),
    (_with("Mode", {"Global": {}, "Replicated": {"Replicas": 1}}), "give one of"),
    (_with(f"{C}.Env", "A=1"), f"{C}.Env: expected an array of strings, got string"),
    (_with(f"{C}.Env", ["A=1", 2]), f"{C}.Env[1]: expected a string, got number"),
    (_with("Labels", {"a": 1}), "Labels.a: expected a string"),
    (_with(f"{T}.RestartPolicy", {"Condition": "always"}), "unknown value 'always'"),
    (_with("TaskTemplate", []), "TaskTemplate: expected an object, got array"),
    ([], "ServiceSpec: expected an object, got array"),
]


@pytest.mark.parametrize(("doc", "message"), REFUSED, ids=[m[:50] for _, m in REFUSED])
def test_what_shoal_does_not_do_is_refused_by_name(doc: Any, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        mapping.service_spec(doc)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_empty_values_of_unsupported_fields_are_what_clients_send_for_defaults() -> None:
    # docker stack deploy sends these on every service; they mean "not set".
    doc = _with(f"{C}.DNSConfig", {"Nameservers": None, "Search": [], "Options": None})
    doc["TaskTemplate"]["ContainerSpec"].update(TTY=False, Mounts=[], Isolation="default", Sysctls={})
    doc["TaskTemplate"]["Networks"] = []
    assert mapping.service_spec(doc).task.container.image == "busybox:1"


def test_keys_match_case_insensitively_as_in_go() -> None:
    spec = mapping.service_spec(
        {"name": "web", "taskTemplate": {"containerSpec": {"image": "b"}}, "Mode": {"replicated": {"Replicas": 2}}}
    )
    assert (spec.name, spec.task.container.image, spec.replicated.replicas) == ("web", "b", 2)
    with pytest.raises(errors.InvalidArgument, match="given twice"):
        mapping.service_spec({**BASE, "name": "x"})


def test_objects_carry_their_version_and_docker_names() -> None:
    task = objects_pb2.Task(id="t1", service_id="s1", slot=2, node_id="n1", desired_state=types_pb2.RUNNING)
    task.meta.version = 42
    task.status.state = types_pb2.RUNNING
    task.status.err = "boom"
    doc = mapping.task(task)
    assert (doc["Version"], doc["Slot"], doc["DesiredState"], doc["Status"]["State"], doc["Status"]["Err"]) == (
        {"Index": 42},
        2,
        "running",
        "running",
        "boom",
    )
    assert doc["CreatedAt"] == mapping.ZERO_TIME
    node = objects_pb2.Node(id="n1", name="lab-1")
    node.spec.availability = types_pb2.NodeSpec.DRAIN
    node.status.state = types_pb2.NodeStatus.READY
    node.status.addr = "10.0.0.5:4250"
    doc = mapping.node(node)
    assert (doc["Spec"]["Role"], doc["Spec"]["Availability"], doc["Status"]["State"], doc["Status"]["Addr"]) == (
        "worker",
        "drain",
        "ready",
        "10.0.0.5",
    )
    svc = objects_pb2.Service(id="s1", spec=mapping.service_spec(BASE))
    svc.update_status.state = types_pb2.UpdateStatus.ROLLBACK_COMPLETED
    assert mapping.service(svc)["UpdateStatus"]["State"] == "rollback_completed"
    assert "UpdateStatus" not in mapping.service(objects_pb2.Service(id="s2", spec=svc.spec))


def test_node_spec_changes_labels_and_availability_but_never_the_role() -> None:
    current = objects_pb2.Node(id="n1", name="lab-1")
    spec = mapping.node_spec(
        {"Name": "lab-1", "Role": "worker", "Availability": "pause", "Labels": {"z": "a"}}, current
    )
    assert (spec.availability, dict(spec.labels)) == (types_pb2.NodeSpec.PAUSE, {"z": "a"})
    with pytest.raises(errors.InvalidArgument, match="cannot become 'manager'"):
        mapping.node_spec({"Role": "manager"}, current)
    with pytest.raises(errors.InvalidArgument, match="name cannot be changed"):
        mapping.node_spec({"Name": "other"}, current)


def test_secret_and_config_specs() -> None:
    spec = mapping.file_spec({"Name": "pw", "Labels": {"a": "b"}, "Data": base64.b64encode(b"s3").decode()}, "Secret")
    assert (spec.name, dict(spec.labels), spec.data) == ("pw", {"a": "b"}, b"s3")
    secret = objects_pb2.Secret(id="x", spec=types_pb2.FileSpec(name="pw"), sealed=b"ciphertext")
    assert "Data" not in mapping.secret(secret)["Spec"]
    config = objects_pb2.Config(id="c", spec=spec)
    assert base64.b64decode(mapping.config(config)["Spec"]["Data"]) == b"s3"
    with pytest.raises(errors.InvalidArgument, match="Driver is not supported"):
        mapping.file_spec({"Name": "pw", "Data": "", "Driver": {"Name": "vault"}}, "Secret")


def test_docker_filters() -> None:
    f = filters.parse('{"name": {"web": true}, "label": ["a=b"]}', ("name", "label"))
    assert f == {"name": ["web"], "label": ["a=b"]}
    assert filters.prefix(f, "name", "web-1") and not filters.prefix(f, "name", "api")
    assert filters.labels(f, "label", {"a": "b"}) and not filters.labels(f, "label", {"a": "c"})
    with pytest.raises(errors.InvalidArgument, match="invalid filter 'colour'"):
        filters.parse('{"colour": ["red"]}', ("name",))
    with pytest.raises(errors.InvalidArgument, match="not JSON"):
        filters.parse("{", ("name",))


def test_a_task_list_encodes_each_spec_once_and_the_same_as_one_by_one() -> None:
    import json

    spec = mapping.service_spec(BASE).task
    other = types_pb2.TaskSpec()
    other.CopyFrom(spec)
    other.container.env.append("A=1")
    tasks = [objects_pb2.Task(id=f"t{i}", slot=i + 1, spec=spec if i % 2 else other) for i in range(4)]
    assert json.loads(mapping.tasks_json(tasks)) == [mapping.task(t) for t in tasks]
    assert json.loads(mapping.tasks_json([])) == []
