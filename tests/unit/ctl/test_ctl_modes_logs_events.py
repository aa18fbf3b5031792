"""swarmctl: modes and placement flags, `service logs`/`task logs` and `events` over a fake controller."""

from __future__ import annotations

import datetime
import json

import grpc
import pytest
from ctl_fakes import FakeControl, Follower

from shoal.v1 import agent_pb2, control_pb2, objects_pb2, types_pb2


class JobCounts(FakeControl):
    """A fake controller whose `service ls` reports completions."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, control_pb2.ServiceReplicas] = {}

    async def ListServices(self, request, context):  # noqa: N802
        reply = await super().ListServices(request, context)
        for r in reply.replicas:
            if r.service_id in self.counts:
                r.CopyFrom(self.counts[r.service_id])
        return reply


@pytest.fixture
def fake() -> FakeControl:
    return JobCounts()


# ---- modes and placement -----------------------------------------------------------


def created(fake: FakeControl) -> types_pb2.ServiceSpec:
    (request,) = fake.calls("CreateService")
    return request.spec


def test_create_a_replicated_job(ctl, fake: FakeControl) -> None:
    result = ctl(
        "service", "create", "--name", "batch", "--image", "busybox", "--mode", "replicated-job",
        "--replicas", "6", "--max-concurrent", "2",
    )  # fmt: skip
    assert result.code == 0, result.err
    job = created(fake).replicated_job
    assert (job.total_completions, job.max_concurrent) == (6, 2)


def test_a_replicated_job_defaults_to_one_completion(ctl, fake: FakeControl) -> None:
    assert ctl("service", "create", "--name", "once", "--image", "busybox", "--mode", "replicated-job").code == 0
    job = created(fake).replicated_job
    assert (job.total_completions, job.max_concurrent) == (1, 0)  # the controller makes 0 "as many as completions"


def test_create_a_global_job(ctl, fake: FakeControl) -> None:
    assert ctl("service", "create", "--name", "setup", "--image", "busybox", "--mode", "global-job").code == 0
    assert created(fake).WhichOneof("mode") == "global_job"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mode", "global-job", "--replicas", "2"), "--replicas does not apply to a global-job service"),
        (
            (
                "--max-concurrent",
                "2",
            ),
            "--max-concurrent applies to replicated jobs only",
        ),
        (("--mode", "replicated-job", "--max-concurrent", "-1"), "max-concurrent must be >= 0"),
        (("--placement-pref", "zone"), "expected spread=node.labels.KEY"),
        (("--replicas-max-per-node", "-2"), "replicas-max-per-node must be >= 0"),
    ],
)
def test_bad_mode_and_placement_flags_are_one_line_errors(
    ctl, fake: FakeControl, args: tuple[str, ...], message: str
) -> None:
    result = ctl("service", "create", "--name", "x", "--image", "busybox", *args)
    assert result.code == 1 and message in result.err and result.err.count("\n") == 1
    assert fake.calls("CreateService") == []


def test_placement_preferences_and_max_per_node_are_sent_and_updated(ctl, fake: FakeControl) -> None:
    result = ctl(
        "service", "create", "--detach", "--name", "web", "--image", "busybox",
        "--placement-pref", "spread=node.labels.zone",
        "--placement-pref", "spread=node.labels.rack", "--replicas-max-per-node", "2",
    )  # fmt: skip
    assert result.code == 0, result.err
    placement = created(fake).task.placement
    assert [p.spread for p in placement.preferences] == ["node.labels.zone", "node.labels.rack"]
    assert placement.max_replicas == 2
    result = ctl("service", "update", "--detach", "web", "--placement-pref-rm", "spread=node.labels.zone",
                 "--replicas-max-per-node", "0")  # fmt: skip
    assert result.code == 0, result.err
    (update,) = fake.calls("UpdateService")
    assert [p.spread for p in update.spec.task.placement.preferences] == ["node.labels.rack"]
    assert update.spec.task.placement.max_replicas == 0


def test_scaling_a_replicated_job_sets_its_completions(ctl, fake: FakeControl) -> None:
    ctl("service", "create", "--name", "batch", "--image", "busybox", "--mode", "replicated-job")
    assert ctl("service", "scale", "batch=4").code == 0
    (update,) = fake.calls("UpdateService")
    assert update.spec.replicated_job.total_completions == 4


def test_service_ls_and_inspect_show_a_job_and_its_completions(ctl, fake: JobCounts) -> None:
    ctl("service", "create", "--name", "batch", "--image", "busybox", "--mode", "replicated-job",
        "--replicas", "5", "--max-concurrent", "2", "--placement-pref", "spread=node.labels.zone")  # fmt: skip
    svc = next(iter(fake.services.values()))
    svc.spec_version = 3
    fake.counts[svc.id] = control_pb2.ServiceReplicas(
        service_id=svc.id, running=1, desired=2, completed=3, completions=5
    )
    ls = ctl("service", "ls")
    assert ls.code == 0, ls.err
    row = ls.out.splitlines()[1]
    assert "replicated-job" in row and "1/2 (3/5 completed)" in row
    inspect = ctl("service", "inspect", "batch").out
    for line in (
        "Mode:",
        "replicated-job",
        "Completions:",
        "Max concurrent:",
        "Job iteration:",
        "spread=node.labels.zone",
    ):
        assert line in inspect


# ---- logs --------------------------------------------------------------------------


def line(task: str, node: str, data: bytes, *, stderr: bool = False, at: int = 0) -> control_pb2.LogMessage:
    msg = control_pb2.LogMessage(
        task_id=f"{task}xxxxxxxxxxxxxxx",
        task_name="web.1",
        node_id=f"{node}-id",
        node_name=node,
        data=data,
        stream=agent_pb2.LogLine.STDERR if stderr else agent_pb2.LogLine.STDOUT,
    )
    if at:
        msg.timestamp.FromSeconds(at)
    return msg


class Streams(FakeControl):
    """A fake controller that also streams logs and events."""

    def __init__(self, logs: list[control_pb2.LogMessage], events: list[control_pb2.Event]) -> None:
        super().__init__()
        self.logs = logs
        self.events = events

    async def Logs(self, request, context):  # noqa: N802
        self.requests.append(("Logs", request))
        for msg in self.logs:
            yield msg

    async def Events(self, request, context):  # noqa: N802
        self.requests.append(("Events", request))
        for event in self.events:
            yield event


@pytest.fixture
def streams() -> Streams:
    warning = control_pb2.LogMessage(node_id="n3-id", node_name="n3", warning="node n3 is not available (it is down)")
    logs = [line("aaaa", "n1", b"hello\n", at=1_700_000_000), line("bbbb", "n2", b"oops\n", stderr=True), warning]
    task = objects_pb2.Task(id="t1", service_name="web", slot=2, node_id="node1", desired_state=types_pb2.RUNNING)
    task.status.state = types_pb2.RUNNING
    task.meta.updated_at.FromSeconds(1_700_000_000)
    events = [
        control_pb2.Event(revision=41, type="task", action="update", id="t1", name="web.2", task=task),
        control_pb2.Event(revision=42, type="service", action="remove", id="s1", name="web"),
    ]
    return Streams(logs, events)


@pytest.fixture
def sctl(swarmctl, serve, streams: Streams):
    addr = serve(streams).addr
    return lambda *args: swarmctl("-H", addr, *args)


def test_service_logs_prefix_each_line_with_task_and_node(sctl, streams: Streams) -> None:
    result = sctl("service", "logs", "web")
    assert result.code == 0, result.err
    assert result.out == "web.1.aaaaxxxxxxxx@n1 | hello\n"
    assert "web.1.bbbbxxxxxxxx@n2 | oops" in result.err  # the container's stderr goes to stderr
    assert "swarmctl: warning: node n3 is not available (it is down)" in result.err
    (request,) = streams.calls("Logs")
    assert (request.service_ref, request.follow, request.tail, request.HasField("since")) == ("web", False, 0, False)


def test_logs_flags_reach_the_request(sctl, streams: Streams) -> None:
    before = datetime.datetime.now(datetime.UTC)
    result = sctl("service", "logs", "web", "-f", "--tail", "20", "--since", "10m", "-t")
    assert result.code == 0, result.err
    assert result.out.startswith("web.1.aaaaxxxxxxxx@n1 | 2023-11-14T22:13:20.000000Z hello")
    (request,) = streams.calls("Logs")
    assert (request.follow, request.tail) == (True, 20)
    since = request.since.ToDatetime(tzinfo=datetime.UTC)
    assert datetime.timedelta(minutes=9) < before - since < datetime.timedelta(minutes=11)


def test_task_logs_with_an_absolute_since(sctl, streams: Streams) -> None:
    assert sctl("task", "logs", "t1", "--since", "2024-05-01T10:00:00Z").code == 0
    (request,) = streams.calls("Logs")
    assert request.task_ref == "t1" and request.since.seconds == 1714557600


@pytest.mark.parametrize("args", [("--tail", "-3"), ("--tail", "lots"), ("--since", "yesterday")])
def test_bad_logs_flags_are_usage_errors(sctl, args: tuple[str, ...]) -> None:
    result = sctl("service", "logs", "web", *args)
    assert result.code == 2 and result.err.startswith("swarmctl: ")


def test_logs_as_json_lines(sctl) -> None:
    result = sctl("--format", "json", "service", "logs", "web")
    docs = [json.loads(x) for x in result.out.splitlines()]
    assert [d.get("nodeName") for d in docs] == ["n1", "n2", "n3"]
    assert docs[2]["warning"].startswith("node n3")


class StreamFollower(Follower):
    async def Logs(self, request, context):  # noqa: N802
        await self._redirect(context)
        yield control_pb2.LogMessage()  # never reached


def test_a_follower_sends_the_log_stream_to_the_leader(swarmctl, serve, streams: Streams) -> None:
    leader = serve(streams).addr
    follower = StreamFollower(leader)
    addr = serve(follower).addr
    result = swarmctl("-H", addr, "service", "logs", "web")
    assert result.code == 0, result.err
    assert follower.calls == 1 and "hello" in result.out


def test_an_error_from_the_stream_is_one_line(swarmctl, serve) -> None:
    class Missing(FakeControl):
        async def Logs(self, request, context):  # noqa: N802
            await context.abort(grpc.StatusCode.NOT_FOUND, 'service "nope" not found')
            yield control_pb2.LogMessage()

    result = swarmctl("-H", serve(Missing()).addr, "service", "logs", "nope")
    assert result.code == 1 and result.err == 'swarmctl: service "nope" not found\n'


# ---- events ------------------------------------------------------------------------


def test_events_print_revision_type_action_and_state(sctl, streams: Streams) -> None:
    result = sctl("events", "--filter", "type=task", "-f", "type=service", "--since", "40")
    assert result.code == 0, result.err
    first, second = result.out.splitlines()
    assert first.startswith("41 2023-11-14T22:13:20Z task update t1 web.2 state=running desired=running")
    assert second == "42 - service remove s1 web"  # a removal has no time of its own
    (request,) = streams.calls("Events")
    assert (list(request.types), request.since_revision) == (["task", "service"], 40)


def test_events_as_json_lines(sctl) -> None:
    docs = [json.loads(x) for x in sctl("events", "--format", "json").out.splitlines()]
    assert [(d["revision"], d["action"]) for d in docs] == [("41", "update"), ("42", "remove")]


def test_an_unknown_event_type_is_a_usage_error(sctl) -> None:
    result = sctl("events", "--filter", "type=secret")
    assert result.code == 2 and "type=service, type=task or type=node" in result.err
