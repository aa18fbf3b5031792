"""`swarmd`: the daemons' command. `swarmd controller`, `swarmd agent`, `swarmd lab`.

Each subcommand lives beside the code it runs (shoal.controller.main,
shoal.agent.main, shoal.lab); this group only puts them under one name.
"""

from __future__ import annotations

import click

from shoal.agent import main as agent_main
from shoal.controller import main as controller_main
from shoal import lab


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Shoal's daemons: run a controller, an agent, or a local lab cluster."""


main.add_command(controller_main.command, "controller")
main.add_command(agent_main.command, "agent")
main.add_command(lab.group, "lab")
