"""`swarmctl cluster`: who leads, and the join tokens that admit new nodes."""

from __future__ import annotations

import click

from shoal import errors
from shoal.ctl import context, output


@click.group("cluster")
def cluster_group() -> None:
    """Inspect the cluster and manage its join tokens."""


@cluster_group.command("info")
@context.pass_globals_and_format
def info(g: context.Globals) -> None:
    """Show the cluster's ID, its controllers and etcd endpoints."""
    reply = g.call(lambda c: c.get_cluster_info())
    if g.json:
        output.echo_json(reply)
        return
    output.echo_fields(
        [
            ("Cluster ID", reply.cluster.id),
            ("Task history", str(reply.cluster.task_history_limit)),
            ("Auto-rebalance", "on" if reply.cluster.auto_rebalance else "off"),
            ("Removed nodes", str(len(reply.cluster.removed_nodes))),
            ("etcd", ", ".join(reply.etcd_endpoints) or "-"),
        ]
    )
    output.echo_table(
        ("CONTROLLER", "ADDRESS", "LEADER"),
        ((c.id, c.addr, "yes" if c.leader else "") for c in reply.controllers),
    )
    if reply.etcd_members:
        click.echo()
        output.echo_table(
            ("ETCD MEMBER", "CLIENT URLS", "HEALTH", "LEADER"),
            (
                (m.name, ",".join(m.client_urls), "healthy" if m.healthy else f"unhealthy: {m.error}"[:60],
                 "yes" if m.leader else "")
                for m in reply.etcd_members
            ),
        )


@cluster_group.command("update")
@click.option("--task-history", type=int, help="Finished tasks kept per slot (negative: keep all) [default: 5].")
@click.option(
    "--auto-rebalance",
    type=click.BOOL,
    metavar="true|false",
    help="Rebalance replicated services automatically when a node becomes ready or active.",
)
@context.pass_globals
def update(g: context.Globals, task_history: int | None, auto_rebalance: bool | None) -> None:
    """Change the cluster's settings; only the flags given change."""

    async def change(c):  # type: ignore[no-untyped-def]
        for attempt in range(4):
            cluster = (await c.get_cluster_info()).cluster
            try:
                return await c.update_cluster(
                    cluster.meta.version,
                    task_history_limit=cluster.task_history_limit if task_history is None else task_history,
                    auto_rebalance=cluster.auto_rebalance if auto_rebalance is None else auto_rebalance,
                )
            except errors.Conflict:
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")

    reply = g.call(change)
    click.echo(
        f"task history {reply.cluster.task_history_limit}, "
        f"auto-rebalance {'on' if reply.cluster.auto_rebalance else 'off'}"
    )


@cluster_group.command("join-token")
@click.argument("role", type=click.Choice(["worker", "controller"]))
@click.option("--rotate", is_flag=True, help="Replace the token; nodes that already joined are not affected.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the token.")
@context.pass_globals
def join_token(g: context.Globals, role: str, rotate: bool, quiet: bool) -> None:
    """Print (or rotate) the token a worker or controller joins with."""
    reply = g.call(lambda c: c.rotate_join_token(role) if rotate else c.get_join_tokens())
    token = getattr(reply, role)
    if quiet:
        click.echo(token)
        return
    if rotate:
        click.echo(f"Rotated the {role} join token.")
    click.echo(
        f"To add a {role} to this cluster, run:\n\n    swarmd agent --join-token {token} "
        f"--controller {g.hosts[0]} --node-name NAME\n"
    )
