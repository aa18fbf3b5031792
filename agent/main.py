"""`swarmd agent`: the agent's command line, a thin shell over `shoal.agent.agent.serve`.

It checks the flags, builds an `AgentSettings` and runs `serve` until SIGTERM
or SIGINT cancels it. Stopping the agent never stops containers: the next
agent process adopts them. A bad flag is one line on stderr and exit status 2;
a failure to start (address in use, unwritable state dir) one line and 1.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any

import click

from shoal import errors, logs, metrics_http
from shoal.agent import agent, credentials
from shoal.agent.network import builder as network_builder
from shoal.agent.settings import AgentSettings

log = logging.getLogger(__name__)

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOG_LEVELS = ("debug", "info", "warning", "error")


class _FlagError(click.ClickException):
    """A bad flag, shown as one line (click's usage errors print the usage text too)."""

    exit_code = 2


class _Command(click.Command):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _FlagError(exc.format_message()) from None


def _hostport(value: str, flag: str) -> str:
    try:
        metrics_http.split_hostport(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint=flag) from None
    return value


def _controllers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    addrs = [a.strip() for value in values for a in value.split(",") if a.strip()]
    if not addrs:
        raise click.BadParameter("at least one HOST:PORT is needed", param_hint="--controller")
    return tuple(_hostport(a, "--controller") for a in addrs)


def _node_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise click.BadParameter(
            f"{value!r} is not a DNS label (lowercase letters, digits and '-', at most 63 characters, "
            "no '-' at either end)",
            param_hint="--node-name",
        )
    return value


def _address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return _hostport(value, f"--{(param.name or '').replace('_', '-')}")


def parse_labels(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """The --label KEY=VALUE options as a dict (a click callback; `swarmd hollow` uses it too)."""
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--label")
        labels[key.strip()] = value
    return labels


@click.command(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--controller",
    "controllers",
    required=True,
    multiple=True,
    callback=_controllers,
    metavar="HOST:PORT[,HOST:PORT...]",
    help="Controller addresses (repeatable or comma-separated).",
)
@click.option("--node-name", required=True, callback=_node_name, metavar="NAME", help="This node's name (DNS label).")
@click.option(
    "--docker-host",
    default="unix:///var/run/docker.sock",
    envvar="DOCKER_HOST",
    show_default=True,
    metavar="URL",
    help="Docker Engine API endpoint.",
)
@click.option(
    "--listen",
    default="127.0.0.1:4250",
    callback=_address,
    show_default=True,
    metavar="HOST:PORT",
    help="Address of the agent's gRPC server (task logs, inspect).",
)
@click.option(
    "--metrics-listen",
    default="127.0.0.1:9430",
    callback=_address,
    show_default=True,
    metavar="HOST:PORT",
    help="Address of the /metrics endpoint.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Where the node ID is kept.  [default: /var/lib/shoal/agent/<node-name>]",
)
@click.option(
    "--label", "labels", multiple=True, callback=parse_labels, metavar="KEY=VALUE",
    help="Node label to join with (repeatable); afterwards only administrators change labels.",
)
@click.option("--join-token", default="", envvar="SHOAL_JOIN_TOKEN", metavar="TOKEN",
              help="Join the cluster with this token when the node has no certificate yet.")
@click.option("--join-addr", default="", callback=lambda c, p, v: _hostport(v, "--join-addr") if v else v,
              metavar="HOST:PORT", help="The controllers' join port.  [default: the first --controller's port + 1]")
@click.option(
    "--data-path-addr",
    default="",
    metavar="IP|none",
    help="Underlay address for overlay network traffic (VXLAN); 'none' builds no overlay networks.  "
    "[default: --listen's address, unless it is loopback]",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="Log level.",
)
def command(
    controllers: tuple[str, ...],
    node_name: str,
    docker_host: str,
    listen: str,
    metrics_listen: str,
    state_dir: Path | None,
    labels: dict[str, str],
    join_token: str,
    join_addr: str,
    data_path_addr: str,
    log_level: str,
) -> None:
    """Run the Shoal agent on this node: register with the controllers and run the tasks they assign."""
    if data_path_addr == "none":
        data_path_addr = ""
    elif not data_path_addr:
        data_path_addr = network_builder.data_path_address(listen)
    elif not network_builder.data_path_address(f"{data_path_addr}:0"):
        raise click.BadParameter("must be a non-loopback IPv4 address of this host", param_hint="--data-path-addr")
    settings = AgentSettings(
        controllers=controllers,
        node_name=node_name,
        docker_host=docker_host,
        listen=listen,
        metrics_listen=metrics_listen,
        state_dir=state_dir,
        labels=labels,
        join_token=join_token,
        join_addr=join_addr,
        data_path_addr=data_path_addr,
        log_level=log_level.lower(),
    )
    logs.setup(settings.log_level)
    main(settings)


def main(settings: AgentSettings) -> None:
    """Run the agent until SIGTERM/SIGINT; exit 1 with one line if it cannot start."""
    try:
        asyncio.run(_run(settings))
    except (OSError, errors.ShoalError, credentials.NodeRemoved) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except Exception:
        log.exception("agent crashed")
        sys.exit(1)


async def _run(settings: AgentSettings) -> None:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        await agent.serve(settings)
    except asyncio.CancelledError:
        log.info("agent stopped; containers keep running")
