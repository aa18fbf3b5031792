"""`swarmctl secret` and `swarmctl config`: create, list, inspect and remove.

Secret data goes to the controller once and never comes back: `inspect`
shows a secret's name, labels and digest only. Config data is not secret and
`config inspect` shows it.
"""

from __future__ import annotations

import functools
import sys

import click

from shoal import errors
from shoal.ctl import client, context, options, output
from shoal.v1 import types_pb2

HEADERS = ("ID", "NAME", "CREATED", "UPDATED")


def _read(path: str | None) -> bytes:
    if path is None:
        raise errors.InvalidArgument("give the data with -f FILE, or -f - to read it from standard input")
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise errors.InvalidArgument(f"cannot read {path}: {exc.strerror}") from None


def _group(kind: str, confidential: bool) -> click.Group:
    """The create/ls/inspect/rm verbs for "Secret" or "Config"."""
    noun = kind.lower()

    @click.group(noun, help=f"Manage {noun}s.")
    def group() -> None:
        pass

    @group.command("create")
    @click.argument("name")
    @click.option("--file", "-f", "path", metavar="FILE", help="Read the data from FILE ('-' for stdin).")
    @click.option("--label", "-l", "labels", type=options.KEY_VALUE, multiple=True, help="Label (repeatable).")
    @context.pass_globals
    def create(g: context.Globals, name: str, path: str | None, labels: tuple[tuple[str, str], ...]) -> None:
        """Create NAME from a file or standard input; print its ID."""
        spec = types_pb2.FileSpec(name=name, labels=dict(labels), data=_read(path))
        reply = g.call(lambda c: c.create_file(kind, spec))
        click.echo(getattr(reply, noun).id)

    @group.command("ls", help=f"List {noun}s.")
    @click.option("--quiet", "-q", is_flag=True, help=f"Print only {noun} IDs.")
    @context.pass_globals_and_format
    def ls(g: context.Globals, quiet: bool) -> None:
        items = list(getattr(g.call(lambda c: c.list_files(kind)), f"{noun}s"))
        if quiet:
            output.echo_ids(i.id for i in items)
        elif g.json:
            output.echo_json(items)
        else:
            output.echo_table(
                HEADERS,
                (
                    (
                        output.short_id(i.id),
                        i.spec.name,
                        output.since(i.meta.created_at),
                        output.since(i.meta.updated_at),
                    )
                    for i in items
                ),
            )

    @group.command("inspect")
    @click.argument("refs", metavar="NAME...", nargs=-1, required=True)
    @context.pass_globals_and_format
    def inspect(g: context.Globals, refs: tuple[str, ...]) -> None:
        """Show details (never a secret's data)."""

        async def fetch(c):  # type: ignore[no-untyped-def]
            return [getattr(await c.get_file(kind, ref), noun) for ref in refs]

        items = g.call(fetch)
        if g.json:
            output.echo_json(items[0] if len(items) == 1 else items)
            return
        for n, item in enumerate(items):
            if n:
                click.echo()
            fields = [
                ("ID", item.id),
                ("Name", item.spec.name),
                ("Labels", output.mapping(item.spec.labels)),
                ("Created", output.absolute_time(item.meta.created_at)),
            ]
            if confidential:
                fields.append(("SHA-256", item.digest))
            else:
                fields.append(("Data", item.spec.data.decode(errors="replace")))
            output.echo_fields(fields)

    @group.command("rm")
    @click.argument("refs", metavar="NAME...", nargs=-1, required=True)
    @context.pass_globals
    def rm(g: context.Globals, refs: tuple[str, ...]) -> None:
        """Remove; refused while a service uses it."""
        for ref in refs:
            g.call(functools.partial(client.ControlClient.remove_file, kind=kind, ref=ref))
            click.echo(ref)

    return group


secret_group = _group("Secret", confidential=True)
config_group = _group("Config", confidential=False)
