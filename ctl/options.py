"""Click parameter types for swarmctl flags: KEY=VALUE pairs, durations, sizes, CPU counts.

Each one only parses a format and reports a bad value as a usage error (exit
status 2); whether a value is allowed (a name's rules, a replica count) is the
controller's decision.
"""

from __future__ import annotations

from typing import Any

import click

from shoal import units
from shoal.v1 import types_pb2


class KeyValue(click.ParamType[Any, Any]):
    """`KEY=VALUE` (the value may be empty) as a `(key, value)` tuple."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key.strip(), val


class Duration(click.ParamType[Any, Any]):
    """A duration such as "5s", "1m30s" or "250ms", as seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return units.parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType[Any, Any]):
    """A size such as "512M" or "1G", as bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            return units.parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Cpus(click.ParamType[Any, Any]):
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


class FileRef(click.ParamType[Any, Any]):
    """`NAME[,target=PATH][,mode=0400]`, a secret or config to mount, as a FileReference."""

    name = "NAME[,target=PATH,mode=MODE]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, types_pb2.FileReference):
            return value
        name, *rest = str(value).split(",")
        ref = types_pb2.FileReference(name=name.strip())
        if not ref.name:
            self.fail(f"{value!r}: a name is needed", param, ctx)
        for item in rest:
            key, sep, val = item.partition("=")
            key = key.strip()
            if not sep or key not in ("target", "mode"):
                self.fail(f"{value!r}: expected target=PATH or mode=MODE after the name", param, ctx)
            if key == "target":
                ref.target = val
            else:
                try:
                    ref.mode = int(val, 8)
                except ValueError:
                    self.fail(f"{value!r}: mode must be octal, e.g. 0400", param, ctx)
        return ref


FILE_REF = FileRef()


class Port(click.ParamType[Any, Any]):
    """`[PUBLISHED:]TARGET[/tcp|udp]` as a PortConfig (PUBLISHED defaults to TARGET)."""

    name = "[PUBLISHED:]TARGET[/PROTO]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, types_pb2.PortConfig):
            return value
        text, _, proto = str(value).partition("/")
        published, _, target = text.rpartition(":")
        try:
            port = types_pb2.PortConfig(target=int(target), published=int(published) if published else int(target))
        except ValueError:
            self.fail(f"{value!r} is not [PUBLISHED:]TARGET[/tcp|udp]", param, ctx)
        port.protocol = proto
        return port


PORT = Port()
