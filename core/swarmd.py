"""`swarmd`: the daemons' command. `swarmd controller`, `swarmd agent`, `swarmd lab` (and `swarmd hollow`,
simulated nodes for benchmarks).

Each subcommand lives beside the code it runs (shoal.controller.main,
shoal.agent.main, shoal.lab) and is imported only when it is invoked, so a
controller process never loads (or exports metrics of) the agent, and back.
"""

from __future__ import annotations

import importlib
import os

# gRPC's C core logs every refused TLS handshake at INFO; the daemons log what matters themselves.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import click

_COMMANDS = {
    "controller": ("shoal.controller.main", "command"),
    "agent": ("shoal.agent.main", "command"),
    "hollow": ("shoal.agent.hollow", "command"),
    "lab": ("shoal.lab", "group"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Shoal's daemons: run a controller, an agent, or a local lab cluster."""
