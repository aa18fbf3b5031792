"""The lab's processes: started detached, recorded in `<root>/lab.json`, stopped by PID.

Each record keeps the command line, so a process can be started again (the
fault suite kills and restarts daemons), and the start time the kernel
reports, so a recycled PID is never mistaken for a lab process.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from typing import Any


def _start_time(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, start: str = "") -> bool:
    """True if `pid` runs (and is the process that started at `start`, when given), not a zombie."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (not start or fields[19] == start)


class Processes:
    """The record of a lab's processes."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.path = root / "lab.json"

    def load(self) -> dict[str, Any]:
        if self.path.exists():
            record: dict[str, Any] = json.loads(self.path.read_text())
            return record
        return {"processes": {}}

    def save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.path)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start `argv` detached (its own session), logging to `<root>/logs/<name>.log`; record it."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        state = self.load()
        state["processes"][name] = {"pid": proc.pid, "start": _start_time(proc.pid), "argv": argv, "env": env or {}}
        self.save(state)
        return proc.pid

    def restart(self, name: str) -> int:
        """Start a recorded process again with the same command line."""
        record = self.load()["processes"][name]
        self.stop(name)
        return self.spawn(name, record["argv"], record.get("env"))

    def running(self, name: str) -> bool:
        record = self.load()["processes"].get(name)
        return record is not None and alive(record["pid"], record.get("start", ""))

    def signal(self, name: str, sig: int) -> None:
        """Send `sig` to the process group of a running recorded process."""
        record = self.load()["processes"].get(name)
        if record is not None and alive(record["pid"], record.get("start", "")):
            os.killpg(record["pid"], sig)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; a process that is gone is fine."""
        record = self.load()["processes"].get(name)
        if record is None:
            return
        pid, start = record["pid"], record.get("start", "")
        if not alive(pid, start):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
            os.killpg(pid, signal.SIGCONT)  # a paused (SIGSTOP) process must wake up to exit
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid, start):
            os.killpg(pid, signal.SIGKILL)
            while alive(pid, start):
                time.sleep(0.05)

    def names(self) -> list[str]:
        return list(self.load()["processes"])


def referencing(path: pathlib.Path) -> list[int]:
    """Processes whose command line names `path` (a lab's own daemons, also when its record is lost),
    except this process and its ancestors (`swarmd lab down --dir PATH` names it too)."""
    mine, pid = set(), os.getpid()
    while pid > 1:
        mine.add(pid)
        try:
            pid = int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    needle = str(path).encode()
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
