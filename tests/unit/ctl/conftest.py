"""Fixtures for swarmctl's unit tests: fake controllers on loopback ports and an in-process swarmctl."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator

import pytest
from ctl_fakes import FakeControl, ServerThread

from shoal.ctl import main as ctl_main
from shoal.v1 import control_pb2_grpc


@dataclasses.dataclass
class Result:
    """What one swarmctl run printed and returned."""

    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _no_host_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARMCTL_HOST", raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[[control_pb2_grpc.ControlServicer], ServerThread]]:
    """Start servers for servicers; all are stopped at the end of the test."""
    started: list[ServerThread] = []

    def start(servicer: control_pb2_grpc.ControlServicer) -> ServerThread:
        server = ServerThread(servicer).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def fake() -> FakeControl:
    return FakeControl()


@pytest.fixture
def fake_addr(fake: FakeControl, serve: Callable[[control_pb2_grpc.ControlServicer], ServerThread]) -> str:
    return serve(fake).addr


@pytest.fixture
def closed_addr() -> str:
    """A loopback address nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def swarmctl(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run a swarmctl command line in-process and capture what it printed."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = ctl_main.run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def ctl(swarmctl: Callable[..., Result], fake_addr: str) -> Callable[..., Result]:
    """swarmctl pointed at the fake controller."""
    return lambda *args: swarmctl("-H", fake_addr, *args)
