"""The executor interface: what a task runner needs from a container engine.

An `Executor` describes the node, lists the containers it made for a node, and
hands out one `Controller` per task. A `Controller` drives that task's one
container through its life:

    prepare -> start -> wait -> (shutdown) -> remove        inspect at any time

Every method is idempotent, so that a restarted agent can call it again for a
container it made before (adoption): `prepare` reuses an existing container of
the task, `start` on a running container and `shutdown`/`remove` on a missing
one succeed. Failures are one of two sentinels:

    ExecutorError            "exec: ..." (base; never raised itself)
      TemporaryError         engine unreachable or slow: retry later, state unchanged
      PermanentError         the task cannot go on: REJECTED before STARTING, FAILED after

The Docker implementation is `shoal.agent.executor.docker`; a simulated
`hollow` executor for control-plane benchmarks implements the same Protocols.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from shoal.v1 import objects_pb2, types_pb2

# Labels every container made by Shoal carries; the agent finds its containers by them.
LABEL_TASK_ID = "shoal.task.id"
LABEL_SERVICE_ID = "shoal.service.id"
LABEL_SERVICE_NAME = "shoal.service.name"
LABEL_NODE_ID = "shoal.node.id"
LABEL_SLOT = "shoal.slot"


class ExecutorError(Exception):
    """Base of the executor's errors; messages start with "exec: "."""


class TemporaryError(ExecutorError):
    """The engine could not be reached or did not answer in time; retry with backoff."""


class PermanentError(ExecutorError):
    """The operation cannot succeed for this task (bad image, failed start, vanished container)."""


class UnhealthyError(PermanentError):
    """The container's health check failed; the container has been stopped."""


@dataclasses.dataclass(frozen=True)
class ContainerState:
    """What `Controller.inspect` observed about a task's container."""

    container_id: str
    running: bool
    started: bool
    """True once the container has been started at least once (running or exited since)."""
    exit_code: int
    pid: int = 0
    error: str = ""
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The engine's own inspect document (what InspectTask returns)."""


@dataclasses.dataclass(frozen=True)
class ExitStatus:
    """How a container ended, from `Controller.wait`."""

    exit_code: int
    error: str = ""


@dataclasses.dataclass(frozen=True)
class ContainerSummary:
    """A container the executor made for a node, as `Executor.list_containers` finds it."""

    container_id: str
    task_id: str
    running: bool
    task: objects_pb2.Task
    """A stub rebuilt from the container's labels (id, service, slot, node): enough for `controller()`."""


@dataclasses.dataclass(frozen=True)
class ContainerStats:
    """One reading of a running container's resource use, from the engine."""

    cpu_seconds: float
    """CPU time used since the container started."""
    memory_bytes: int
    """Memory in use, page cache excluded (what docker stats shows)."""
    memory_limit_bytes: int
    """The container's memory limit, or the node's memory when it has none."""
    network_rx_bytes: int = 0
    network_tx_bytes: int = 0
    pids: int = 0


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One line of a container's output."""

    stream: Literal["stdout", "stderr"]
    timestamp: datetime.datetime | None
    data: bytes


class Controller(Protocol):
    """Drives one task's container; every method is idempotent (see the module docstring)."""

    async def prepare(self) -> str:
        """Pull the image if missing and create the container (or find the one made before); its ID."""
        ...

    async def start(self) -> None:
        """Start the container; succeeds if it already runs."""
        ...

    async def wait(self) -> ExitStatus:
        """Block until the container exits; PermanentError if it disappeared.

        A container with a health check is watched meanwhile: if the engine
        finds it unhealthy, it is stopped and UnhealthyError is raised.
        """
        ...

    async def shutdown(self) -> None:
        """Stop the container gracefully (the task's stop grace period) if it runs; keep it."""
        ...

    async def remove(self) -> None:
        """Remove the container (killing it if it still runs); succeeds if it is gone."""
        ...

    async def inspect(self) -> ContainerState | None:
        """The container's current state, or None if it does not exist."""
        ...


@runtime_checkable
class ControllerHealth(Protocol):
    """Optional: a Controller whose containers may have a health check (their own or their image's)."""

    async def has_healthcheck(self) -> bool:
        """True if the prepared container has a health check that is not disabled."""
        ...

    async def wait_healthy(self) -> ExitStatus | None:
        """After `start`: None once the check first passes, the ExitStatus if the container ends first.

        UnhealthyError (the container stopped) if the engine finds it unhealthy first.
        """
        ...


@runtime_checkable
class ControllerLogs(Protocol):
    """Optional: a Controller that can stream its container's output (the agent's TaskLogs)."""

    def logs(self, *, follow: bool, tail: int, since: datetime.datetime | None) -> AsyncIterator[LogEntry]:
        """Lines of output: the last `tail` (0: all) after `since`, then new ones while `follow`."""
        ...


@runtime_checkable
class ExecutorStats(Protocol):
    """Optional: an executor that can read its containers' resource use (the agent's stats sampler)."""

    async def ping(self) -> None:
        """Return if the engine answers; TemporaryError if it cannot be reached."""
        ...

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """The container's resource use now, or None if it is gone or not running."""
        ...


class Executor(Protocol):
    """A container engine as the agent sees it."""

    async def describe(self) -> types_pb2.NodeDescription:
        """Platform, resources and engine of this node (the agent fills in hostname and labels)."""
        ...

    def controller(self, task: objects_pb2.Task) -> Controller:
        """The controller of `task`'s container; PermanentError if the task cannot run here."""
        ...

    async def list_containers(self, node_id: str) -> list[ContainerSummary]:
        """Every container this executor made for `node_id`, running or not."""
        ...
