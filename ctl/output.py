"""Rendering for swarmctl: aligned tables, key/value blocks, JSON and IDs.

The command modules turn protobuf messages into rows or key/value pairs and
hand them here; nothing in this module talks to a controller. Tables look like
`docker service ls`: an upper-case header and columns padded with spaces.
`--format json` is protobuf's JSON mapping (lowerCamelCase names, enum names).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
from google.protobuf import json_format, message, timestamp_pb2

from shoal import units

#: Spaces between table columns, as `docker ... ls` prints them.
_GAP = "   "

#: Width an ERROR cell is cut to in tables; `inspect` shows the whole text.
ERROR_WIDTH = 60


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print rows under an upper-case header, every column padded to its widest cell."""
    click.echo(format_table(headers, rows), nl=False)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The text of a table, one line per row plus the header, each ending in a newline."""
    lines = [[h.upper() for h in headers], *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    out = []
    for line in lines:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append(_GAP.join(padded).rstrip() + "\n")
    return "".join(out)


def echo_ids(ids: Iterable[str]) -> None:
    """Print one ID per line (`-q`)."""
    for object_id in ids:
        click.echo(object_id)


def echo_json(value: message.Message | Sequence[message.Message]) -> None:
    """Print a message as a JSON object, or a list of them as a JSON array, indented 2."""
    if isinstance(value, message.Message):
        data: object = json_format.MessageToDict(value)
    else:
        data = [json_format.MessageToDict(m) for m in value]
    click.echo(json.dumps(data, indent=2))


def echo_fields(fields: Sequence[tuple[str, str]]) -> None:
    """Print `Key: value` lines with the values aligned; multi-line values are indented."""
    width = max((len(k) for k, _ in fields), default=0) + 2
    for key, value in fields:
        lines = value.splitlines() or [""]
        click.echo(f"{key + ':':<{width}}{lines[0]}".rstrip())
        for line in lines[1:]:
            click.echo(f"{'':<{width}}{line}".rstrip())


def short_id(object_id: str) -> str:
    """The first 12 characters of an ID, as tables show them."""
    return object_id[:12]


def truncate(text: str, width: int = ERROR_WIDTH) -> str:
    """`text` on one line, cut to `width` characters with "..." when longer."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def timestamp(ts: timestamp_pb2.Timestamp) -> datetime.datetime | None:
    """A protobuf Timestamp as an aware UTC datetime, or None when unset (zero)."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=datetime.UTC)


def absolute_time(ts: timestamp_pb2.Timestamp) -> str:
    """An RFC 3339 time in UTC, or "-" when unset."""
    when = timestamp(ts)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else "-"


def relative_time(ts: timestamp_pb2.Timestamp, now: datetime.datetime | None = None) -> str:
    """How long ago `ts` was: "5 seconds ago", "About a minute ago"; "" when unset."""
    when = timestamp(ts)
    if when is None:
        return ""
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration((now - when).total_seconds()) + " ago"


def since(ts: timestamp_pb2.Timestamp, now: datetime.datetime | None = None) -> str:
    """Absolute and relative time, e.g. "2025-01-02T03:04:05Z (5 seconds ago)"; "-" when unset."""
    when = relative_time(ts, now)
    return f"{absolute_time(ts)} ({when})" if when else "-"


def human_duration(seconds: float) -> str:
    """A duration as Docker says it: "Less than a second", "5 seconds", "About an hour", "3 days"."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if round(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if round(hours) == 1:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    if hours < 24 * 7 * 2:
        return f"{int(hours // 24)} days"
    if hours < 24 * 30 * 2:
        return f"{int(hours // (24 * 7))} weeks"
    if hours < 24 * 365 * 2:
        return f"{int(hours // (24 * 30))} months"
    return f"{int(hours // (24 * 365))} years"


def enum_name(enum: Any, value: int) -> str:
    """The name of an enum value, or its number when this swarmctl is older than the server."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def cpus(nano_cpus: int) -> str:
    """Nano-CPUs as a CPU count: "0.5", "2"."""
    return f"{nano_cpus / 1e9:g}"


def size(n: int) -> str:
    """Bytes in Docker's binary units ("512MiB")."""
    return units.format_size(n)


def mapping(values: Mapping[str, str]) -> str:
    """`k=v` pairs, sorted, one per line ("" when empty)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(values.items()))


def _cell(value: object) -> str:
    text = str(value)
    return text if "\n" not in text else " ".join(text.split())
