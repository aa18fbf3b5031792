"""`swarmctl service logs` and `swarmctl task logs`: tasks' output, streamed from their agents through the leader.

Each line is prefixed with the task's name and ID and its node, as `docker
service logs` does (`web.2.k3j4h5g6f7d8@n2 | hello`); a line the container
wrote to stderr goes to stderr. A node that cannot be read is named once on
stderr (`swarmctl: warning: ...`) and the others' output goes on. With
`--format json` each message is one JSON object per line (LogMessage).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import click
from google.protobuf import json_format

from shoal import errors, units
from shoal.ctl import client as client_
from shoal.ctl import context, output
from shoal.v1 import agent_pb2, control_pb2

#: Deadline of a whole stream that does not follow: a big service's logs take a while.
NO_FOLLOW_TIMEOUT = 120.0


class Since(click.ParamType[Any, Any]):
    """How far back to start: a duration ("10m", "1h30m") or an RFC 3339 time ("2024-05-01T10:00:00Z")."""

    name = "DURATION|TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime.datetime):
            return value
        text = str(value).strip()
        try:
            return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=units.parse_duration(text))
        except ValueError:
            pass
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is neither a duration (10m) nor a time (2024-05-01T10:00:00Z)", param, ctx)
        return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


class Tail(click.ParamType[Any, Any]):
    """A number of lines, or "all"."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "all":
            return 0
        try:
            lines = int(value)
        except ValueError:
            lines = -1
        if lines < 0:
            self.fail(f"{value!r} is not a number of lines or 'all'", param, ctx)
        return lines


def log_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags both logs commands take."""
    for decorator in reversed(
        [
            click.option("--follow", "-f", is_flag=True, help="Keep streaming new output until interrupted."),
            click.option(
                "--tail", type=Tail(), default="all", metavar="N|all", help="Lines from the end of each task's output."
            ),
            click.option("--since", type=Since(), help="Only output after this time, or this long ago (10m)."),
            click.option("--timestamps", "-t", is_flag=True, help="Show when each line was written."),
        ]
    ):
        fn = decorator(fn)
    return fn


def prefix(msg: control_pb2.LogMessage) -> str:
    """`<task name>.<task ID>@<node>`, as docker service logs prefixes each line."""
    return f"{msg.task_name}.{output.short_id(msg.task_id)}@{msg.node_name or output.short_id(msg.node_id)}"


def render(msg: control_pb2.LogMessage, *, timestamps: bool) -> str:
    """One line as printed (without its newline)."""
    text = msg.data.decode(errors="replace").rstrip("\n")
    if timestamps:
        when = msg.timestamp.ToDatetime(tzinfo=datetime.UTC) if msg.HasField("timestamp") else None
        stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z") if when else "-"
        text = f"{stamp} {text}"
    return f"{prefix(msg)} | {text}"


def show(g: context.Globals, request: control_pb2.LogsRequest, *, timestamps: bool) -> None:
    """Stream the Logs call and print every message as it arrives."""
    timeout = None if request.follow else max(g.timeout, NO_FOLLOW_TIMEOUT)

    async def run(c: client_.ControlClient) -> None:
        async for msg in c.stream(lambda s: s.Logs, request, timeout=timeout):
            if g.json:
                click.echo(json.dumps(json_format.MessageToDict(msg)))
            elif msg.warning:
                click.echo(f"swarmctl: warning: {msg.warning}", err=True)
            else:
                click.echo(render(msg, timestamps=timestamps), err=msg.stream == agent_pb2.LogLine.STDERR)

    g.call(run)


def _request(
    follow: bool, tail: int, since: datetime.datetime | None, *, service_ref: str = "", task_ref: str = ""
) -> control_pb2.LogsRequest:
    request = control_pb2.LogsRequest(follow=follow, tail=tail, service_ref=service_ref, task_ref=task_ref)
    if since is not None:
        request.since.FromDatetime(since)
    return request


@click.command("logs")
@click.argument("ref", metavar="SERVICE")
@log_options
@context.pass_globals_and_format
def service_logs(
    g: context.Globals, ref: str, follow: bool, tail: int, since: datetime.datetime | None, timestamps: bool
) -> None:
    """Show the output of every task of a service (name, ID or unique ID prefix)."""
    show(g, _request(follow, tail, since, service_ref=ref), timestamps=timestamps)


@click.command("logs")
@click.argument("ref", metavar="TASK")
@log_options
@context.pass_globals_and_format
def task_logs(
    g: context.Globals, ref: str, follow: bool, tail: int, since: datetime.datetime | None, timestamps: bool
) -> None:
    """Show the output of one task (ID or unique ID prefix)."""
    if not ref:
        raise errors.InvalidArgument("a task ID is needed")
    show(g, _request(follow, tail, since, task_ref=ref), timestamps=timestamps)
