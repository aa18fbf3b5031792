"""`swarmctl node`: list, inspect, update (availability, labels) and remove nodes.

Updates are read-modify-write at the node's version, retried on a conflict,
like service updates. Agents register nodes; swarmctl never creates one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import click

from shoal import errors
from shoal.ctl import client as client_
from shoal.ctl import context, options, output, stats
from shoal.v1 import objects_pb2, types_pb2

#: Re-reads after a version conflict (ABORTED): the dispatcher also writes nodes.
CONFLICT_RETRIES = 3

NODE_HEADERS = ("ID", "NAME", "STATUS", "AVAILABILITY", "ADDRESS", "ENGINE")

_AVAILABILITY = {
    "active": types_pb2.NodeSpec.ACTIVE,
    "pause": types_pb2.NodeSpec.PAUSE,
    "drain": types_pb2.NodeSpec.DRAIN,
}


@click.group("node")
def node_group() -> None:
    """Manage the cluster's nodes."""


node_group.add_command(stats.node_stats)


@node_group.command("ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only node IDs.")
@context.pass_globals_and_format
def ls(g: context.Globals, quiet: bool) -> None:
    """List nodes."""
    reply = g.call(lambda c: c.list_nodes())
    nodes = sorted(reply.nodes, key=lambda n: n.name)
    if quiet:
        output.echo_ids(n.id for n in nodes)
    elif g.json:
        output.echo_json(nodes)
    else:
        output.echo_table(NODE_HEADERS, (node_row(n) for n in nodes))


@node_group.command("inspect")
@click.argument("refs", metavar="NODE...", nargs=-1, required=True)
@context.pass_globals_and_format
def inspect(g: context.Globals, refs: tuple[str, ...]) -> None:
    """Show nodes' details (name, ID or unique ID prefix)."""

    async def fetch(c: client_.ControlClient) -> list[objects_pb2.Node]:
        return [(await c.get_node(ref)).node for ref in refs]

    nodes = g.call(fetch)
    if g.json:
        output.echo_json(nodes[0] if len(nodes) == 1 else nodes)
        return
    for i, node in enumerate(nodes):
        if i:
            click.echo()
        output.echo_fields(node_fields(node))


@node_group.command("update")
@click.argument("ref", metavar="NODE")
@click.option(
    "--availability",
    type=click.Choice(sorted(_AVAILABILITY)),
    help="active: takes tasks; pause: keeps its tasks, takes no new ones; drain: moves tasks away.",
)
@click.option("--label-add", type=options.KEY_VALUE, multiple=True, help="Add or set a node label.")
@click.option("--label-rm", metavar="KEY", multiple=True, help="Remove a node label.")
@context.pass_globals
def update(
    g: context.Globals,
    ref: str,
    availability: str | None,
    label_add: tuple[tuple[str, str], ...],
    label_rm: tuple[str, ...],
) -> None:
    """Change a node's availability or labels; print its ID."""

    def change(spec: types_pb2.NodeSpec) -> None:
        for key in label_rm:
            spec.labels.pop(key, None)
        for key, value in label_add:
            spec.labels[key] = value
        if availability is not None:
            spec.availability = _AVAILABILITY[availability]

    node = g.call(lambda c: update_node_spec(c, ref, change))
    click.echo(node.id)


def _availability_command(name: str, doc: str) -> None:
    @node_group.command(name, help=doc)
    @click.argument("refs", metavar="NODE...", nargs=-1, required=True)
    @context.pass_globals
    def command(g: context.Globals, refs: tuple[str, ...]) -> int:
        def change(spec: types_pb2.NodeSpec) -> None:
            spec.availability = _AVAILABILITY[name]

        return _each(g, refs, lambda c, ref: update_node_spec(c, ref, change))


_availability_command("activate", "Let nodes take tasks again (availability active).")
_availability_command("pause", "Keep nodes' tasks but give them no new ones (availability pause).")
_availability_command("drain", "Move all tasks off nodes (availability drain).")


@node_group.command("rm")
@click.argument("refs", metavar="NODE...", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove a node even if it is not down.")
@context.pass_globals
def rm(g: context.Globals, refs: tuple[str, ...], force: bool) -> int:
    """Remove nodes from the cluster; print each removed node's name."""

    async def remove(c: client_.ControlClient, ref: str) -> objects_pb2.Node:
        node = (await c.get_node(ref)).node
        await c.remove_node(node.id, force=force)
        return node

    return _each(g, refs, remove)


def _each(
    g: context.Globals,
    refs: tuple[str, ...],
    action: Callable[[client_.ControlClient, str], Awaitable[objects_pb2.Node]],
) -> int:
    """Run `action` per ref, printing each node's name; go past failures, exit 1 if any."""

    async def run(c: client_.ControlClient) -> int:
        failed = 0
        for ref in refs:
            try:
                node = await action(c, ref)
            except errors.ShoalError as exc:
                failed += 1
                click.echo(f"swarmctl: {exc}", err=True)
                continue
            click.echo(node.name or node.id)
        return failed

    return 1 if g.call(run) else 0


async def update_node_spec(
    c: client_.ControlClient, ref: str, change: Callable[[types_pb2.NodeSpec], None]
) -> objects_pb2.Node:
    """Read the node, change a copy of its spec and write it at that version, re-reading on a conflict."""
    for attempt in range(CONFLICT_RETRIES + 1):
        node = (await c.get_node(ref)).node
        spec = types_pb2.NodeSpec()
        spec.CopyFrom(node.spec)
        change(spec)
        try:
            return (await c.update_node(node.id, node.meta.version, spec)).node
        except errors.Conflict as exc:
            if attempt == CONFLICT_RETRIES:
                raise errors.Conflict(f"{exc} (gave up after {attempt + 1} attempts)") from exc
    raise AssertionError("unreachable")


def availability_name(value: int) -> str:
    """ACTIVE, PAUSE or DRAIN."""
    return output.enum_name(types_pb2.NodeSpec.Availability, value)


def status_name(value: int) -> str:
    """READY, DOWN, DISCONNECTED or UNKNOWN."""
    return output.enum_name(types_pb2.NodeStatus.State, value)


def node_row(node: objects_pb2.Node) -> list[str]:
    """One row under NODE_HEADERS."""
    return [
        output.short_id(node.id),
        node.name,
        status_name(node.status.state),
        availability_name(node.spec.availability),
        node.status.addr,
        node.description.engine.engine_version,
    ]


def node_fields(node: objects_pb2.Node) -> list[tuple[str, str]]:
    """The key/value lines of `node inspect`."""
    d, st = node.description, node.status
    res = d.resources
    return [
        ("ID", node.id),
        ("Name", node.name),
        ("Hostname", d.hostname or "-"),
        ("Labels", output.mapping(node.spec.labels) or "-"),
        ("Availability", availability_name(node.spec.availability)),
        ("Status", status_name(st.state)),
        ("Status message", st.message or "-"),
        ("Status since", output.since(st.timestamp)),
        ("Address", st.addr or "-"),
        ("Metrics", f"http://{st.metrics_addr}/metrics" if st.metrics_addr else "-"),
        ("Platform", f"{d.platform.os}/{d.platform.architecture}" if d.platform.os else "-"),
        ("CPUs", output.cpus(res.nano_cpus) if res.nano_cpus else "-"),
        ("Memory", output.size(res.memory_bytes) if res.memory_bytes else "-"),
        ("Engine", d.engine.engine_version or "-"),
        ("Engine labels", output.mapping(d.engine.labels) or "-"),
        ("Executor", d.executor or "-"),
        ("Created", output.since(node.meta.created_at)),
        ("Updated", output.since(node.meta.updated_at)),
        ("Version", str(node.meta.version)),
    ]
