"""Clients of the controller's Docker API nobody here wrote: the docker CLIs, and raw HTTP over its unix socket.

Both CLIs on the machine are used as they come: /usr/bin/docker (Debian's
20.10, API 1.41) and, when present, /usr/local/bin/docker (a newer one that
negotiates down to the version the controller serves).
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import socket
import subprocess
import threading
from typing import Any

from tests.integration.harness import Cluster

DEBIAN_CLI = "/usr/bin/docker"
NEWER_CLI = "/usr/local/bin/docker"
CLIS = [c for c in (DEBIAN_CLI, NEWER_CLI) if os.path.exists(c)]


def unix_env(cluster: Cluster) -> dict[str, str]:
    """The environment that points a docker CLI at the controller's unix socket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = f"unix://{cluster.docker_sock}"
    return env


def tls_env(cluster: Cluster) -> dict[str, str]:
    """The environment of a remote docker CLI: TCP with the admin bundle as Docker's cert path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(
        DOCKER_HOST=f"tcp://{cluster.docker_tcp}", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(cluster.admin_tls)
    )
    return env


def cli(
    cluster: Cluster, *args: str, binary: str = DEBIAN_CLI, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run a docker CLI against the controller (its unix socket unless `env` says otherwise)."""
    return subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or unix_env(cluster),
        stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed ({result.returncode}): {result.stderr}{result.stdout}"
    return result.stdout


class Lines:
    """A long-running CLI command (logs -f, events) whose output lines are collected as they come."""

    def __init__(self, cluster: Cluster, *args: str, binary: str = DEBIAN_CLI) -> None:
        self.proc = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=unix_env(cluster),
            stdin=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: pathlib.Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def http_call(cluster: Cluster, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """One raw request to the Docker API's unix socket: (status, parsed JSON body or text)."""
    conn = _UnixConnection(cluster.docker_sock)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        content_type = resp.getheader("Content-Type", "")
    finally:
        conn.close()
    return resp.status, json.loads(text) if content_type == "application/json" and text else text
