"""`swarmd agent` flags: parsing, defaults, and one-line errors."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from agent_fakes import NODE_ID
from agent_tls import Cluster
from click.testing import CliRunner

from shoal.agent import main
from shoal.agent.settings import AgentSettings


def parse(args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        return main.command.make_context("agent", args).params


def test_controllers_may_be_repeated_and_comma_separated() -> None:
    params = parse(
        ["--controller", "10.0.0.1:4240,10.0.0.2:4240", "--controller", "10.0.0.3:4240", "--node-name", "n1"]
    )
    assert params["controllers"] == ("10.0.0.1:4240", "10.0.0.2:4240", "10.0.0.3:4240")


def test_defaults() -> None:
    params = parse(["--controller", "c:4240", "--node-name", "n1"], env={"DOCKER_HOST": "unix:///tmp/d.sock"})
    assert params["docker_host"] == "unix:///tmp/d.sock"
    assert params["listen"] == "127.0.0.1:4250"
    assert params["metrics_listen"] == "127.0.0.1:9430"
    assert params["labels"] == {}
    settings = AgentSettings(controllers=("c:4240",), node_name="n1")
    assert settings.state_dir == Path("/var/lib/shoal/agent/n1")
    assert settings.node_id_path == Path("/var/lib/shoal/agent/n1/node_id")


def test_labels() -> None:
    params = parse(["--controller", "c:1", "--node-name", "n1", "--label", "zone=a", "--label", "ssd=true"])
    assert params["labels"] == {"zone": "a", "ssd": "true"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--node-name", "n1"], "--controller"),
        (["--controller", "c:4240"], "--node-name"),
        (["--controller", "c:4240", "--node-name", "Lab_1"], "DNS label"),
        (["--controller", "c:4240", "--node-name", "-x"], "DNS label"),
        (["--controller", "c:4240", "--node-name", "a" * 64], "DNS label"),
        (["--controller", "nocolon", "--node-name", "n1"], "HOST:PORT"),
        (["--controller", "c:4240", "--node-name", "n1", "--listen", "x"], "HOST:PORT"),
        (["--controller", "c:4240", "--node-name", "n1", "--label", "novalue"], "KEY=VALUE"),
        (["--controller", "c:4240", "--node-name", "n1", "--log-level", "loud"], "--log-level"),
        (["--controller", "c:4240", "--node-name", "n1", "--bogus"], "--bogus"),
    ],
)
def test_bad_flags_are_one_line_errors(args: list[str], needle: str) -> None:
    result = CliRunner().invoke(main.command, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output


def test_a_63_character_name_is_fine() -> None:
    assert parse(["--controller", "c:1", "--node-name", "a" * 63])["node_name"] == "a" * 63


@pytest.fixture
def root_logging() -> Iterator[None]:
    """`main` configures the root logger for a daemon; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """An agent state dir; `swarmd agent` mounts a tmpfs at <state-dir>/files and keeps it, so unmount it after."""
    yield tmp_path
    files = tmp_path / "files"
    if os.path.ismount(files):
        subprocess.run(["umount", str(files)], check=True)


def test_without_a_certificate_or_a_join_token_is_a_one_line_error(state_dir: Path, root_logging: None) -> None:
    args = ["--controller", "127.0.0.1:1", "--node-name", "n1", "--state-dir", str(state_dir)]
    result = CliRunner().invoke(main.command, [*args, "--listen", "127.0.0.1:0"], env={"SHOAL_JOIN_TOKEN": None})
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: this node has no certificate in {state_dir / 'tls'} and no --join-token")
    assert "Traceback" not in result.output


def test_a_malformed_join_token_is_a_one_line_error(state_dir: Path, root_logging: None) -> None:
    args = ["--controller", "127.0.0.1:1", "--node-name", "n1", "--state-dir", str(state_dir)]
    result = CliRunner().invoke(main.command, [*args, "--join-token", "SHOALTKN-1-nonsense"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: invalid join token"
    assert "Traceback" not in result.output


def test_an_address_in_use_is_a_one_line_error(state_dir: Path, root_logging: None) -> None:
    Cluster.new().node(NODE_ID).save(state_dir / "tls")  # a node that joined earlier
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--controller", "127.0.0.1:1", "--node-name", "n1", "--state-dir", str(state_dir)]
        result = CliRunner().invoke(main.command, [*args, "--listen", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"Error: cannot listen on 127.0.0.1:{port}: address in use or not available"
    )
    assert "Traceback" not in result.output


def test_command_is_a_click_command() -> None:
    assert isinstance(main.command, click.Command)
