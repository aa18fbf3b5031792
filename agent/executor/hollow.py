"""The hollow executor: simulated containers, for control-plane benchmarks only.

Like Kubernetes' HollowKubelet, it "pretends to be an ordinary" executor but
starts nothing: a container is an entry in a dict. Everything above it (the
worker, the runners, the reporter, the session) is the production code, so a
process of hollow agents loads the controller exactly as that many real nodes
would, without the engine's cost. It is never a default: only `swarmd hollow`
uses it, and it says what it is in the node description (`executor="hollow"`,
engine version "hollow"), so no one mistakes a hollow node for a real one.

A start takes a delay drawn from a distribution (`Delay.parse`):

    0                   instant
    0.5                 fixed, seconds
    uniform:0.3,1.3     uniform between two bounds
    lognormal:0.5,0.4   lognormal with that median (seconds) and sigma

and fails with probability `failure_rate` (a PermanentError, which the runner
reports as FAILED, as a container whose start the engine refused). A started
container runs until it is shut down or removed; `wait` then returns exit code
0. The containers of every node of one process live in one executor, each
labelled with its node, as a shared dockerd's would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import platform
import random
import secrets

from shoal.agent.executor import base
from shoal.v1 import objects_pb2, types_pb2

#: What a hollow node says it has (the scheduler reserves against it).
DEFAULT_CPUS = 8
DEFAULT_MEMORY = 32 * 1024**3


@dataclasses.dataclass(frozen=True)
class Delay:
    """A distribution of start delays, in seconds."""

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Delay:
        """`0.5`, `uniform:LOW,HIGH` or `lognormal:MEDIAN,SIGMA`; ValueError otherwise."""
        kind, sep, rest = text.strip().partition(":")
        if not sep:
            value = float(kind)
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"a delay must be a non-negative number of seconds, not {text!r}")
            return cls("fixed", value)
        parts = [float(p) for p in rest.split(",")]
        if len(parts) != 2 or not all(math.isfinite(p) and p >= 0 for p in parts):
            raise ValueError(f"{kind} needs two non-negative numbers: {text!r}")
        if kind == "uniform" and parts[0] <= parts[1]:
            return cls("uniform", *parts)
        if kind == "lognormal" and parts[0] > 0:
            return cls("lognormal", *parts)
        raise ValueError(
            f"unknown or invalid delay distribution {text!r} (SECONDS, uniform:LOW,HIGH, lognormal:MEDIAN,SIGMA)"
        )

    def draw(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.a), self.b)
        return self.a

    def __str__(self) -> str:
        return f"{self.a:g}" if self.kind == "fixed" else f"{self.kind}:{self.a:g},{self.b:g}"


@dataclasses.dataclass(frozen=True)
class HollowSettings:
    """How hollow containers behave, and what a hollow node says it has."""

    start_delay: Delay = dataclasses.field(default_factory=Delay)
    failure_rate: float = 0.0
    """Probability that a start fails (0..1)."""
    nano_cpus: int = DEFAULT_CPUS * 1_000_000_000
    memory_bytes: int = DEFAULT_MEMORY
    seed: int | None = None


@dataclasses.dataclass
class _Container:
    id: str
    task: objects_pb2.Task
    running: bool = False
    started: bool = False
    exit_code: int = 0
    ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def state(self) -> base.ContainerState:
        return base.ContainerState(
            container_id=self.id,
            running=self.running,
            started=self.started,
            exit_code=self.exit_code,
            raw={"Id": self.id, "Hollow": True, "State": {"Running": self.running, "ExitCode": self.exit_code}},
        )

    def stop(self, exit_code: int) -> None:
        if self.running:
            self.running = False
            self.exit_code = exit_code
        self.ended.set()


class HollowController:
    """One task's simulated container (implements `base.Controller`)."""

    def __init__(self, executor: HollowExecutor, task: objects_pb2.Task) -> None:
        self._executor = executor
        self._task = task

    def _container(self) -> _Container | None:
        return self._executor.containers.get(self._task.id)

    async def prepare(self) -> str:
        found = self._container()
        if found is None:
            found = self._executor.add(_Container(secrets.token_hex(32), self._task))
        return found.id

    async def start(self) -> None:
        container = self._container()
        if container is None:
            raise base.PermanentError("exec: hollow container disappeared before its start")
        if container.running:
            return
        delay = self._executor.settings.start_delay.draw(self._executor.rng)
        if delay > 0:
            await asyncio.sleep(delay)
        if self._executor.rng.random() < self._executor.settings.failure_rate:
            container.started, container.exit_code = True, 128
            container.ended.set()
            raise base.PermanentError("exec: hollow: simulated start failure")
        container.running = container.started = True

    async def wait(self) -> base.ExitStatus:
        container = self._container()
        if container is None:
            raise base.PermanentError("exec: container disappeared")
        await container.ended.wait()
        return base.ExitStatus(container.exit_code)

    async def shutdown(self) -> None:
        container = self._container()
        if container is not None:
            container.stop(0)

    async def remove(self) -> None:
        container = self._executor.discard(self._task.id)
        if container is not None:
            container.stop(137)

    async def inspect(self) -> base.ContainerState | None:
        container = self._container()
        return container.state() if container is not None else None


class HollowExecutor:
    """Simulated containers of every hollow node of one process (implements `base.Executor`)."""

    def __init__(self, settings: HollowSettings | None = None) -> None:
        self.settings = settings or HollowSettings()
        self.rng = random.Random(self.settings.seed)
        #: Every simulated container, by task ID (task IDs are unique across nodes) ...
        self.containers: dict[str, _Container] = {}
        #: ... and the task IDs of each node's, so that a node's sweep does not scan them all.
        self._by_node: dict[str, set[str]] = {}

    def add(self, container: _Container) -> _Container:
        self.containers[container.task.id] = container
        self._by_node.setdefault(container.task.node_id, set()).add(container.task.id)
        return container

    def discard(self, task_id: str) -> _Container | None:
        container = self.containers.pop(task_id, None)
        if container is not None:
            mine = self._by_node.get(container.task.node_id)
            if mine is not None:
                mine.discard(task_id)
                if not mine:
                    del self._by_node[container.task.node_id]
        return container

    async def describe(self) -> types_pb2.NodeDescription:
        return types_pb2.NodeDescription(
            platform=types_pb2.Platform(os="linux", architecture=platform.machine()),
            resources=types_pb2.Resources(nano_cpus=self.settings.nano_cpus, memory_bytes=self.settings.memory_bytes),
            engine=types_pb2.EngineDescription(engine_version="hollow"),
            executor="hollow",
        )

    def controller(self, task: objects_pb2.Task) -> HollowController:
        return HollowController(self, task)

    async def list_containers(self, node_id: str) -> list[base.ContainerSummary]:
        found = (self.containers[t] for t in self._by_node.get(node_id, ()))
        return [
            base.ContainerSummary(container_id=c.id, task_id=c.task.id, running=c.running, task=c.task) for c in found
        ]
