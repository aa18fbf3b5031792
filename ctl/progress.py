"""Following a service until it converges: the progress `service create`, `update`, `rollback` and `rebalance` show.

The command polls the service and its tasks every `POLL` seconds and prints,
on stderr, one line per slot (per node for a global service): its task's
state, node and error. In a terminal the block is redrawn in place; otherwise
a line is printed only when it changes, so a log stays readable. stdout keeps
only what the command printed before (the service ID), for scripts.

What "done" means depends on the command (`judge`):
- an update or rollback is followed through the service's update status: it
  ends COMPLETED (or ROLLBACK_COMPLETED for `service rollback`); PAUSED,
  ROLLBACK_PAUSED, or a rollback started by the update's failure action are
  errors, so the command exits with status 1 and the reason;
- a rebalance ends REBALANCE_COMPLETED, or fails with REBALANCE_PAUSED;
- a new service (or an update that starts no rollout, such as a new replica
  count) converges when every slot runs a task of the current spec and has
  kept running it for the update monitor window (5 s by default), as
  `docker service create` verifies.
Jobs are not followed: they run to completion (see `service ps`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence

import click

from shoal import errors, states, units
from shoal.ctl import client as client_
from shoal.ctl import output
from shoal.v1 import objects_pb2, types_pb2

#: Seconds between two looks at the service.
POLL = 0.5
#: The monitor window when a spec has none (Docker's default).
DEFAULT_VERIFY = 5.0

UpdateStatus = types_pb2.UpdateStatus
Health = types_pb2.TaskStatus.Health

CREATE, UPDATE, ROLLBACK, REBALANCE = "create", "update", "rollback", "rebalance"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether following may stop: `done`, or `error` (exit 1 with it); `converged` needs a stable spell first."""

    done: bool = False
    error: str = ""
    converged: bool = False
    note: str = ""


def follows_status(kind: str, service: objects_pb2.Service) -> bool:
    """True if `kind` is judged by the update status (else by the tasks converging)."""
    state = service.update_status.state
    if kind in (ROLLBACK, REBALANCE):
        return True
    return kind == UPDATE and state in (UpdateStatus.UPDATING, UpdateStatus.ROLLBACK_STARTED)


def judge(kind: str, service: objects_pb2.Service, tasks: Sequence[objects_pb2.Task], by_status: bool) -> Verdict:
    """Where following stands now."""
    if service.spec.WhichOneof("mode") not in ("replicated", "global"):
        return Verdict(done=True, note="not waiting for a job: see `swarmctl service ps`")
    status = service.update_status
    state, message = status.state, status.message
    if by_status:
        if state in (UpdateStatus.PAUSED, UpdateStatus.ROLLBACK_PAUSED, UpdateStatus.REBALANCE_PAUSED):
            return Verdict(error=message or _state_name(state))
        if kind == REBALANCE:
            if state == UpdateStatus.REBALANCE_COMPLETED:
                return Verdict(done=True, note=message)
            if state != UpdateStatus.REBALANCE_STARTED:
                return Verdict(error=f"the rebalance was superseded ({_state_name(state)}: {message})")
            return Verdict()
        if state == UpdateStatus.ROLLBACK_COMPLETED:
            if kind == ROLLBACK:
                return Verdict(done=True, note=message)
            reason = message.removeprefix("rollback completed").lstrip(": ")
            return Verdict(error=f"update rolled back: {reason}" if reason else "update rolled back")
        if state in (UpdateStatus.UPDATING, UpdateStatus.ROLLBACK_STARTED):
            return Verdict()
        if state == UpdateStatus.COMPLETED:
            return Verdict(done=True, note=message)
    return Verdict(converged=converged(service, tasks))


def runnable_by_key(tasks: Sequence[objects_pb2.Task]) -> dict[str, list[objects_pb2.Task]]:
    """Tasks meant to run, by slot (or node for global tasks), oldest first."""
    out: dict[str, list[objects_pb2.Task]] = {}
    for t in sorted(tasks, key=lambda t: units.from_timestamp(t.meta.created_at)):
        if t.desired_state <= states.RUNNING:
            out.setdefault(str(t.slot) if t.slot else t.node_id, []).append(t)
    return out


def converged(service: objects_pb2.Service, tasks: Sequence[objects_pb2.Task]) -> bool:
    """Every slot (or node) runs exactly one task, of the current spec, RUNNING."""
    groups = runnable_by_key(tasks)
    if service.spec.WhichOneof("mode") == "replicated" and len(groups) != max(0, service.spec.replicated.replicas):
        return False
    return all(
        len(group) == 1 and group[0].status.state == states.RUNNING and group[0].spec_version == service.spec_version
        for group in groups.values()
    )


def lines(service: objects_pb2.Service, tasks: Sequence[objects_pb2.Task], nodes: Mapping[str, str]) -> list[str]:
    """The progress block: a summary, then one line per slot (or node)."""
    groups = runnable_by_key(tasks)
    replicated = service.spec.WhichOneof("mode") == "replicated"
    total = max(0, service.spec.replicated.replicas) if replicated else len(groups)
    running = sum(1 for g in groups.values() if g[-1].status.state == states.RUNNING)
    head = f"{service.spec.name}: {running}/{total} running"
    if service.update_status.state != UpdateStatus.UNKNOWN:
        head += f"; {_state_name(service.update_status.state)}"
        if service.update_status.message:
            head += f": {output.truncate(service.update_status.message, 100)}"
    out = [head]
    keys = sorted(groups, key=lambda k: (0, int(k)) if k.isdigit() else (1, nodes.get(k, k)))
    for key in keys:
        label = f"{key}/{total}" if key.isdigit() else nodes.get(key, output.short_id(key))
        out.append(f"  {label}: {_task_line(service, groups[key], nodes)}")
    return out


def _task_line(service: objects_pb2.Service, group: Sequence[objects_pb2.Task], nodes: Mapping[str, str]) -> str:
    task = group[-1]
    status = task.status
    word = states.name(status.state).lower()
    parts = [f"{word:<9}"]
    if task.node_id:
        parts.append(f"on {nodes.get(task.node_id, output.short_id(task.node_id))}")
    if task.spec_version != service.spec_version:
        parts.append("(previous spec)")
    if status.health == Health.HEALTH_STARTING:
        parts.append("waiting for its health check")
    elif status.health == Health.HEALTHY and status.state == states.RUNNING:
        parts.append("healthy")
    if task.desired_state == states.READY:
        parts.append("staged: starts once the slot's previous task has stopped")
    if len(group) > 1:
        parts.append("(the previous task runs until this one does)")
    if status.err:
        parts.append(f"- {output.truncate(status.err, 80)}")
    return " ".join(parts)


def _state_name(state: int) -> str:
    return UpdateStatus.State.Name(state).lower().replace("_", " ")  # type: ignore[arg-type]


class Printer:
    """Draws the progress block: redrawn in a terminal, changed lines only otherwise."""

    def __init__(self, quiet: bool, tty: bool | None = None) -> None:
        self._quiet = quiet
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._shown: list[str] = []

    def show(self, block: list[str]) -> None:
        if self._quiet or block == self._shown:
            return
        if self._tty:
            if self._shown:
                click.echo(f"\x1b[{len(self._shown)}A", nl=False, err=True)
            for line in block:
                click.echo(f"\x1b[2K{line}", err=True)
            for _ in range(len(self._shown) - len(block)):
                click.echo("\x1b[2K", err=True)
        else:
            previous = set(self._shown)
            for line in block:
                if line not in previous:
                    click.echo(line, err=True)
        self._shown = block

    def note(self, text: str) -> None:
        if not self._quiet and text:
            click.echo(text, err=True)


async def follow(c: client_.ControlClient, service_id: str, kind: str, *, quiet: bool = False) -> None:
    """Poll the service until `judge` says done; raise ShoalError (exit 1) on a paused or rolled-back rollout."""
    printer = Printer(quiet)
    first = (await c.get_service(service_id)).service
    by_status = follows_status(kind, first)
    verify = _verify_window(first)
    stable_ids: tuple[str, ...] | None = None
    stable_since = 0.0
    while True:
        service = (await c.get_service(service_id)).service
        tasks = list((await c.list_tasks(service_ids=[service_id])).tasks)
        nodes = {n.id: n.name for n in (await c.list_nodes()).nodes}
        printer.show(lines(service, tasks, nodes))
        verdict = judge(kind, service, tasks, by_status)
        if verdict.error:
            raise errors.ShoalError(f"service {service.spec.name}: {verdict.error}")
        if verdict.done:
            printer.note(f"{service.spec.name}: {verdict.note or 'converged'}")
            return
        if verdict.converged:
            ids = tuple(sorted(t.id for t in tasks if t.desired_state <= states.RUNNING))
            now = time.monotonic()
            if ids != stable_ids:
                stable_ids, stable_since = ids, now
            if now - stable_since >= verify:
                printer.note(f"{service.spec.name}: converged")
                return
        else:
            stable_ids = None
        await asyncio.sleep(POLL)


def _verify_window(service: objects_pb2.Service) -> float:
    cfg = service.spec.update
    return units.from_duration(cfg.monitor) if cfg.HasField("monitor") else DEFAULT_VERIFY
