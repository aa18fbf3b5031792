"""`swarmctl task`: list and inspect tasks; also the task table `service ps` prints.

Reads only: ListTasks (with service and node refs resolved to IDs first),
GetTask, and ListNodes/GetNode to show node names instead of IDs.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping, Sequence

import click

from shoal import errors, states
from shoal.ctl import client as client_
from shoal.ctl import context, logs, network, output
from shoal.v1 import objects_pb2, types_pb2

#: Desired states of the tasks `task ls` shows without -a: the ones meant to run.
LIVE_DESIRED_STATES = (types_pb2.READY, types_pb2.RUNNING)

TASK_HEADERS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR")


@click.group("task")
def task_group() -> None:
    """Inspect tasks, the one-shot containers services run."""


task_group.add_command(logs.task_logs)


@task_group.command("ls")
@click.option("--service", "service_ref", metavar="SERVICE", help="Only tasks of this service (name or ID).")
@click.option("--node", "node_ref", metavar="NODE", help="Only tasks on this node (name or ID).")
@click.option("--all", "-a", "show_all", is_flag=True, help="Also finished tasks, not only running ones.")
@click.option("--quiet", "-q", is_flag=True, help="Print only task IDs.")
@context.pass_globals_and_format
def ls(
    g: context.Globals, service_ref: str | None, node_ref: str | None, show_all: bool, quiet: bool
) -> None:
    """List tasks (by default only those meant to be running)."""

    async def fetch(c: client_.ControlClient) -> tuple[list[objects_pb2.Task], dict[str, str]]:
        service_ids = [(await c.get_service(service_ref)).service.id] if service_ref else []
        node_ids = [(await c.get_node(node_ref)).node.id] if node_ref else []
        desired = () if show_all else LIVE_DESIRED_STATES
        tasks, nodes = await asyncio.gather(
            c.list_tasks(service_ids=service_ids, node_ids=node_ids, desired_states=desired),
            c.list_nodes(),
        )
        return list(tasks.tasks), {n.id: n.name for n in nodes.nodes}

    tasks, node_names = g.call(fetch)
    echo_tasks(g, sort_tasks(tasks, node_names), node_names, quiet=quiet)


@task_group.command("inspect")
@click.argument("refs", metavar="ID...", nargs=-1, required=True)
@context.pass_globals_and_format
def inspect(g: context.Globals, refs: tuple[str, ...]) -> None:
    """Show a task's details, including why it is not running."""

    async def fetch(c: client_.ControlClient) -> tuple[list[tuple[objects_pb2.Task, str]], dict[str, str]]:
        found = []
        for ref in refs:
            task = (await c.get_task(ref)).task
            found.append((task, await _node_name(c, task.node_id)))
        return found, await network.names(c)

    found, network_names = g.call(fetch)
    if g.json:
        tasks = [t for t, _ in found]
        output.echo_json(tasks[0] if len(tasks) == 1 else tasks)
        return
    for i, (task, node_name) in enumerate(found):
        if i:
            click.echo()
        output.echo_fields(task_fields(task, node_name) + network.address_fields(task, network_names))


async def _node_name(c: client_.ControlClient, node_id: str) -> str:
    """The node's name, or its ID when it no longer exists ("" when unassigned)."""
    if not node_id:
        return ""
    try:
        return (await c.get_node(node_id)).node.name
    except errors.NotFound:
        return node_id


def echo_tasks(
    g: context.Globals,
    tasks: Sequence[objects_pb2.Task],
    node_names: Mapping[str, str],
    *,
    quiet: bool,
    no_trunc: bool = False,
) -> None:
    """Print tasks as IDs (-q), JSON or the `docker service ps` table (errors cut unless `no_trunc`)."""
    if quiet:
        output.echo_ids(t.id for t in tasks)
    elif g.json:
        output.echo_json(tasks)
    else:
        now = datetime.datetime.now(datetime.UTC)
        width = 1 << 20 if no_trunc else output.ERROR_WIDTH
        output.echo_table(TASK_HEADERS, (task_row(t, node_names, now, width) for t in tasks))


def sort_tasks(tasks: Sequence[objects_pb2.Task], node_names: Mapping[str, str]) -> list[objects_pb2.Task]:
    """By service, then slot (node name for global tasks), newest first within a slot."""

    def key(t: objects_pb2.Task) -> tuple[str, int, str, int]:
        created = t.meta.created_at.seconds * 1_000_000_000 + t.meta.created_at.nanos
        node = node_names.get(t.node_id, t.node_id) if t.slot == 0 else ""
        return (t.service_name, t.slot, node, -created)

    return sorted(tasks, key=key)


def task_name(task: objects_pb2.Task, node_names: Mapping[str, str]) -> str:
    """`<service>.<slot>`, or `<service>.<node name>` for a global service's task."""
    service = task.service_name or output.short_id(task.service_id)
    if task.slot:
        return f"{service}.{task.slot}"
    node = node_names.get(task.node_id) or output.short_id(task.node_id or task.id)
    return f"{service}.{node}"


def task_row(
    task: objects_pb2.Task, node_names: Mapping[str, str], now: datetime.datetime, width: int = output.ERROR_WIDTH
) -> list[str]:
    """One row under TASK_HEADERS."""
    node = node_names.get(task.node_id, output.short_id(task.node_id)) if task.node_id else "-"
    return [
        output.short_id(task.id),
        task_name(task, node_names),
        image_cell(task.spec.container.image, full=width > output.ERROR_WIDTH),
        node,
        state_word(task.desired_state),
        current_state(task.status, now),
        output.truncate(task.status.err, width),
    ]


def image_cell(image: str, *, full: bool = False) -> str:
    """The image a task runs, its digest cut to 12 hex digits (as IDs are) unless `full`."""
    name, sep, digest = image.partition("@")
    algorithm, _, hexdigits = digest.partition(":")
    return image if full or not sep else f"{name}@{algorithm}:{hexdigits[:12]}"


def state_word(state: int) -> str:
    """A task state as tables show it: "Running"."""
    return output.enum_name(types_pb2.TaskState, state).capitalize()


def current_state(status: types_pb2.TaskStatus, now: datetime.datetime | None = None) -> str:
    """The observed state and when it was reached, and the health if checked: "Running 5 seconds ago (healthy)"."""
    since = output.relative_time(status.timestamp, now)
    health = f" ({health_word(status.health)})" if status.health else ""
    return f"{state_word(status.state)} {since}".rstrip() + health


def health_word(health: int) -> str:
    """A task's health as shown: "starting", "healthy", "unhealthy" ("" when it has no health check)."""
    return {1: "starting", 2: "healthy", 3: "unhealthy"}.get(health, "")


def task_fields(task: objects_pb2.Task, node_name: str) -> list[tuple[str, str]]:
    """The key/value lines of `task inspect`."""
    status, container = task.status, task.spec.container
    fields = [
        ("ID", task.id),
        ("Service", f"{task.service_name} ({task.service_id})" if task.service_name else task.service_id),
        ("Slot", str(task.slot) if task.slot else "-"),
        ("Node", _node_label(task.node_id, node_name)),
        ("Desired state", output.enum_name(types_pb2.TaskState, task.desired_state)),
        ("State", output.enum_name(types_pb2.TaskState, status.state)),
        ("State since", output.since(status.timestamp)),
        ("Health", health_word(status.health) or "-"),
        ("Message", status.message or "-"),
        ("Error", status.err or "-"),
        ("Container ID", status.container.container_id or "-"),
    ]
    if status.container.pid:
        fields.append(("PID", str(status.container.pid)))
    if states.is_terminal(status.state) and status.container.container_id:
        fields.append(("Exit code", str(status.container.exit_code)))
    fields += [
        ("Image", container.image),
        ("Command", " ".join(container.command) or "-"),
        ("Args", " ".join(container.args) or "-"),
    ]
    if container.env:
        fields.append(("Env", "\n".join(container.env)))
    if task.HasField("start_after") and output.timestamp(task.start_after):
        fields.append(("Start after", output.absolute_time(task.start_after)))
    fields += [
        ("Spec version", str(task.spec_version)),
        ("Origin", output.enum_name(objects_pb2.Task.Origin, task.origin).lower()),
        ("Created", output.since(task.meta.created_at)),
        ("Updated", output.since(task.meta.updated_at)),
        ("Version", str(task.meta.version)),
    ]
    return fields


def _node_label(node_id: str, node_name: str) -> str:
    if not node_id:
        return "- (not assigned)"
    return node_id if node_name in ("", node_id) else f"{node_name} ({node_id})"
