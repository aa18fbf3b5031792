"""swarmctl service: what each verb sends to the Control API and what it prints."""

from __future__ import annotations

import json
import re

from ctl_fakes import FakeControl, ts

from shoal import units
from shoal.v1 import objects_pb2, types_pb2


def test_create_builds_the_spec_from_flags(ctl, fake: FakeControl) -> None:
    result = ctl(
        "service", "create", "--detach", "--name", "web", "--image", "busybox:1.36", "--replicas", "3",
        "--env", "A=1", "--env", "B=x=y", "--label", "team=core", "--container-label", "c=d",
        "--constraint", "node.labels.zone==a", "--constraint", "node.hostname!=lab-1",
        "--reserve-cpu", "0.5", "--reserve-memory", "256M", "--limit-cpu", "2", "--limit-memory", "1G",
        "--restart-delay", "1m30s", "--update-parallelism", "2", "--update-delay", "10s",
        "--", "sh", "-c", "sleep 1000",
    )  # fmt: skip

    assert result.code == 0, result.err
    (request,) = fake.calls("CreateService")
    spec = request.spec
    assert result.out.strip() == next(iter(fake.services))
    assert spec.name == "web"
    assert spec.replicated.replicas == 3
    assert dict(spec.labels) == {"team": "core"}
    container = spec.task.container
    assert container.image == "busybox:1.36"
    assert list(container.env) == ["A=1", "B=x=y"]
    assert dict(container.labels) == {"c": "d"}
    assert list(container.command) == ["sh"]
    assert list(container.args) == ["-c", "sleep 1000"]
    assert list(spec.task.placement.constraints) == ["node.labels.zone==a", "node.hostname!=lab-1"]
    assert spec.task.resources.reservations == types_pb2.Resources(nano_cpus=500_000_000, memory_bytes=256 << 20)
    assert spec.task.resources.limits == types_pb2.Resources(nano_cpus=2_000_000_000, memory_bytes=1 << 30)
    assert spec.task.restart.delay == units.to_duration(90)
    assert spec.update.parallelism == 2
    assert spec.update.delay == units.to_duration(10)
    assert len(request.request_id) == 32


def test_create_defaults_leave_the_rest_to_the_server(ctl, fake: FakeControl) -> None:
    result = ctl("service", "create", "--detach", "--name", "web", "--image", "busybox")

    assert result.code == 0, result.err
    (request,) = fake.calls("CreateService")
    assert request.spec.replicated.replicas == 1
    assert not request.spec.task.HasField("restart")
    assert not request.spec.task.HasField("resources")
    assert request.spec.update.parallelism == 1  # as docker service create
    assert not request.spec.task.container.command


def test_create_with_only_an_update_delay_keeps_parallelism_one(ctl, fake: FakeControl) -> None:
    result = ctl("service", "create", "--detach", "--name", "web", "--image", "busybox", "--update-delay", "2s")

    assert result.code == 0, result.err
    (request,) = fake.calls("CreateService")
    assert request.spec.update.parallelism == 1
    assert request.spec.update.delay.seconds == 2


def test_create_global_service(ctl, fake: FakeControl) -> None:
    result = ctl("service", "create", "--detach", "--name", "agent", "--image", "busybox", "--mode", "global")

    assert result.code == 0, result.err
    (request,) = fake.calls("CreateService")
    assert request.spec.WhichOneof("mode") == "global"


def test_create_takes_the_command_after_the_options_without_dashes(ctl, fake: FakeControl) -> None:
    result = ctl("service", "create", "--detach", "--name", "web", "--image", "busybox", "sh", "-c", "true")

    assert result.code == 0, result.err
    container = fake.calls("CreateService")[0].spec.task.container
    assert (list(container.command), list(container.args)) == (["sh"], ["-c", "true"])


def test_each_create_has_a_fresh_request_id(ctl, fake: FakeControl) -> None:
    ctl("service", "create", "--detach", "--name", "a", "--image", "busybox")
    ctl("service", "create", "--detach", "--name", "b", "--image", "busybox")

    first, second = fake.calls("CreateService")
    assert first.request_id != second.request_id


def _updated_spec(fake: FakeControl) -> types_pb2.ServiceSpec:
    return fake.calls("UpdateService")[-1].spec


def _web(fake: FakeControl) -> objects_pb2.Service:
    fake.add_service("svc1abcdef", "web", replicas=2)
    svc = fake.services["svc1abcdef"]
    svc.spec.labels["team"] = "core"
    svc.spec.task.container.env.extend(["A=1", "B=2", "C=3"])
    svc.spec.task.container.command.append("sleep")
    svc.spec.task.container.args.append("1000")
    svc.spec.task.placement.constraints.extend(["node.labels.zone==a", "node.role==worker"])
    svc.spec.task.force_update = 4
    return svc


def test_update_changes_only_the_given_flags(ctl, fake: FakeControl) -> None:
    svc = _web(fake)
    before = types_pb2.ServiceSpec()
    before.CopyFrom(svc.spec)
    version = svc.meta.version

    result = ctl(
        "service", "update", "--detach", "web", "--env", "B=20", "--env", "D=4", "--env-rm", "A",
        "--label", "tier=front", "--label-rm", "team",
        "--constraint", "node.labels.disk==ssd", "--constraint-rm", "node.role == worker",
        "--image", "busybox:2",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert result.out.strip() == "svc1abcdef"
    (request,) = fake.calls("UpdateService")
    assert request.ref == "svc1abcdef"
    assert request.version == version
    spec = request.spec
    assert list(spec.task.container.env) == ["B=20", "C=3", "D=4"]
    assert dict(spec.labels) == {"tier": "front"}
    assert list(spec.task.placement.constraints) == ["node.labels.zone==a", "node.labels.disk==ssd"]
    assert spec.task.container.image == "busybox:2"
    # Untouched: replicas, command and args, force_update.
    assert spec.replicated.replicas == 2
    assert list(spec.task.container.command) == ["sleep"]
    assert list(spec.task.container.args) == ["1000"]
    assert spec.task.force_update == before.task.force_update


def test_update_without_flags_sends_the_spec_unchanged(ctl, fake: FakeControl) -> None:
    svc = _web(fake)

    assert ctl("service", "update", "--detach", "web").code == 0

    assert _updated_spec(fake) == svc.spec


def test_update_force_increments_force_update(ctl, fake: FakeControl) -> None:
    _web(fake)

    assert ctl("service", "update", "--detach", "--force", "web").code == 0

    assert _updated_spec(fake).task.force_update == 5


def test_update_replaces_command_and_args(ctl, fake: FakeControl) -> None:
    _web(fake)

    assert ctl("service", "update", "--detach", "web", "--replicas", "5", "--", "top", "-b").code == 0

    spec = _updated_spec(fake)
    assert (list(spec.task.container.command), list(spec.task.container.args)) == (["top"], ["-b"])
    assert spec.replicated.replicas == 5


def test_update_retries_on_a_version_conflict(ctl, fake: FakeControl) -> None:
    _web(fake)
    fake.conflicts = 2

    result = ctl("service", "update", "--detach", "web", "--force")

    assert result.code == 0, result.err
    requests = fake.calls("UpdateService")
    assert len(requests) == 3
    assert len(fake.calls("GetService")) == 3
    # Each attempt re-reads: a newer version, and --force counted once, not three times.
    assert requests[0].version < requests[1].version < requests[2].version
    assert {r.spec.task.force_update for r in requests} == {5}
    assert fake.services["svc1abcdef"].spec.task.force_update == 5


def test_update_gives_up_after_three_retries(ctl, fake: FakeControl) -> None:
    _web(fake)
    fake.conflicts = 10

    result = ctl("service", "update", "--detach", "web", "--image", "x")

    assert result.code == 1
    assert len(fake.calls("UpdateService")) == 4
    assert result.err.count("\n") == 1
    assert "changed since version" in result.err and "gave up after 4 attempts" in result.err


def test_scale_sets_replicas_of_each_service(ctl, fake: FakeControl) -> None:
    _web(fake)
    fake.add_service("svc2", "api", replicas=1)

    result = ctl("service", "scale", "web=7", "api=0")

    assert result.code == 0, result.err
    assert result.out == "web scaled to 7\napi scaled to 0\n"
    assert fake.services["svc1abcdef"].spec.replicated.replicas == 7
    assert fake.services["svc2"].spec.replicated.replicas == 0
    # Nothing but replicas changed.
    assert fake.services["svc1abcdef"].spec.task.force_update == 4


def test_scale_of_a_global_service_fails_but_the_others_go_on(ctl, fake: FakeControl) -> None:
    fake.add_service("svcg", "agent", replicas=None)
    fake.add_service("svc2", "api", replicas=1)

    result = ctl("service", "scale", "agent=3", "api=2")

    assert result.code == 1
    assert result.out == "api scaled to 2\n"
    assert result.err.startswith("swarmctl: ") and "global" in result.err
    assert result.err.count("\n") == 1
    assert [r.ref for r in fake.calls("UpdateService")] == ["svc2"]
    assert fake.services["svcg"].spec.WhichOneof("mode") == "global"


def test_refs_are_passed_through_as_given(ctl, fake: FakeControl) -> None:
    _web(fake)

    assert ctl("service", "inspect", "svc1a").code == 0
    assert ctl("service", "update", "--detach", "web", "--image", "y").code == 0

    assert [r.ref for r in fake.calls("GetService")] == ["svc1a", "web"]
    # The write addresses the object read, by ID.
    assert fake.calls("UpdateService")[0].ref == "svc1abcdef"


def test_rm_removes_each_and_reports_failures(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    fake.add_service("svc2", "api")

    result = ctl("service", "rm", "web", "nope", "svc2")

    assert result.code == 1
    assert result.out == "web\napi\n"
    assert result.err == 'swarmctl: service "nope" not found\n'
    assert fake.services == {}
    assert [r.ref for r in fake.calls("RemoveService")] == ["svc1", "svc2"]


def test_ls_table(ctl, fake: FakeControl) -> None:
    fake.add_service("0123456789abcdef", "web", replicas=3, image="busybox:1.36")
    fake.add_service("fedcba9876543210", "agent", replicas=None)
    fake.add_node("n1", "lab-1")
    fake.running["0123456789abcdef"] = 2
    fake.services["0123456789abcdef"].update_status.state = types_pb2.UpdateStatus.UPDATING

    result = ctl("service", "ls")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "UPDATE"]
    assert lines[1].split() == ["fedcba987654", "agent", "global", "0/1", "busybox"]
    assert lines[2].split() == ["0123456789ab", "web", "replicated", "2/3", "busybox:1.36", "UPDATING"]
    # Columns are aligned: every NAME starts where the header's does.
    column = lines[0].index("NAME")
    assert all(line[column:].split()[0] in ("NAME", "agent", "web") for line in lines)


def test_ls_quiet_and_json(ctl, fake: FakeControl) -> None:
    fake.add_service("0123456789abcdef", "web", replicas=3)
    fake.services["0123456789abcdef"].spec.task.restart.condition = types_pb2.RestartPolicy.ON_FAILURE

    quiet = ctl("service", "ls", "-q")
    as_json = ctl("--format", "json", "service", "ls")

    assert quiet.out == "0123456789abcdef\n"
    data = json.loads(as_json.out)
    assert isinstance(data, list) and len(data) == 1
    assert data[0]["id"] == "0123456789abcdef"
    assert data[0]["spec"]["replicated"]["replicas"] == "3"  # uint64 is a JSON string
    assert data[0]["spec"]["task"]["restart"]["condition"] == "ON_FAILURE"
    assert data[0]["meta"]["createdAt"] == "1970-01-01T00:16:40Z"


def test_inspect_json_is_an_object_for_one_ref_and_a_list_for_several(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    fake.add_service("svc2", "api")

    one = json.loads(ctl("--format", "json", "service", "inspect", "web").out)
    two = json.loads(ctl("--format", "json", "service", "inspect", "web", "api").out)

    assert one["spec"]["name"] == "web"
    assert [s["spec"]["name"] for s in two] == ["web", "api"]


def test_inspect_human(ctl, fake: FakeControl) -> None:
    svc = _web(fake)
    svc.spec.task.resources.reservations.memory_bytes = 512 << 20
    svc.spec.task.resources.limits.nano_cpus = 1_500_000_000

    result = ctl("service", "inspect", "web")

    assert result.code == 0, result.err
    fields = {}
    for line in result.out.splitlines():
        if not line.startswith(" "):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    assert fields["ID"] == "svc1abcdef"
    assert fields["Name"] == "web"
    assert fields["Replicas"] == "2"
    assert fields["Command"] == "sleep"
    assert fields["Reservations"] == "memory=512MiB"
    assert fields["Limits"] == "cpu=1.5"
    assert fields["Constraints"] == "node.labels.zone==a"
    assert "node.role==worker" in result.out


def _task(task_id: str, slot: int, *, created: int, state: int, desired: int, node: str = "", err: str = ""):
    task = objects_pb2.Task(
        id=task_id, service_id="svc1", service_name="web", slot=slot, node_id=node, desired_state=desired
    )
    task.meta.created_at.CopyFrom(ts(created))
    task.status.state = state
    task.status.timestamp.CopyFrom(ts(created))
    task.status.err = err
    task.spec.container.image = "busybox"
    return task


def test_ps_lists_history_by_slot_newest_first(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web", replicas=2)
    fake.add_node("node1", "lab-1")
    fake.add_task(_task("t-old", 1, created=100, state=types_pb2.FAILED, desired=types_pb2.SHUTDOWN,
                        node="node1", err="exit status 1 " + "x" * 100))  # fmt: skip
    fake.add_task(_task("t-new", 1, created=200, state=types_pb2.RUNNING, desired=types_pb2.RUNNING, node="node1"))
    fake.add_task(_task("t-two", 2, created=150, state=types_pb2.PENDING, desired=types_pb2.RUNNING))

    result = ctl("service", "ps", "web")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"]
    assert re.split(r"\s{2,}", lines[0]) == header
    assert [line.split()[:4] for line in lines[1:]] == [
        ["t-new", "web.1", "busybox", "lab-1"],
        ["t-old", "web.1", "busybox", "lab-1"],
        ["t-two", "web.2", "busybox", "-"],
    ]
    assert re.search(r"   Running +Running \d+ years ago$", lines[1])
    assert re.search(r"   Shutdown +Failed \d+ years ago   ", lines[2])
    assert re.search(r"   Running +Pending \d+ years ago$", lines[3])
    error = lines[2][lines[0].index("ERROR") :]
    assert error.startswith("exit status 1 x") and error.endswith("...") and len(error) == 60
    assert fake.calls("ListTasks")[0].service_ids == ["svc1"]
    assert not fake.calls("ListTasks")[0].desired_states


def test_ps_json_and_quiet(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    fake.add_task(_task("t1", 1, created=100, state=types_pb2.RUNNING, desired=types_pb2.RUNNING))

    data = json.loads(ctl("--format", "json", "service", "ps", "web").out)
    quiet = ctl("service", "ps", "-q", "web")

    assert [t["id"] for t in data] == ["t1"]
    assert data[0]["desiredState"] == "RUNNING"
    assert data[0]["status"]["state"] == "RUNNING"
    assert data[0]["serviceName"] == "web"
    assert quiet.out == "t1\n"


def test_ps_names_global_tasks_by_node(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web", replicas=None)
    fake.add_node("node1", "lab-1")
    fake.add_task(_task("t1", 0, created=100, state=types_pb2.RUNNING, desired=types_pb2.RUNNING, node="node1"))

    result = ctl("service", "ps", "web")

    assert result.out.splitlines()[1].split()[1] == "web.lab-1"


def test_format_may_also_follow_the_verb(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")

    listed = json.loads(ctl("service", "ls", "--format", "json").out)
    inspected = json.loads(ctl("service", "inspect", "--format", "json", "web").out)
    table = ctl("--format", "json", "service", "ls", "--format", "table")

    assert [s["id"] for s in listed] == ["svc1"]
    assert inspected["id"] == "svc1"
    assert table.out.startswith("ID ")


def test_negative_replicas_reach_the_server(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")

    created = ctl("service", "create", "--detach", "--name", "x", "--image", "busybox", "--replicas", "-1")
    scaled = ctl("service", "scale", "web=-3")

    assert (created.code, scaled.code) == (1, 1)
    assert fake.calls("CreateService")[0].spec.replicated.replicas == -1
    assert fake.calls("UpdateService")[0].spec.replicated.replicas == -3
    assert scaled.err == 'swarmctl: service "web": replicas must be >= 0\n'
    assert fake.services["svc1"].spec.replicated.replicas == 1
