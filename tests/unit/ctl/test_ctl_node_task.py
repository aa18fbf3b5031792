"""swarmctl node and task: requests sent and output printed."""

from __future__ import annotations

import json

from ctl_fakes import FakeControl, ts

from shoal.v1 import objects_pb2, types_pb2


def test_node_ls_table_quiet_and_json(ctl, fake: FakeControl) -> None:
    fake.add_node("aaaaaaaaaaaaaaaa1", "lab-1", addr="10.0.0.1:4241")
    fake.add_node("bbbbbbbbbbbbbbbb2", "lab-2", state=types_pb2.NodeStatus.DOWN, addr="10.0.0.2:4241")
    fake.nodes["bbbbbbbbbbbbbbbb2"].spec.availability = types_pb2.NodeSpec.DRAIN

    table = ctl("node", "ls")
    quiet = ctl("node", "ls", "-q")
    data = json.loads(ctl("--format", "json", "node", "ls").out)

    lines = table.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "AVAILABILITY", "ADDRESS", "ENGINE"]
    assert lines[1].split() == ["aaaaaaaaaaaa", "lab-1", "READY", "ACTIVE", "10.0.0.1:4241", "27.0.1"]
    assert lines[2].split() == ["bbbbbbbbbbbb", "lab-2", "DOWN", "DRAIN", "10.0.0.2:4241", "27.0.1"]
    assert quiet.out == "aaaaaaaaaaaaaaaa1\nbbbbbbbbbbbbbbbb2\n"
    assert [n["name"] for n in data] == ["lab-1", "lab-2"]
    assert data[1]["spec"]["availability"] == "DRAIN"
    assert data[1]["status"]["state"] == "DOWN"
    assert data[0]["description"]["engine"]["engineVersion"] == "27.0.1"


def test_node_inspect(ctl, fake: FakeControl) -> None:
    fake.add_node("node1abc", "lab-1")
    node = fake.nodes["node1abc"]
    node.spec.labels["zone"] = "a"
    node.description.resources.nano_cpus = 4_000_000_000
    node.description.resources.memory_bytes = 8 << 30
    node.description.platform.os = "linux"
    node.description.platform.architecture = "x86_64"
    node.status.message = "heartbeat ok"

    human = ctl("node", "inspect", "node1")
    data = json.loads(ctl("--format", "json", "node", "inspect", "lab-1").out)

    assert human.code == 0, human.err
    for expected in ("zone=a", "linux/x86_64", "8GiB", "heartbeat ok", "READY", "ACTIVE"):
        assert expected in human.out
    assert data["id"] == "node1abc"
    assert [r.ref for r in fake.calls("GetNode")] == ["node1", "lab-1"]


def test_node_update_availability_and_labels(ctl, fake: FakeControl) -> None:
    fake.add_node("node1", "lab-1")
    fake.nodes["node1"].spec.labels.update({"zone": "a", "old": "x"})
    version = fake.nodes["node1"].meta.version

    result = ctl("node", "update", "lab-1", "--availability", "drain", "--label-add", "zone=b", "--label-rm", "old")

    assert result.code == 0, result.err
    assert result.out == "node1\n"
    (request,) = fake.calls("UpdateNode")
    assert (request.ref, request.version) == ("node1", version)
    assert request.spec.availability == types_pb2.NodeSpec.DRAIN
    assert dict(request.spec.labels) == {"zone": "b"}


def test_node_update_retries_on_conflict(ctl, fake: FakeControl) -> None:
    fake.add_node("node1", "lab-1")
    fake.conflicts = 3

    result = ctl("node", "update", "lab-1", "--availability", "pause")

    assert result.code == 0, result.err
    assert len(fake.calls("UpdateNode")) == 4
    assert fake.nodes["node1"].spec.availability == types_pb2.NodeSpec.PAUSE


def test_node_drain_shortcut(ctl, fake: FakeControl) -> None:
    fake.add_node("node1", "lab-1")

    result = ctl("node", "drain", "lab-1")

    assert (result.code, result.out) == (0, "lab-1\n")
    assert fake.nodes["node1"].spec.availability == types_pb2.NodeSpec.DRAIN


def test_node_rm_needs_force_for_a_ready_node(ctl, fake: FakeControl) -> None:
    fake.add_node("node1", "lab-1")

    refused = ctl("node", "rm", "lab-1")
    forced = ctl("node", "rm", "--force", "lab-1")

    assert refused.code == 1
    assert refused.err == 'swarmctl: node "lab-1" is READY; drain it or use --force\n'
    assert (forced.code, forced.out) == (0, "lab-1\n")
    assert [r.force for r in fake.calls("RemoveNode")] == [False, True]
    assert fake.nodes == {}


def _task(task_id: str, service_id: str, name: str, node: str, desired: int) -> objects_pb2.Task:
    task = objects_pb2.Task(
        id=task_id, service_id=service_id, service_name=name, slot=1, node_id=node, desired_state=desired
    )
    task.spec.container.image = "busybox"
    task.meta.created_at.CopyFrom(ts(100))
    return task


def _cluster(fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    fake.add_service("svc2", "api")
    fake.add_node("node1", "lab-1")
    fake.add_node("node2", "lab-2")
    fake.add_task(_task("t1", "svc1", "web", "node1", types_pb2.RUNNING))
    fake.add_task(_task("t2", "svc1", "web", "node2", types_pb2.SHUTDOWN))
    fake.add_task(_task("t3", "svc2", "api", "node2", types_pb2.READY))


def test_task_ls_shows_live_tasks_unless_all(ctl, fake: FakeControl) -> None:
    _cluster(fake)

    live = ctl("task", "ls", "-q")
    every = ctl("task", "ls", "-a", "-q")

    assert live.out.split() == ["t3", "t1"]
    assert sorted(every.out.split()) == ["t1", "t2", "t3"]
    live_request, all_request = fake.calls("ListTasks")
    assert list(live_request.desired_states) == [types_pb2.READY, types_pb2.RUNNING]
    assert not all_request.desired_states


def test_task_ls_resolves_service_and_node_refs(ctl, fake: FakeControl) -> None:
    _cluster(fake)

    result = ctl("task", "ls", "--service", "web", "--node", "lab-1")

    assert result.code == 0, result.err
    (request,) = fake.calls("ListTasks")
    assert (list(request.service_ids), list(request.node_ids)) == (["svc1"], ["node1"])
    lines = result.out.splitlines()
    assert lines[1].split()[:4] == ["t1", "web.1", "busybox", "lab-1"]


def test_task_inspect_shows_the_whole_error(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    reason = "no suitable node (2 nodes not available for new tasks; 1 node short of memory: " + "x" * 80 + ")"
    task = _task("task1abc", "svc1", "web", "", types_pb2.RUNNING)
    task.status.state = types_pb2.PENDING
    task.status.err = reason
    fake.add_task(task)

    human = ctl("task", "inspect", "task1")
    data = json.loads(ctl("--format", "json", "task", "inspect", "task1abc").out)

    assert human.code == 0, human.err
    assert reason in human.out
    assert "PENDING" in human.out and "RUNNING" in human.out
    assert data["status"]["err"] == reason
    assert data["status"]["state"] == "PENDING"


def test_task_inspect_of_a_finished_task_shows_exit_code_and_node(ctl, fake: FakeControl) -> None:
    fake.add_node("node1", "lab-1")
    task = _task("task1", "svc1", "web", "node1", types_pb2.SHUTDOWN)
    task.status.state = types_pb2.FAILED
    task.status.container.container_id = "c0ffee"
    task.status.container.exit_code = 137
    fake.add_task(task)

    result = ctl("task", "inspect", "task1")

    assert result.code == 0, result.err
    assert "c0ffee" in result.out and "137" in result.out and "lab-1 (node1)" in result.out
