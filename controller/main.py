"""`swarmd controller`: flags, and the process's lifetime.

`serve` opens etcd (embedded or given), the gRPC server and the metrics
endpoint in an exit stack, then campaigns for leadership forever; while it
leads, the term's loops run (term.py). SIGTERM cancels it all in reverse order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import pathlib

import click
import grpc

from shoal import daemon, ids, logs, metrics_http, units
from shoal.controller.api.control import ControlServicer
from shoal.controller.context import Leadership
from shoal.controller.dispatcher.dispatcher import DispatcherServicer
from shoal.controller.embedded_etcd import embedded_etcd
from shoal.controller.leader import Election, LeaderInfo
from shoal.controller.settings import ControllerSettings, DispatcherSettings
from shoal.controller.store.etcd import Etcd
from shoal.controller.store.keys import Keys
from shoal.controller.term import run_term
from shoal.v1 import control_pb2_grpc, dispatcher_pb2_grpc

log = logging.getLogger(__name__)

#: Bounded messages: a hostile or buggy client cannot make us buffer gigabytes.
MAX_MESSAGE = 16 * 1024 * 1024


def _controller_id(state_dir: str) -> str:
    """This controller's stable ID, kept in its state dir."""
    path = pathlib.Path(state_dir) / "controller_id"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = ids.new_id()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    tmp.replace(path)
    return new


async def serve(settings: ControllerSettings) -> None:
    """Run the controller until cancelled."""
    async with contextlib.AsyncExitStack() as stack:
        endpoints = list(settings.etcd_endpoints)
        if not endpoints:
            endpoints = [
                await stack.enter_async_context(embedded_etcd(settings.state_dir, settings.embedded_etcd_listen))
            ]
            settings = dataclasses.replace(settings, etcd_endpoints=tuple(endpoints))
        etcd = await stack.enter_async_context(Etcd(endpoints, timeout=settings.etcd_timeout))
        keys = Keys(settings.etcd_prefix)
        me = LeaderInfo(_controller_id(settings.state_dir), settings.advertise_addr)
        election = Election(etcd, keys, me, ttl=settings.leader_ttl)
        leadership = Leadership(election, settings)
        dispatcher_servicer = DispatcherServicer(leadership)

        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ]
        )
        control_pb2_grpc.add_ControlServicer_to_server(ControlServicer(leadership, keys), server)
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(dispatcher_servicer, server)
        if not server.add_insecure_port(settings.listen):
            raise click.ClickException(f"cannot listen on {settings.listen}")
        await server.start()
        stack.push_async_callback(server.stop, 2.0)
        bound = await stack.enter_async_context(metrics_http.serve(settings.metrics_listen))
        log.info(
            "controller %s listening on %s (metrics on %s), etcd %s",
            me.controller_id,
            settings.listen,
            bound,
            ",".join(endpoints),
        )
        await election.run(
            functools.partial(
                run_term,
                etcd=etcd,
                keys=keys,
                settings=settings,
                leadership=leadership,
                dispatcher_servicer=dispatcher_servicer,
            )
        )


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return units.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--listen", default="127.0.0.1:4240", show_default=True, help="gRPC address for swarmctl and agents.")
@click.option("--advertise", default="", help="Address to give out for this controller (default: --listen).")
@click.option("--etcd", "etcd", default="", help="etcd client URLs, comma-separated; default: an embedded etcd.")
@click.option("--etcd-prefix", default="/shoal", show_default=True, help="Key prefix of this cluster in etcd.")
@click.option(
    "--embedded-etcd-listen",
    default="127.0.0.1:2379",
    show_default=True,
    help="Client address of the embedded etcd (its peer port is the next one).",
)
@click.option("--state-dir", default="/var/lib/shoal/controller", show_default=True)
@click.option("--metrics-listen", default="127.0.0.1:9420", show_default=True, help="HTTP address of /metrics.")
@click.option(
    "--heartbeat-period",
    default="5s",
    show_default=True,
    callback=_duration,
    help="How often agents heartbeat; a node is DOWN after 3 missed periods.",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def command(
    listen: str,
    advertise: str,
    etcd: str,
    etcd_prefix: str,
    embedded_etcd_listen: str,
    state_dir: str,
    metrics_listen: str,
    heartbeat_period: float,
    log_level: str,
) -> None:
    """Run a controller: the control API, the dispatcher and, while leader, the control loops."""
    if heartbeat_period <= 0:
        raise click.BadParameter("must be positive", param_hint="--heartbeat-period")
    logs.setup(log_level)
    settings = ControllerSettings(
        listen=listen,
        advertise=advertise,
        etcd_endpoints=tuple(u.strip() for u in etcd.split(",") if u.strip()),
        etcd_prefix=etcd_prefix,
        embedded_etcd_listen=embedded_etcd_listen,
        state_dir=state_dir,
        metrics_listen=metrics_listen,
        log_level=log_level,
        dispatcher=DispatcherSettings(heartbeat_period=heartbeat_period),
    )
    daemon.run(functools.partial(serve, settings))
