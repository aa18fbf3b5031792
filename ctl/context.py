"""The global options every swarmctl command receives, and the way a command calls the API.

`main.py` parses `-H/--host`, `--format`, `--timeout` and `--debug` into a
frozen `Globals`; the noun modules receive it with `@pass_globals` and make
their one async call through `Globals.call`, which opens a `ControlClient`
for the duration of an `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import click

from shoal import errors, remotes, tls
from shoal.ctl import client

T = TypeVar("T")

#: The controller's default Control API port.
DEFAULT_PORT = 4240
DEFAULT_HOST = f"127.0.0.1:{DEFAULT_PORT}"
FORMATS = ("table", "json")


@dataclasses.dataclass(frozen=True)
class Globals:
    """Options given before the noun: where the controllers are and how to print."""

    hosts: tuple[str, ...]
    format: str = "table"
    timeout: float = 10.0
    debug: bool = False
    tls_dir: str = ""

    @property
    def json(self) -> bool:
        """True when `--format json` was given."""
        return self.format == "json"

    def call(self, fn: Callable[[client.ControlClient], Awaitable[T]]) -> T:
        """Run `fn` with a client connected to the controllers, in a fresh event loop."""

        bundle = load_bundle(self.tls_dir or default_tls_dir())

        async def run() -> T:
            hosts = remotes.Remotes(list(self.hosts))
            async with client.ControlClient(hosts, timeout=self.timeout, bundle=bundle) as control:
                return await fn(control)

        return asyncio.run(run())


pass_globals = click.make_pass_decorator(Globals)


def default_tls_dir() -> str:
    """Where swarmctl looks for its admin bundle when not told: $XDG_CONFIG_HOME/shoal/tls."""
    return str(tls.default_client_dir())


def load_bundle(directory: str) -> tls.Bundle:
    """The admin bundle, or one line that says what is missing and where to get it."""
    try:
        return tls.Bundle.load(directory)
    except errors.FailedPrecondition as exc:
        raise errors.FailedPrecondition(
            f"{exc}; swarmctl needs the admin bundle (ca.pem, cert.pem, key.pem) that the controller wrote to "
            "<state-dir>/admin-tls: copy it there, or point --tls-dir / SWARMCTL_TLS_DIR at it"
        ) from None


def pass_globals_and_format(fn: Callable[..., T]) -> Callable[..., T]:
    """Like `pass_globals`, plus a `--format` on the command itself that overrides the global one.

    Both `swarmctl --format json service ls` and `swarmctl service ls --format json` then work.
    """

    def wrapper(*args: Any, fmt: str | None, **kwargs: Any) -> T:
        g = click.get_current_context().find_object(Globals)
        if g is None:
            raise RuntimeError("swarmctl's global options were not parsed")
        return fn(dataclasses.replace(g, format=fmt) if fmt else g, *args, **kwargs)

    functools.update_wrapper(wrapper, fn)
    option = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format [default: global --format].",
    )
    return option(wrapper)


def parse_hosts(values: Iterable[str]) -> tuple[str, ...]:
    """Controller addresses from repeated and comma-separated `-H` values, with the default port added."""
    hosts: list[str] = []
    for value in values:
        for word in value.replace(",", " ").split():
            hosts.append(_with_port(word))
    return tuple(dict.fromkeys(hosts)) or default_hosts()


def default_hosts() -> tuple[str, ...]:
    """Without -H or SWARMCTL_HOST: the controllers `swarmd lab up` wrote down, else 127.0.0.1:4240."""
    path = tls.default_client_dir().parent / "hosts"
    try:
        words = path.read_text().replace(",", " ").split()
    except OSError:
        words = []
    return tuple(_with_port(w) for w in words) or (DEFAULT_HOST,)


def _with_port(addr: str) -> str:
    for scheme in ("tcp://", "grpc://"):
        if addr.startswith(scheme):
            addr = addr[len(scheme) :]
    addr = addr.rstrip("/")
    if addr.startswith("["):  # IPv6 literal: "[::1]" or "[::1]:4240"
        return addr if "]:" in addr else f"{addr}:{DEFAULT_PORT}"
    if addr.count(":") > 1:  # bare IPv6 without brackets
        return f"[{addr}]:{DEFAULT_PORT}"
    return addr if ":" in addr else f"{addr}:{DEFAULT_PORT}"
