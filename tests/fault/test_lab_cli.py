"""`swarmd lab up/status/down` as users run them, and `lab down` after a crash left half a lab."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess

from tests.integration.harness import BIN

LAB = ["--prefix", "sfl", "--subnet", "10.81.0.0/24"]


def swarmd(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "swarmd"), "lab", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"swarmd lab {' '.join(args)}: {result.stdout}{result.stderr}")
    return result


def leftovers(root: str) -> list[str]:
    """Anything of the `sfl` lab still on the machine: namespaces, links, iptables rules, processes, mounts."""
    found = []
    found += [
        n
        for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if n.startswith("sfl-")
    ]
    found += [
        line
        for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
        if "sfl" in line
    ]
    found += [
        line
        for line in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout.splitlines()
        if "sfl-lab" in line
    ]
    found += [
        line
        for line in subprocess.run(["pgrep", "-af", "10.81.0."], capture_output=True, text=True).stdout.splitlines()
    ]
    # The registry, say, names no lab address, only files under the lab's directory.
    found += subprocess.run(["pgrep", "-af", root], capture_output=True, text=True).stdout.splitlines()
    found += [line for line in pathlib.Path("/proc/mounts").read_text().splitlines() if "/run/sfl-" in line]
    return found


def test_lab_up_status_and_down_after_a_crash(tmp_path: pathlib.Path) -> None:
    root = str(tmp_path / "lab")
    try:
        up = swarmd(
            "up", "--nodes", "2", "--controllers", "2", "--etcd-members", "1", "--dir", root, "--no-client-files", *LAB
        )
        assert "nodes: lab-1 10.81.0.101, lab-2 10.81.0.102" in up.stdout
        status = swarmd("status", "--dir", root, *LAB).stdout
        for host, ip in (("etcd-1", "10.81.0.11"), ("ctl-2", "10.81.0.22"), ("lab-2", "10.81.0.102")):
            line = next(line for line in status.splitlines() if line.startswith(host))
            assert ip in line and "dead" not in line
        assert "node READY" in status

        # A crash: every process killed hard, and the lab's record lost.
        record = pathlib.Path(root) / "lab.json"
        for pid in subprocess.run(["pgrep", "-f", "10.81.0."], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        record.unlink()
    finally:
        down = swarmd("down", "--dir", root, *LAB, check=False)
    assert down.returncode == 0, down.stderr
    assert not leftovers(root), leftovers(root)
    assert not pathlib.Path(root).exists()


def test_lab_refuses_what_it_cannot_do(tmp_path: pathlib.Path) -> None:
    bad = swarmd("up", "--nodes", "0", "--dir", str(tmp_path), check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    shape = swarmd("up", "--prefix", "toolongprefix", "--dir", str(tmp_path), check=False)
    assert shape.returncode == 1
    assert len(shape.stderr.strip().splitlines()) == 1 and "prefix" in shape.stderr
