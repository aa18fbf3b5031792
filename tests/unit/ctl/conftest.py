"""Fixtures for swarmctl's unit tests: fake controllers on loopback ports and an in-process swarmctl.

Every fake controller serves mutual TLS with a certificate from a throwaway
CA (`ctl_tls.Cluster`), and `swarmctl` is given that CA's admin bundle with
`--tls-dir`; `swarmctl_bare` is given none, for the tests of how it finds one.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ctl_fakes import FakeControl, ServerThread
from ctl_tls import Cluster

from shoal import tls
from shoal.ctl import main as ctl_main
from shoal.v1 import control_pb2_grpc


@dataclasses.dataclass
class Result:
    """What one swarmctl run printed and returned."""

    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _no_host_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No address or bundle from the environment, and no default bundle from the real home directory."""
    monkeypatch.delenv("SWARMCTL_HOST", raising=False)
    monkeypatch.delenv("SWARMCTL_TLS_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def cluster() -> Cluster:
    """The fake controllers' CA."""
    return Cluster.new()


@pytest.fixture
def tls_dir(cluster: Cluster, tmp_path: Path) -> Path:
    """An admin bundle of `cluster`, as the controller writes it to <state-dir>/admin-tls."""
    directory = tmp_path / "admin-tls"
    cluster.admin().save(directory)
    return directory


@pytest.fixture
def serve(cluster: Cluster) -> Iterator[Callable[..., ServerThread]]:
    """Start servers for servicers (with a controller certificate of `cluster` unless told); all stop at the end."""
    started: list[ServerThread] = []

    def start(servicer: control_pb2_grpc.ControlServicer, bundle: tls.Bundle | None = None) -> ServerThread:
        server = ServerThread(servicer, bundle or cluster.controller()).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def fake() -> FakeControl:
    return FakeControl()


@pytest.fixture
def fake_addr(fake: FakeControl, serve: Callable[..., ServerThread]) -> str:
    return serve(fake).addr


@pytest.fixture
def closed_addr() -> str:
    """A loopback address nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def swarmctl_bare(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run a swarmctl command line in-process, as given, and capture what it printed."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = ctl_main.run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def swarmctl(swarmctl_bare: Callable[..., Result], tls_dir: Path) -> Callable[..., Result]:
    """Run a swarmctl command line in-process with `--tls-dir` the admin bundle of the fake controllers' CA."""
    return lambda *args: swarmctl_bare("--tls-dir", str(tls_dir), *args)


@pytest.fixture
def ctl(swarmctl: Callable[..., Result], fake_addr: str) -> Callable[..., Result]:
    """swarmctl pointed at the fake controller."""
    return lambda *args: swarmctl("-H", fake_addr, *args)
