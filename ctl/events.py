"""`swarmctl events`: changes to services, tasks and nodes as they happen, one line each.

Every line starts with the etcd revision of the change; `--since REV` replays
the changes made after REV (while etcd still has them) and goes on live, so a
reader that stopped after revision R resumes with `--since R` and misses
nothing. `--format json` prints each Event as one JSON object per line.
"""

from __future__ import annotations

import json

import click
from google.protobuf import json_format

from shoal.ctl import client as client_
from shoal.ctl import context, output, task
from shoal.v1 import control_pb2, types_pb2

TYPES = ("service", "task", "node")


class TypeFilter(click.ParamType[object, object]):
    """`type=service|task|node`."""

    name = "type=service|task|node"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        key, sep, kind = str(value).partition("=")
        if not sep or key.strip() != "type" or kind.strip() not in TYPES:
            self.fail(f"{value!r}: expected type=service, type=task or type=node", param, ctx)
        return kind.strip()


def details(event: control_pb2.Event) -> str:
    """What the event's object is now, in a few words."""
    which = event.WhichOneof("object")
    if which == "task":
        t = event.task
        words = [
            f"state={task.state_word(t.status.state).lower()}",
            f"desired={task.state_word(t.desired_state).lower()}",
        ]
        if t.node_id:
            words.append(f"node={output.short_id(t.node_id)}")
        if t.status.err:
            words.append(f"err={output.truncate(t.status.err)!r}")
        return " ".join(words)
    if which == "node":
        n = event.node
        state = output.enum_name(types_pb2.NodeStatus.State, n.status.state).lower()
        availability = output.enum_name(types_pb2.NodeSpec.Availability, n.spec.availability).lower()
        return f"state={state} availability={availability}"
    if which == "service":
        s = event.service
        return f"image={s.spec.task.container.image} spec_version={s.spec_version}"
    return ""


def render(event: control_pb2.Event) -> str:
    """One line: revision, time, type, action, ID, name and details."""
    obj = getattr(event, event.WhichOneof("object") or "task")
    when = output.absolute_time(obj.meta.updated_at) if event.action != "remove" else "-"
    words = [str(event.revision), when, event.type, event.action, event.id, event.name, details(event)]
    return " ".join(w for w in words if w)


@click.command("events")
@click.option(
    "--filter",
    "-f",
    "types",
    type=TypeFilter(),
    metavar="type=service|task|node",
    multiple=True,
    help="Only changes of this kind of object (repeatable; default: all three).",
)
@click.option(
    "--since",
    type=click.IntRange(min=0),
    default=0,
    metavar="REV",
    help="Replay the changes made after this etcd revision, then go on live.",
)
@context.pass_globals_and_format
def events_command(g: context.Globals, types: tuple[str, ...], since: int) -> None:
    """Stream changes to services, tasks and nodes until interrupted."""
    request = control_pb2.EventsRequest(types=types, since_revision=since)

    async def run(c: client_.ControlClient) -> None:
        async for event in c.stream(lambda s: s.Events, request, timeout=None):
            if g.json:
                click.echo(json.dumps(json_format.MessageToDict(event), separators=(",", ":")))
            else:
                click.echo(render(event))

    g.call(run)
