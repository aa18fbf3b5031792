"""`swarmctl service stats` and `swarmctl node stats`: live CPU and memory per task, like `docker stats`.

The controller reads them from the metrics the nodes' agents export
(ListTaskStats), so this shows what Prometheus scrapes. Without
`--no-stream` the table is redrawn every `--interval` until interrupted;
`--format json` prints one reading as a JSON array. Nodes that did not
answer are named on stderr, and the rest is shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import click

from shoal import units
from shoal.ctl import client as client_
from shoal.ctl import context, output
from shoal.v1 import control_pb2

STATS_HEADERS = ("ID", "TASK", "NODE", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS")

#: Clears a terminal and moves to its top left, as docker stats does between frames.
_CLEAR = "\033[2J\033[H"

Fetch = Callable[[client_.ControlClient], Awaitable[control_pb2.ListTaskStatsResponse]]


def stats_row(s: control_pb2.TaskStats) -> list[str]:
    """One row under STATS_HEADERS."""
    name = f"{s.service_name}.{s.slot}" if s.slot else f"{s.service_name}.{s.node_name or output.short_id(s.node_id)}"
    mem_pct = f"{100.0 * s.memory_bytes / s.memory_limit_bytes:.2f}%" if s.memory_limit_bytes else "--"
    return [
        output.short_id(s.task_id),
        name,
        s.node_name or output.short_id(s.node_id),
        f"{100.0 * s.cpu_cores:.2f}%",
        f"{units.format_size(s.memory_bytes)} / {units.format_size(s.memory_limit_bytes)}",
        mem_pct,
        f"{units.format_size(s.network_rx_bytes)} / {units.format_size(s.network_tx_bytes)}",
        str(s.pids),
    ]


def render(reply: control_pb2.ListTaskStatsResponse) -> str:
    """The table for one reading."""
    return output.format_table(STATS_HEADERS, (stats_row(s) for s in reply.stats))


def _warn(reply: control_pb2.ListTaskStatsResponse) -> None:
    for e in reply.errors:
        click.echo(f"swarmctl: warning: node {e.node_name or e.node_id}: {e.error}", err=True)


def show(g: context.Globals, fetch: Fetch, *, no_stream: bool, interval: float) -> None:
    """Print one reading, or redraw the table every `interval` seconds until interrupted."""
    if g.json or no_stream:
        reply = g.call(fetch)
        _warn(reply)
        if g.json:
            output.echo_json(list(reply.stats))
        else:
            click.echo(render(reply), nl=False)
        return

    async def stream(c: client_.ControlClient) -> None:
        while True:
            reply = await fetch(c)
            notes = "".join(f"node {e.node_name or e.node_id}: {e.error}\n" for e in reply.errors)
            click.echo(_CLEAR + render(reply) + notes, nl=False)
            await asyncio.sleep(interval)

    g.call(stream)


def _options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--no-stream", is_flag=True, help="Print one reading and exit.")(fn)
    return click.option(
        "--interval",
        type=click.FloatRange(min=0.5),
        default=2.0,
        show_default=True,
        metavar="SECONDS",
        help="Time between two redraws.",
    )(fn)


@click.command("stats")
@click.argument("refs", metavar="SERVICE...", nargs=-1, required=True)
@_options
@context.pass_globals_and_format
def service_stats(g: context.Globals, refs: tuple[str, ...], no_stream: bool, interval: float) -> None:
    """Live CPU, memory and network of each running task of services."""
    ids: list[str] = []

    async def fetch(c: client_.ControlClient) -> control_pb2.ListTaskStatsResponse:
        if not ids:
            ids.extend([(await c.get_service(ref)).service.id for ref in refs])
        return await c.list_task_stats(service_ids=ids)

    show(g, fetch, no_stream=no_stream, interval=interval)


@click.command("stats")
@click.argument("refs", metavar="NODE...", nargs=-1, required=True)
@_options
@context.pass_globals_and_format
def node_stats(g: context.Globals, refs: tuple[str, ...], no_stream: bool, interval: float) -> None:
    """Live CPU, memory and network of each task running on nodes."""
    ids: list[str] = []

    async def fetch(c: client_.ControlClient) -> control_pb2.ListTaskStatsResponse:
        if not ids:
            ids.extend([(await c.get_node(ref)).node.id for ref in refs])
        return await c.list_task_stats(node_ids=ids)

    show(g, fetch, no_stream=no_stream, interval=interval)
