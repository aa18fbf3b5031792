"""Container health checks on the Docker Engine: the create-time config, and waiting on the engine's verdict.

The spec's `HealthConfig` becomes the Engine's `Healthcheck` (unset fields
are inherited from the image, as `docker run` does; `["NONE"]` disables the
image's check). The engine runs the probes; the agent only reads its verdict
(`State.Health.Status`) by inspecting the container:

- while the task is STARTING, every `STARTING_POLL` seconds, until the first
  passing check (the task becomes RUNNING) or an unhealthy verdict;
- while it runs, once per check interval, beside the engine's wait for its
  exit, so that an unhealthy container is noticed within one interval.

An unhealthy container is stopped (with its grace period) before the task is
failed, so a replacement never runs beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from shoal.agent.executor import base
from shoal.v1 import types_pb2

#: Seconds between inspections while a started container waits for its first verdict.
STARTING_POLL = 0.25
#: Bounds of the inspection period while it runs (the check's own interval in between).
RUNNING_POLL_MIN, RUNNING_POLL_MAX = 1.0, 30.0
#: The engine's default check interval.
ENGINE_DEFAULT_INTERVAL = 30.0

Inspect = Callable[[], Awaitable["base.ContainerState | None"]]


def engine_config(hc: types_pb2.HealthConfig) -> dict[str, Any]:
    """The Engine API's Healthcheck object for a spec's HealthConfig (empty: inherit the image's)."""
    config: dict[str, Any] = {}
    if hc.test:
        config["Test"] = list(hc.test)
    durations: tuple[tuple[str, Literal["interval", "timeout", "start_period"]], ...] = (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("StartPeriod", "start_period"),
    )
    for key, field in durations:
        if hc.HasField(field):
            config[key] = getattr(hc, field).ToNanoseconds()
    if hc.retries:
        config["Retries"] = hc.retries
    return config


def _healthcheck(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    return (raw.get("Config") or {}).get("Healthcheck") or {}


def has_check(raw: Mapping[str, Any]) -> bool:
    """True if an inspected container has a health check (its own or its image's) that is not disabled."""
    test = _healthcheck(raw).get("Test") or []
    return bool(test) and test[0] != "NONE"


def interval(raw: Mapping[str, Any]) -> float:
    """The container's check interval in seconds."""
    nanos = _healthcheck(raw).get("Interval") or 0
    return nanos / 1e9 if nanos else ENGINE_DEFAULT_INTERVAL


def verdict(raw: Mapping[str, Any]) -> tuple[str, str]:
    """The engine's health status ("starting", "healthy", "unhealthy", or "") and the last probe's output."""
    health = (raw.get("State") or {}).get("Health") or {}
    log = health.get("Log") or []
    output = " ".join(str(log[-1].get("Output") or "").split())[:200] if log else ""
    return str(health.get("Status") or ""), output


def unhealthy_message(output: str) -> str:
    """The task error of an unhealthy container."""
    return "task: container unhealthy" + (f": {output}" if output else "")


async def wait_healthy(inspect: Inspect, stop: Callable[[], Awaitable[None]]) -> base.ExitStatus | None:
    """None once the container is first healthy; its ExitStatus if it ends first; UnhealthyError after stopping it."""
    while True:
        state = await inspect()
        if state is None:
            raise base.PermanentError("exec: container disappeared")
        if not state.running:
            return base.ExitStatus(state.exit_code, state.error)
        status, output = verdict(state.raw)
        if status == "healthy" or not has_check(state.raw):
            return None
        if status == "unhealthy":
            await stop()
            raise base.UnhealthyError(unhealthy_message(output))
        await asyncio.sleep(STARTING_POLL)


async def watch_unhealthy(inspect: Inspect, stop: Callable[[], Awaitable[None]]) -> None:
    """Return never while the container stays healthy; UnhealthyError (after stopping it) once it is not."""
    while True:
        state = await inspect()
        if state is None or not state.running:
            await asyncio.Event().wait()  # the engine's wait reports the end
            return
        status, output = verdict(state.raw)
        if status == "unhealthy":
            await stop()
            raise base.UnhealthyError(unhealthy_message(output))
        await asyncio.sleep(min(RUNNING_POLL_MAX, max(RUNNING_POLL_MIN, interval(state.raw))))
