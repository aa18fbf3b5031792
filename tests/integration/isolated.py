"""A test node that is a host of its own: a dockerd in its own network and mount namespaces.

The cluster fixture's agents share the machine's dockerd and so its
filesystem. A test that needs a node where a path does not exist (a bind
mount's source) starts this dockerd instead: in a network namespace the test
made (its own docker0, its own iptables), and a private mount namespace with
an empty tmpfs over the hidden directory. It cannot reach the test registry
(loopback is per namespace), so the test image is copied into it with
`docker save | docker load`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

from tests.integration import harness


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def dockerd_hiding(tmp: pathlib.Path, hidden: pathlib.Path, image: str) -> Iterator[str]:
    """A dockerd that sees `hidden` as an empty directory and has `image`; yields its DOCKER_HOST."""
    netns = f"sst-iso-{os.getpid()}"
    root = tmp / "dockerd"
    root.mkdir(parents=True)
    sock = root / "docker.sock"
    exec_root = pathlib.Path("/run") / netns  # short: containerd's socket path must fit in 108 bytes
    _ip("netns", "add", netns)
    proc: harness.Process | None = None
    host = f"unix://{sock}"
    try:
        _ip("-n", netns, "link", "set", "lo", "up")
        script = (
            f"mount -t tmpfs -o size=1m tmpfs {hidden} && exec dockerd --data-root={root / 'data'} "
            f"--exec-root={exec_root} --pidfile={root / 'docker.pid'} --host={host} "
            f"--cgroup-parent={netns} --log-level=warn"
        )
        proc = harness.Process(
            "isolated dockerd",
            ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--mount", "--propagation", "private",
             "sh", "-c", script],
            tmp / "dockerd.log",
        )
        harness.wait_until(
            lambda: subprocess.run(["docker", "-H", host, "info"], capture_output=True, timeout=10).returncode == 0,
            60,
            "the isolated dockerd",
        )
        harness.docker("pull", image)
        saved = subprocess.run(["docker", "-H", harness.DOCKER_HOST, "save", image], capture_output=True, check=True)
        subprocess.run(["docker", "-H", host, "load"], input=saved.stdout, capture_output=True, check=True)
        yield host
    finally:
        if proc is not None and proc.running:
            ids = subprocess.run(["docker", "-H", host, "ps", "-aq"], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(["docker", "-H", host, "rm", "-f", *ids], capture_output=True)
            proc.stop(30)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(exec_root, ignore_errors=True)
        shutil.rmtree(root / "data", ignore_errors=True)


def memory_holds(pid: int, needle: bytes) -> bool:
    """True if `needle` is anywhere in the readable memory of process `pid` (as root, via /proc/PID/mem)."""
    overlap = len(needle) - 1
    chunk = 1 << 20
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("r") or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            tail = b""
            for offset in range(start, end, chunk):
                try:
                    data = os.pread(mem.fileno(), min(chunk, end - offset), offset)
                except OSError:
                    break
                if needle in tail + data:
                    return True
                tail = data[-overlap:] if overlap else b""
    return False
