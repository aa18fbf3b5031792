"""`swarmctl volume`: the Shoal volumes on the nodes (ls, inspect) and removing one (rm).

Volumes live on the nodes, so the controller asks each node's agent
(ListVolumes); a node that does not answer is one warning line on stderr and
the others are shown. A volume is named by its name and its node.
"""

from __future__ import annotations

import click

from shoal import errors
from shoal.ctl import client as client_
from shoal.ctl import context, output
from shoal.v1 import control_pb2

HEADERS = ("NODE", "NAME", "DRIVER", "IN USE BY")


@click.group("volume")
def volume_group() -> None:
    """Manage the volumes services' tasks use on the nodes."""


def _warn(reply: control_pb2.ListVolumesResponse) -> None:
    for node in reply.unreachable:
        text = f"node {node.node_name} is not available ({node.error}): its volumes are left out"
        click.echo(f"swarmctl: warning: {text}", err=True)


@volume_group.command("ls")
@click.option("--node", "node_refs", metavar="NODE", multiple=True, help="Only volumes on this node (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Print only volume names.")
@context.pass_globals_and_format
def ls(g: context.Globals, node_refs: tuple[str, ...], quiet: bool) -> None:
    """List the Shoal volumes on every node (or on the nodes given)."""
    reply = g.call(lambda c: c.list_volumes(node_refs=node_refs))
    _warn(reply)
    if quiet:
        output.echo_ids(v.name for v in reply.volumes)
    elif g.json:
        output.echo_json(list(reply.volumes))
    else:
        rows = ([v.node_name, v.name, v.driver, ", ".join(v.containers) or "-"] for v in reply.volumes)
        output.echo_table(HEADERS, rows)


@volume_group.command("inspect")
@click.argument("name")
@click.option("--node", "node_refs", metavar="NODE", multiple=True, help="Only on this node (repeatable).")
@context.pass_globals_and_format
def inspect(g: context.Globals, name: str, node_refs: tuple[str, ...]) -> None:
    """Show a volume on every node that has one of that name."""
    reply = g.call(lambda c: c.list_volumes(node_refs=node_refs, name=name))
    _warn(reply)
    if not reply.volumes:
        where = "the nodes that answered" if reply.unreachable else "any node"
        raise errors.NotFound(f'no Shoal volume "{name}" on {where}')
    if g.json:
        output.echo_json(list(reply.volumes) if len(reply.volumes) > 1 else reply.volumes[0])
        return
    for i, v in enumerate(reply.volumes):
        if i:
            click.echo()
        output.echo_fields(
            [
                ("Name", v.name),
                ("Node", f"{v.node_name} ({v.node_id})"),
                ("Driver", v.driver),
                ("Mountpoint", v.mountpoint),
                ("Scope", v.scope or "-"),
                ("Created", v.created_at or "-"),
                ("Labels", output.mapping(v.labels) or "-"),
                ("Options", output.mapping(v.options) or "-"),
                ("In use by", "\n".join(v.containers) or "-"),
            ]
        )


@volume_group.command("rm")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@click.option("--node", "node_ref", metavar="NODE", required=True, help="The node the volumes are on.")
@context.pass_globals
def rm(g: context.Globals, names: tuple[str, ...], node_ref: str) -> int:
    """Remove volumes from a node (refused while a container uses one)."""

    async def run(c: client_.ControlClient) -> int:
        failed = 0
        for name in names:
            try:
                await c.remove_volume(name, node_ref)
            except errors.ShoalError as exc:
                failed += 1
                click.echo(f"swarmctl: {exc}", err=True)
                continue
            click.echo(name)
        return failed

    return 1 if g.call(run) else 0
