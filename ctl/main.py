"""swarmctl's entry point: the click group, its global options, and the one place errors are printed.

`main()` (the `swarmctl` console script) parses the global options into a
`context.Globals`, runs one noun/verb from service.py, node.py or task.py, and
turns every failure into one line on stderr: `swarmctl: <message>`, exit 1,
or exit 2 for a usage error. A traceback is printed only with `--debug`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click

from shoal import errors
from shoal.ctl import cluster, context, events, files, network, node, service, task, volume

PROG = "swarmctl"

#: Raised by click >= 8.2 for a bare group (`swarmctl service`); older click prints the help itself.
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    filter(None, [getattr(click.exceptions, "NoArgsIsHelpError", None)])
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    "-H",
    "hosts",
    multiple=True,
    envvar="SWARMCTL_HOST",
    metavar="HOST:PORT",
    help=f"Controller address; repeat or separate with commas [default: {context.DEFAULT_HOST}].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(context.FORMATS),
    default="table",
    show_default=True,
    help="Output format of ls, inspect and ps.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Deadline of each call to a controller.",
)
@click.option(
    "--tls-dir",
    envvar="SWARMCTL_TLS_DIR",
    default="",
    metavar="DIR",
    help="The admin client bundle (ca.pem, cert.pem, key.pem)  [default: ~/.config/shoal/tls].",
)
@click.option("--debug", is_flag=True, help="Print tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, hosts: tuple[str, ...], fmt: str, timeout: float, tls_dir: str, debug: bool) -> None:
    """Drive a Shoal cluster through its controllers' Control API."""
    ctx.obj = context.Globals(
        hosts=context.parse_hosts(hosts), format=fmt, timeout=timeout, debug=debug, tls_dir=tls_dir
    )


cli.add_command(service.service_group)
cli.add_command(node.node_group)
cli.add_command(task.task_group)
cli.add_command(cluster.cluster_group)
cli.add_command(files.secret_group)
cli.add_command(files.config_group)
cli.add_command(network.network_group)
cli.add_command(events.events_command)
cli.add_command(volume.volume_group)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The `swarmctl` console script."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: Sequence[str]) -> int:
    """Run one swarmctl command line and return its exit status; never raises."""
    debug = False
    try:
        with cli.make_context(PROG, list(argv)) as ctx:
            debug = bool(ctx.params.get("debug"))
            result = cli.invoke(ctx)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:
        # A bare `swarmctl` or `swarmctl service` asks for the help text, not a fix.
        click.echo(exc.ctx.get_help())  # type: ignore[attr-defined]
        return 0
    except click.ClickException as exc:
        _fail(usage_line(exc))
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader (`| head`) left: stop quietly, and keep Python from failing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except errors.ShoalError as exc:
        if debug:
            traceback.print_exc()
        _fail(_one_line(str(exc)) or type(exc).__name__)
        return 1
    except Exception as exc:  # the top level must never show a bare traceback
        if debug:
            traceback.print_exc()
        _fail(f"unexpected error: {type(exc).__name__}: {_one_line(str(exc))}")
        return 1


def usage_line(exc: click.ClickException) -> str:
    """A click error as one line, pointing at the command's --help for usage errors."""
    message = _one_line(exc.format_message()).rstrip(".")
    message = message[:1].lower() + message[1:]
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


def _fail(message: str) -> None:
    click.echo(f"{PROG}: {message}", err=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())
