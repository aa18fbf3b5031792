"""Test doubles of the agent's own interfaces: an in-memory executor, a recording status sink.

`FakeExecutor` implements `shoal.agent.executor.base.Executor` with containers
kept in a dict; tests make containers exit, queue errors for an operation, or
hold an operation at a gate to observe what happens meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import AsyncIterator, Callable

from shoal import ids, states
from shoal.agent.executor import base
from shoal.v1 import objects_pb2, types_pb2

NODE_ID = "node0000000000000000000001"


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until it blocks (the fakes do no I/O, so this is deterministic)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def make_task(
    task_id: str | None = None,
    *,
    desired: int = states.RUNNING,
    state: int = states.ASSIGNED,
    version: int = 1,
    slot: int = 1,
    image: str = "busybox",
    container_id: str = "",
) -> objects_pb2.Task:
    """A task assigned to NODE_ID."""
    task = objects_pb2.Task(
        id=task_id or ids.new_id(),
        service_id="svc0000000000000000000001",
        service_name="web",
        slot=slot,
        node_id=NODE_ID,
        desired_state=desired,  # type: ignore[arg-type]
    )
    task.meta.version = version
    task.spec.container.image = image
    task.status.state = state  # type: ignore[assignment]
    if container_id:
        task.status.container.container_id = container_id
    return task


@dataclasses.dataclass
class FakeContainer:
    container_id: str
    task: objects_pb2.Task
    running: bool = False
    started: bool = False
    exit_code: int = 0
    exited: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class FakeController:
    """One task's container in a FakeExecutor."""

    def __init__(self, executor: FakeExecutor, task: objects_pb2.Task) -> None:
        self._executor = executor
        self._task = task

    @property
    def _container(self) -> FakeContainer | None:
        return self._executor.containers.get(self._task.id)

    async def prepare(self) -> str:
        await self._executor.enter("prepare", self._task.id)
        if self._container is None:
            self._executor.add_container(self._task)
        assert self._container is not None
        return self._container.container_id

    async def start(self) -> None:
        await self._executor.enter("start", self._task.id)
        container = self._container
        if container is None:
            raise base.PermanentError("exec: no such container")
        container.running = container.started = True
        container.exited.clear()

    async def wait(self) -> base.ExitStatus:
        await self._executor.enter("wait", self._task.id)
        container = self._container
        if container is None:
            raise base.PermanentError("exec: container disappeared")
        await container.exited.wait()
        return base.ExitStatus(container.exit_code)

    async def shutdown(self) -> None:
        await self._executor.enter("shutdown", self._task.id)
        container = self._container
        if container is not None and container.running:
            self._executor.exit(self._task.id, 143)

    async def remove(self) -> None:
        await self._executor.enter("remove", self._task.id)
        container = self._executor.containers.pop(self._task.id, None)
        if container is not None:
            container.running = False
            container.exited.set()

    async def inspect(self) -> base.ContainerState | None:
        await self._executor.enter("inspect", self._task.id)
        container = self._container
        if container is None:
            return None
        return base.ContainerState(
            container_id=container.container_id,
            running=container.running,
            started=container.started,
            exit_code=container.exit_code,
            raw={"Id": container.container_id, "Name": f"/{self._task.service_name}.{self._task.id}"},
        )

    async def logs(self, *, follow: bool, tail: int, since: datetime.datetime | None) -> AsyncIterator[base.LogEntry]:
        await self._executor.enter("logs", self._task.id)
        stamp = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        yield base.LogEntry(stream="stdout", timestamp=stamp, data=b"hello\n")
        yield base.LogEntry(stream="stderr", timestamp=stamp, data=b"oops\n")


class FakeExecutor:
    """An in-memory container engine (implements base.Executor)."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[str, str]] = []
        self.errors: dict[tuple[str, str], list[Exception]] = {}
        self.gates: dict[tuple[str, str], asyncio.Event] = {}
        self.describe_calls = 0

    # --- test controls

    def add_container(self, task: objects_pb2.Task, *, running: bool = False, exit_code: int | None = None) -> str:
        """A container for `task`, as if made by an earlier agent process."""
        container = FakeContainer(container_id=f"c-{task.id}", task=task)
        if running:
            container.running = container.started = True
        elif exit_code is not None:
            container.started = True
            container.exit_code = exit_code
            container.exited.set()
        self.containers[task.id] = container
        return container.container_id

    def exit(self, task_id: str, code: int) -> None:
        """Make a running container exit with `code`."""
        container = self.containers[task_id]
        container.running = False
        container.exit_code = code
        container.exited.set()

    def fail(self, op: str, task_id: str, *errors: Exception) -> None:
        """Make the next calls of `op` for `task_id` raise `errors`, one each."""
        self.errors.setdefault((op, task_id), []).extend(errors)

    def hold(self, op: str, task_id: str) -> asyncio.Event:
        """Block `op` for `task_id` until the returned event is set."""
        gate = self.gates[(op, task_id)] = asyncio.Event()
        return gate

    def ops(self, task_id: str) -> list[str]:
        """The operations called for `task_id`, in order."""
        return [op for op, t in self.calls if t == task_id]

    async def enter(self, op: str, task_id: str) -> None:
        self.calls.append((op, task_id))
        gate = self.gates.get((op, task_id))
        if gate is not None:
            await gate.wait()
        queued = self.errors.get((op, task_id))
        if queued:
            raise queued.pop(0)

    # --- base.Executor

    async def describe(self) -> types_pb2.NodeDescription:
        self.describe_calls += 1
        return types_pb2.NodeDescription(
            hostname="ignored",
            platform=types_pb2.Platform(os="linux", architecture="x86_64"),
            resources=types_pb2.Resources(nano_cpus=4_000_000_000, memory_bytes=8 << 30),
            engine=types_pb2.EngineDescription(engine_version="20.10.24"),
            executor="fake",
        )

    def controller(self, task: objects_pb2.Task) -> FakeController:
        if task.spec.container.image == "invalid":
            raise base.PermanentError("exec: invalid spec")
        return FakeController(self, task)

    async def list_containers(self, node_id: str) -> list[base.ContainerSummary]:
        self.calls.append(("list", node_id))
        return [
            base.ContainerSummary(container_id=c.container_id, task_id=t, running=c.running, task=c.task)
            for t, c in self.containers.items()
            if c.task.node_id == node_id
        ]


class RecordingSink:
    """A StatusSink/StatusStore that keeps every status it is given."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[types_pb2.TaskStatus]] = {}
        self.forgotten: list[str] = []

    def update(self, task_id: str, status: types_pb2.TaskStatus) -> None:
        self.statuses.setdefault(task_id, []).append(status)

    def forget(self, task_id: str) -> None:
        self.forgotten.append(task_id)

    def states(self, task_id: str) -> list[str]:
        return [states.name(s.state) for s in self.statuses.get(task_id, [])]

    def last(self, task_id: str) -> types_pb2.TaskStatus | None:
        found = self.statuses.get(task_id)
        return found[-1] if found else None
