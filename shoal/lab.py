"""`swarmd lab`: a local lab cluster (work in progress)."""

from __future__ import annotations

import click


@click.group()
def group() -> None:
    """Run a local lab cluster: a controller and agents as local processes."""
