"""The worker: assignment sets into runners, adoption, and container removal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agent_fakes import NODE_ID, FakeExecutor, RecordingSink, make_task, settle, wait_until

from shoal import states
from shoal.agent import runner as runner_
from shoal.agent import worker as worker_
from shoal.v1 import dispatcher_pb2, objects_pb2

TIMINGS = runner_.RunnerTimings(retry_base=0.001, retry_cap=0.01)
UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


def change(task: objects_pb2.Task, action: int = UPDATE) -> dispatcher_pb2.AssignmentChange:
    return dispatcher_pb2.AssignmentChange(action=action, task=task)  # type: ignore[arg-type]


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def worker(executor: FakeExecutor, sink: RecordingSink) -> AsyncIterator[worker_.Worker]:
    async with worker_.Worker(node_id=NODE_ID, executor=executor, reporter=sink, timings=TIMINGS) as w:
        yield w


def state_of(worker: worker_.Worker, task_id: str) -> int:
    runner = worker.runner(task_id)
    return runner.status.state if runner is not None else -1


async def test_complete_set_starts_a_runner_per_task(worker: worker_.Worker, executor: FakeExecutor) -> None:
    tasks = [make_task(), make_task(slot=2)]
    worker.assign(tasks)
    for task in tasks:
        await wait_until(lambda t=task: state_of(worker, t.id) == states.RUNNING, what="running")
    assert set(executor.containers) == {t.id for t in tasks}
    assert sorted(worker.observed_states()) == [states.RUNNING, states.RUNNING]


async def test_nothing_is_removed_before_the_first_complete_set(worker: worker_.Worker, executor: FakeExecutor) -> None:
    stale = make_task(state=states.RUNNING)
    executor.add_container(stale, running=True)
    fresh = make_task()

    worker.update([change(fresh), change(stale, REMOVE)])
    await wait_until(lambda: state_of(worker, fresh.id) == states.RUNNING, what="fresh task running")
    await settle()
    assert "remove" not in executor.ops(stale.id)
    assert "shutdown" not in executor.ops(stale.id)
    assert not worker.synced

    worker.assign([fresh])
    await wait_until(lambda: stale.id not in executor.containers, what="stale container removed")
    assert executor.ops(stale.id) == ["shutdown", "remove"]
    assert fresh.id in executor.containers


async def test_complete_set_removes_stale_containers_and_adopts_the_rest(
    worker: worker_.Worker, executor: FakeExecutor, sink: RecordingSink
) -> None:
    kept = make_task(state=states.RUNNING)
    kept_id = executor.add_container(kept, running=True)
    replaced = make_task(state=states.RUNNING, slot=2)
    executor.add_container(replaced, running=True)
    other_node = make_task(state=states.RUNNING, slot=3)
    other_node.node_id = "someoneelse00000000000000"
    executor.add_container(other_node, running=True)

    worker.assign([kept])
    await wait_until(lambda: not worker.busy and replaced.id not in executor.containers, what="sweep")

    assert executor.containers[kept.id].container_id == kept_id  # adopted, not duplicated
    assert "prepare" not in executor.ops(kept.id)
    assert other_node.id in executor.containers  # not this node's
    assert replaced.id in sink.forgotten
    assert sink.states(kept.id) == []  # RUNNING before and after


async def test_complete_set_removes_tasks_that_left_it(
    worker: worker_.Worker, executor: FakeExecutor, sink: RecordingSink
) -> None:
    a, b = make_task(), make_task(slot=2)
    worker.assign([a, b])
    await wait_until(lambda: state_of(worker, b.id) == states.RUNNING, what="b running")

    worker.assign([a])
    await wait_until(lambda: b.id not in executor.containers, what="b removed")
    assert worker.runner(b.id) is None
    assert executor.ops(b.id)[-2:] == ["shutdown", "remove"]
    assert b.id in sink.forgotten
    assert a.id in executor.containers


async def test_incremental_update_and_remove(worker: worker_.Worker, executor: FakeExecutor) -> None:
    worker.assign([])
    task = make_task(desired=states.READY)
    worker.update([change(task)])
    await wait_until(lambda: state_of(worker, task.id) == states.READY, what="ready")

    worker.update([change(make_task(task.id, desired=states.RUNNING, version=2))])
    await wait_until(lambda: state_of(worker, task.id) == states.RUNNING, what="running")

    worker.update([change(task, REMOVE)])
    assert worker.runner(task.id) is None
    await wait_until(lambda: task.id not in executor.containers, what="removed")


async def test_shutdown_task_keeps_its_container_while_assigned(worker: worker_.Worker, executor: FakeExecutor) -> None:
    task = make_task()
    worker.assign([task])
    await wait_until(lambda: state_of(worker, task.id) == states.RUNNING, what="running")
    worker.update([change(make_task(task.id, desired=states.SHUTDOWN, version=2))])
    await wait_until(lambda: state_of(worker, task.id) == states.SHUTDOWN, what="shutdown")
    await settle()
    assert task.id in executor.containers
    assert "remove" not in executor.ops(task.id)


async def test_leaving_the_worker_does_not_stop_containers(executor: FakeExecutor, sink: RecordingSink) -> None:
    task = make_task()
    async with worker_.Worker(node_id=NODE_ID, executor=executor, reporter=sink, timings=TIMINGS) as worker:
        worker.assign([task])
        await wait_until(lambda: state_of(worker, task.id) == states.RUNNING, what="running")
    assert executor.containers[task.id].running
    assert "shutdown" not in executor.ops(task.id)


async def test_restarted_worker_adopts_instead_of_duplicating(executor: FakeExecutor) -> None:
    task = make_task()
    async with worker_.Worker(node_id=NODE_ID, executor=executor, reporter=RecordingSink(), timings=TIMINGS) as w:
        w.assign([task])
        await wait_until(lambda: state_of(w, task.id) == states.RUNNING, what="running")
    container_id = executor.containers[task.id].container_id
    executor.calls.clear()

    # The controller may not have heard RUNNING: it still says PREPARING.
    again = make_task(task.id, state=states.PREPARING, version=2)
    sink = RecordingSink()
    async with worker_.Worker(node_id=NODE_ID, executor=executor, reporter=sink, timings=TIMINGS) as w:
        w.assign([again])
        await wait_until(lambda: state_of(w, task.id) == states.RUNNING, what="adopted")
        await wait_until(lambda: not w.busy, what="sweep")
        assert executor.containers[task.id].container_id == container_id
        assert "prepare" not in executor.ops(task.id)
        assert "start" not in executor.ops(task.id)
        assert sink.states(task.id) == ["RUNNING"]


class RecordingFiles:
    """A FileSink that keeps the calls it gets, as (method, [file IDs])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        self.calls.append(("replace", [c.secret.id or c.config.id for c in changes]))

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        self.calls.append(("apply", [c.secret.id or c.config.id or f"task:{c.task.id}" for c in changes]))


async def test_files_go_to_the_file_store_and_only_tasks_become_runners(executor: FakeExecutor) -> None:
    files = RecordingFiles()
    task, later = make_task(), make_task(slot=2)
    s1 = dispatcher_pb2.AssignmentChange(secret=dispatcher_pb2.AssignedFile(id="s1", data=b"x"))
    c1 = dispatcher_pb2.AssignmentChange(config=dispatcher_pb2.AssignedFile(id="c1", data=b"y"))
    async with worker_.Worker(
        node_id=NODE_ID, executor=executor, reporter=RecordingSink(), timings=TIMINGS, files=files
    ) as worker:
        worker.assign([task], [s1])
        worker.update([c1, change(later)])
        await wait_until(lambda: state_of(worker, later.id) == states.RUNNING, what="the later task running")
        assert files.calls == [("replace", ["s1"]), ("apply", ["c1", f"task:{later.id}"])]
        assert set(executor.containers) == {task.id, later.id}  # the file changes made no container
        assert worker.runner("") is None  # ... and no runner
