"""swarmctl: rollout, restart-window and health flags; following a rollout; rollback, rebalance, cluster update."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ctl_fakes import FakeControl, ServerThread

from shoal import states, units
from shoal.ctl import progress
from shoal.v1 import control_pb2, objects_pb2, types_pb2

Status = types_pb2.UpdateStatus
Config = types_pb2.UpdateConfig


def test_rollout_flags_fill_the_update_and_rollback_settings(ctl, fake: FakeControl) -> None:
    result = ctl(
        "service", "create", "--detach", "--name", "web", "--image", "busybox",
        "--update-order", "start-first", "--update-monitor", "2s", "--update-failure-action", "rollback",
        "--update-max-failure-ratio", "0.25", "--rollback-parallelism", "3", "--rollback-delay", "1s",
        "--rollback-order", "start-first", "--rollback-monitor", "3s", "--rollback-failure-action", "continue",
        "--rollback-max-failure-ratio", "0.5", "--restart-window", "1m",
    )  # fmt: skip
    assert result.code == 0, result.err
    spec = fake.calls("CreateService")[0].spec
    u, r = spec.update, spec.rollback
    assert (u.order, units.from_duration(u.monitor), u.failure_action) == (Config.START_FIRST, 2, Config.ROLLBACK)
    assert u.max_failure_ratio == pytest.approx(0.25)
    assert (r.parallelism, units.from_duration(r.delay), r.order) == (3, 1, Config.START_FIRST)
    assert (units.from_duration(r.monitor), r.failure_action) == (3, Config.CONTINUE)
    assert r.max_failure_ratio == pytest.approx(0.5)
    assert units.from_duration(spec.task.restart.window) == 60


def test_health_flags_build_the_check(ctl, fake: FakeControl) -> None:
    result = ctl(
        "service", "create", "--detach", "--name", "web", "--image", "busybox", "--health-cmd", "wget -q -O- :80",
        "--health-interval", "2s", "--health-timeout", "1s", "--health-retries", "4", "--health-start-period", "5s",
    )  # fmt: skip
    assert result.code == 0, result.err
    hc = fake.calls("CreateService")[0].spec.task.container.healthcheck
    assert list(hc.test) == ["CMD-SHELL", "wget -q -O- :80"]
    assert [units.from_duration(d) for d in (hc.interval, hc.timeout, hc.start_period)] == [2, 1, 5]
    assert hc.retries == 4


def test_no_healthcheck_disables_and_conflicts_with_health_flags(ctl, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    fake.services["svc1"].spec.task.container.healthcheck.test.extend(["CMD-SHELL", "true"])
    assert ctl("service", "update", "--detach", "web", "--no-healthcheck").code == 0
    assert list(fake.calls("UpdateService")[-1].spec.task.container.healthcheck.test) == ["NONE"]
    bad = ctl("service", "update", "--detach", "web", "--no-healthcheck", "--health-cmd", "true")
    assert bad.code == 1 and "conflicts" in bad.err


def test_only_the_interval_keeps_the_image_s_command(ctl, fake: FakeControl) -> None:
    assert ctl("service", "create", "--detach", "--name", "w", "--image", "b", "--health-interval", "3s").code == 0
    hc = fake.calls("CreateService")[0].spec.task.container.healthcheck
    assert list(hc.test) == [] and units.from_duration(hc.interval) == 3


# ---- following ----------------------------------------------------------------------------------


def _service(state: int = Status.UNKNOWN, message: str = "", replicas: int = 2) -> objects_pb2.Service:
    svc = objects_pb2.Service(id="svc1", spec_version=2)
    svc.spec.name = "web"
    svc.spec.replicated.replicas = replicas
    svc.update_status.state = state  # type: ignore[assignment]
    svc.update_status.message = message
    return svc


def _task(slot: int, state: int, version: int = 2, node: str = "n1", desired: int = states.RUNNING):
    t = objects_pb2.Task(id=f"t{slot}{state}{version}", slot=slot, spec_version=version, node_id=node)
    t.status.state = state  # type: ignore[assignment]
    t.desired_state = desired  # type: ignore[assignment]
    return t


@pytest.mark.parametrize(
    ("kind", "state", "message", "verdict"),
    [
        ("update", Status.UPDATING, "", progress.Verdict()),
        ("update", Status.COMPLETED, "update completed", progress.Verdict(done=True, note="update completed")),
        ("update", Status.PAUSED, "update paused: x", progress.Verdict(error="update paused: x")),
        ("update", Status.ROLLBACK_STARTED, "rollback started: y", progress.Verdict()),
        (
            "update",
            Status.ROLLBACK_COMPLETED,
            "rollback completed: task x failed: non-zero exit (1)",
            progress.Verdict(error="update rolled back: task x failed: non-zero exit (1)"),
        ),
        ("rollback", Status.ROLLBACK_COMPLETED, "done", progress.Verdict(done=True, note="done")),
        ("rollback", Status.ROLLBACK_PAUSED, "rollback paused: z", progress.Verdict(error="rollback paused: z")),
        ("rebalance", Status.REBALANCE_COMPLETED, "m", progress.Verdict(done=True, note="m")),
        ("rebalance", Status.REBALANCE_PAUSED, "rebalance paused: w", progress.Verdict(error="rebalance paused: w")),
    ],
)
def test_judge_follows_the_update_status(kind: str, state: int, message: str, verdict: progress.Verdict) -> None:
    assert progress.judge(kind, _service(state, message), [], by_status=True) == verdict


def test_a_create_converges_when_every_slot_runs_the_current_spec() -> None:
    svc = _service()
    assert not progress.judge("create", svc, [_task(1, states.RUNNING)], False).converged
    both = [_task(1, states.RUNNING), _task(2, states.RUNNING)]
    assert progress.judge("create", svc, both, False).converged
    old = [_task(1, states.RUNNING), _task(2, states.RUNNING, version=1)]
    assert not progress.judge("create", svc, old, False).converged
    handing_over = [*both, _task(2, states.RUNNING, version=1, node="n2")]
    assert not progress.judge("create", svc, handing_over, False).converged


def test_a_job_is_not_followed() -> None:
    svc = _service()
    svc.spec.replicated_job.total_completions = 3
    assert progress.judge("create", svc, [], False).done


def test_progress_lines_show_each_slot() -> None:
    svc = _service(Status.UPDATING, "update in progress")
    pending = _task(2, states.PENDING, node="")
    pending.status.err = "no suitable node (3 nodes not ready)"
    checking = _task(1, states.STARTING)
    checking.status.health = types_pb2.TaskStatus.HEALTH_STARTING  # type: ignore[assignment]
    block = progress.lines(svc, [checking, pending], {"n1": "node-one"})
    assert block[0] == "web: 0/2 running; updating: update in progress"
    assert block[1].split() == ["1/2:", "starting", "on", "node-one", "waiting", "for", "its", "health", "check"]
    assert block[2].startswith("  2/2: pending") and "no suitable node" in block[2]


def test_the_printer_prints_only_changed_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    printer = progress.Printer(quiet=False, tty=False)
    printer.show(["head", "1/2: pending"])
    printer.show(["head", "1/2: running"])
    printer.show(["head", "1/2: running"])
    assert capsys.readouterr().err.splitlines() == ["head", "1/2: pending", "1/2: running"]
    quiet = progress.Printer(quiet=True, tty=False)
    quiet.show(["x"])
    assert capsys.readouterr().err == ""


class Rollouts(FakeControl):
    """A fake that also rolls back and rebalances, and moves a rollout to `final` after one look."""

    def __init__(self, final: int, message: str) -> None:
        super().__init__()
        self.final, self.message = final, message
        self.looks = 0
        self.cluster = objects_pb2.Cluster(id="c1", task_history_limit=5)
        self.cluster.meta.version = 3

    def _start(self, svc: objects_pb2.Service, state: int) -> None:
        svc.update_status.state = state  # type: ignore[assignment]
        self.looks = 0

    async def RollbackService(self, request, context):  # noqa: N802
        def rollback() -> control_pb2.UpdateServiceResponse:
            svc = self._service(request.ref)
            self._start(svc, Status.ROLLBACK_STARTED)
            return control_pb2.UpdateServiceResponse(service=svc)

        return await self._serve(context, "RollbackService", request, rollback)

    async def RebalanceService(self, request, context):  # noqa: N802
        def rebalance() -> control_pb2.UpdateServiceResponse:
            svc = self._service(request.ref)
            self._start(svc, Status.REBALANCE_STARTED)
            return control_pb2.UpdateServiceResponse(service=svc)

        return await self._serve(context, "RebalanceService", request, rebalance)

    async def GetService(self, request, context):  # noqa: N802
        svc = self._service(request.ref)
        self.looks += 1
        if self.looks > 2:
            svc.update_status.state = self.final  # type: ignore[assignment]
            svc.update_status.message = self.message
        return control_pb2.GetServiceResponse(service=svc)

    async def GetClusterInfo(self, request, context):  # noqa: N802
        return control_pb2.GetClusterInfoResponse(cluster=self.cluster)

    async def UpdateCluster(self, request, context):  # noqa: N802
        def update() -> control_pb2.UpdateClusterResponse:
            self.cluster.task_history_limit = request.task_history_limit
            self.cluster.auto_rebalance = request.auto_rebalance
            return control_pb2.UpdateClusterResponse(cluster=self.cluster)

        return await self._serve(context, "UpdateCluster", request, update)


@pytest.fixture
def rollouts(serve: Callable[..., ServerThread], swarmctl):  # type: ignore[no-untyped-def]
    def make(final: int, message: str = ""):  # type: ignore[no-untyped-def]
        fake = Rollouts(final, message)
        fake.add_service("svc1", "web", replicas=0)
        addr = serve(fake).addr
        return fake, lambda *args: swarmctl("-H", addr, *args)

    return make


def test_rollback_follows_until_completed(rollouts) -> None:  # type: ignore[no-untyped-def]
    fake, run = rollouts(Status.ROLLBACK_COMPLETED, "rollback completed")
    result = run("service", "rollback", "web")
    assert result.code == 0, result.err
    assert result.out.strip() == "svc1"
    assert [r.ref for r in fake.calls("RollbackService")] == ["web"]
    assert "web: rollback completed" in result.err


def test_a_paused_rebalance_exits_non_zero_with_the_reason(rollouts) -> None:  # type: ignore[no-untyped-def]
    fake, run = rollouts(Status.REBALANCE_PAUSED, "rebalance paused: task t9 failed: non-zero exit (1)")
    result = run("service", "rebalance", "web")
    assert result.code == 1
    assert result.err.strip().endswith("swarmctl: service web: rebalance paused: task t9 failed: non-zero exit (1)")


def test_detach_returns_at_once(rollouts) -> None:  # type: ignore[no-untyped-def]
    fake, run = rollouts(Status.REBALANCE_PAUSED, "never looked at")
    result = run("service", "rebalance", "--detach", "web")
    assert (result.code, result.out.strip(), result.err) == (0, "svc1", "")
    assert fake.looks == 0


def test_cluster_update_changes_only_the_given_settings(rollouts) -> None:  # type: ignore[no-untyped-def]
    fake, run = rollouts(Status.UNKNOWN)
    result = run("cluster", "update", "--auto-rebalance", "true")
    assert result.code == 0, result.err
    (request,) = fake.calls("UpdateCluster")
    assert (request.version, request.task_history_limit, request.auto_rebalance) == (3, 5, True)
    assert run("cluster", "update", "--task-history", "1").code == 0
    assert (fake.cluster.task_history_limit, fake.cluster.auto_rebalance) == (1, True)
