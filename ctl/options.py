"""Click parameter types for swarmctl flags: KEY=VALUE pairs, durations, sizes, CPU counts.

Each one only parses a format and reports a bad value as a usage error (exit
status 2); whether a value is allowed (a name's rules, a replica count) is the
controller's decision.
"""

from __future__ import annotations

from typing import Any

import click

from shoal import units


class KeyValue(click.ParamType):
    """`KEY=VALUE` (the value may be empty) as a `(key, value)` tuple."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key.strip(), val


class Duration(click.ParamType):
    """A duration such as "5s", "1m30s" or "250ms", as seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return units.parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType):
    """A size such as "512M" or "1G", as bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            return units.parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Cpus(click.ParamType):
    """A CPU count such as "0.5" or "2", as nano-CPUs."""

    name = "CPUS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            return units.parse_cpus(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


KEY_VALUE = KeyValue()
DURATION = Duration()
SIZE = Size()
CPUS = Cpus()
