"""Network benchmark: the overlay and the routing mesh against the lab's underlay, on a lab of real hosts.

A server task on lab-2 and a client task on lab-1 share an overlay network. The probe (bench/netprobe.py)
runs in each task's network namespace, so its traffic takes the tasks' own path. Three paths from the
client to the same server, in interleaved rounds:

1. overlay: the server's virtual IP (DNAT on lab-1, VXLAN to lab-2);
2. mesh: lab-3's address, which runs no task of the service (DNAT and SNAT on lab-3, VXLAN to lab-2);
3. underlay: lab-2's address and a host-mode port of the same server (Docker's NAT, no VXLAN).

Each round measures TCP throughput (one connection, `--megabytes`) on each path in turn, and request
latency (a new connection per request, 64 bytes each way; `--requests` per path, one to each path in
turn, so that the machine's other load falls on every path alike; p50/p99 over all rounds). Goals:
overlay >= 0.8x underlay throughput and <= 1.2x its p99; mesh <= 1.3x the underlay's p99.

It also times service discovery: `service scale` adds a task, and the client's resolver is polled (10 ms)
until `tasks.NAME` answers its address: the time after the task's RUNNING report is the figure (goal
<= 2 s); and after `kill -9` of a task's container, until its address leaves the answers.

    python bench/network.py [--rounds 3] [--megabytes 256] [--requests 500] [--scales 5]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hollowlab import check_load, write_result  # noqa: E402
from shoal.lab import Lab, LabSpec  # noqa: E402
from shoal.units import from_timestamp  # noqa: E402
from shoal.v1 import control_pb2  # noqa: E402
from tests.fault.faultlab import FaultLab  # noqa: E402
from tests.integration.harness import wait_until  # noqa: E402

PROBE = str(ROOT / "bench" / "netprobe.py")
SINK, ECHO = 5001, 5002


class Bench:
    def __init__(self, flab: FaultLab) -> None:
        self.flab = flab
        self.lab = flab.lab

    def create(self, name: str, *args: str, replicas: int = 1) -> str:
        return self.flab.create(name, replicas, *args)

    def running(self, service_id: str, n: int) -> list[Any]:
        return wait_until(
            lambda: (lambda r: r if len(r) == n else None)(self.flab.running_tasks(service_id)), 120, f"{n} tasks"
        )

    def pid(self, task: Any) -> int:
        nodes = {n.id: n.name for n in self.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes}
        host = self.flab.spec.host(nodes[task.node_id])
        cid = self.lab.docker(host, "ps", "-q", "--filter", f"label=shoal.task.id={task.id}").stdout.strip()
        return int(self.lab.docker(host, "inspect", "-f", "{{.State.Pid}}", cid).stdout.strip())

    def probe(self, task_pid: int, *args: str, timeout: float = 300) -> dict[str, Any]:
        out = subprocess.run(
            ["nsenter", f"--net=/proc/{task_pid}/ns/net", sys.executable, PROBE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    def serve(self, task_pid: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/proc/{task_pid}/ns/net",
                sys.executable,
                PROBE,
                "serve",
                "--sink",
                str(SINK),
                "--echo",
                str(ECHO),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and "serving" in proc.stdout.readline()
        return proc


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def discovery(bench: Bench, client_pid: int, scales: int) -> dict[str, list[float]]:
    """Seconds from a new task's RUNNING to `tasks.NAME` answering it; from kill -9 to its address leaving."""
    flab = bench.flab
    svc = bench.create("named", "--network", "bench", "--constraint", "node.hostname!=lab-1")
    known = {t.id for t in bench.running(svc, 1)}
    to_name, to_gone = [], []
    for n in range(2, scales + 2):
        flab.ctl("service", "scale", f"named={n}")
        [new] = [t for t in bench.running(svc, n) if t.id not in known]
        known.add(new.id)
        address = new.networks[0].addresses[0].split("/")[0]
        seen = bench.probe(client_pid, "resolve", "tasks.named", "--until-has", address)["at"]
        ran = from_timestamp(new.status.timestamp)
        if seen is not None:
            to_name.append(max(0.0, seen - ran))
    for victim in flab.running_tasks(svc)[:scales]:
        address = victim.networks[0].addresses[0].split("/")[0]
        nodes = {n.id: n.name for n in bench.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes}
        host = flab.spec.host(nodes[victim.node_id])
        cid = bench.lab.docker(host, "ps", "-q", "--filter", f"label=shoal.task.id={victim.id}").stdout.strip()
        killed = time.time()
        bench.lab.docker(host, "kill", "-s", "KILL", cid)
        gone = bench.probe(client_pid, "resolve", "tasks.named", "--until-lacks", address)["at"]
        if gone is not None:
            to_gone.append(gone - killed)
    flab.ctl("service", "rm", "named")
    return {"running_to_name_s": to_name, "kill_to_gone_s": to_gone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--scales", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    check_load()
    root = pathlib.Path(tempfile.mkdtemp(prefix="shoal-netbench-"))
    lab = Lab(LabSpec(root, nodes=3, controllers=1, etcd_members=1, prefix="sbn", subnet="10.93.0.0/24"))
    servers: list[subprocess.Popen[str]] = []
    try:
        print("lab up ...", flush=True)
        lab.up()
        flab = FaultLab(lab)
        bench = Bench(flab)
        flab.ctl("network", "create", "bench")
        server = bench.create(
            "server",
            "--network",
            "bench",
            "--constraint",
            "node.hostname==lab-2",
            "--publish",
            f"1{SINK}:{SINK}",
            "--publish",
            f"1{ECHO}:{ECHO}",
            "--publish",
            f"published=2{SINK},target={SINK},mode=host",
            "--publish",
            f"published=2{ECHO},target={ECHO},mode=host",
        )
        client = bench.create("client", "--network", "bench", "--constraint", "node.hostname==lab-1")
        [server_task], [client_task] = bench.running(server, 1), bench.running(client, 1)
        servers.append(bench.serve(bench.pid(server_task)))
        cpid = bench.pid(client_task)
        svc = lab.control().GetService(control_pb2.GetServiceRequest(ref=server), timeout=3).service
        vip = svc.endpoint.virtual_ips[0].addr.split("/")[0]
        task_address = server_task.networks[0].addresses[0].split("/")[0]
        paths = {
            "overlay (VIP)": (vip, SINK, ECHO),
            # Not a goal: the overlay without the VIP's NAT, to tell the two costs apart.
            "overlay (task)": (task_address, SINK, ECHO),
            "mesh (lab-3)": (flab.spec.host("lab-3").ip, int(f"1{SINK}"), int(f"1{ECHO}")),
            "underlay (lab-2)": (flab.spec.host("lab-2").ip, int(f"2{SINK}"), int(f"2{ECHO}")),
        }
        # Warm up each path (ARP, conntrack, the probe's imports) before anything is timed.
        echoes = [f"{host}:{echo}" for host, _, echo in paths.values()]
        bench.probe(cpid, "latency", *echoes, "--requests", "20")
        for host, sink, _ in paths.values():
            bench.probe(cpid, "throughput", host, str(sink), "--bytes", str(8 << 20))
        results: dict[str, dict[str, list[float]]] = {p: {"mbit_per_s": [], "ms": []} for p in paths}
        for r in range(args.rounds):
            for name, (host, sink, _) in paths.items():
                t = bench.probe(cpid, "throughput", host, str(sink), "--bytes", str(args.megabytes << 20))
                results[name]["mbit_per_s"].append(t["mbit_per_s"])
                print(f"round {r + 1} {name}: {t['mbit_per_s']:.0f} Mbit/s", flush=True)
            # One request to each path in turn, so that the machine's other load falls on all of them alike.
            lat = bench.probe(cpid, "latency", *echoes, "--requests", str(args.requests))
            for name, target in zip(paths, echoes, strict=True):
                results[name]["ms"].extend(lat[target])
                p50, p99 = pct(lat[target], 0.5), pct(lat[target], 0.99)
                print(f"round {r + 1} {name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms", flush=True)
        found = discovery(bench, cpid, args.scales)
    finally:
        for proc in servers:
            proc.kill()
        lab.down()
    table: dict[str, dict[str, float]] = {}
    base = results["underlay (lab-2)"]
    base_tput, base_p99 = statistics.median(base["mbit_per_s"]), pct(base["ms"], 0.99)
    print(f"\n{'path':<18} {'Mbit/s (median)':>16} {'x underlay':>11} {'p50 ms':>8} {'p99 ms':>8} {'x underlay':>11}")
    for name, r in results.items():
        tput, p50, p99 = statistics.median(r["mbit_per_s"]), pct(r["ms"], 0.5), pct(r["ms"], 0.99)
        table[name] = {
            "mbit_per_s": tput,
            "p50_ms": p50,
            "p99_ms": p99,
            "throughput_ratio": tput / base_tput,
            "p99_ratio": p99 / base_p99,
        }
        print(f"{name:<18} {tput:>16.0f} {tput / base_tput:>11.2f} {p50:>8.3f} {p99:>8.3f} {p99 / base_p99:>11.2f}")
    for key, values in found.items():
        if values:
            print(f"{key}: median {statistics.median(values):.3f} s, max {max(values):.3f} s over {len(values)}")
        else:
            print(f"{key}: no measurement")
    print("goals: overlay >= 0.8x throughput and <= 1.2x p99, mesh <= 1.3x p99, discovery <= 2 s")
    write_result(
        "network",
        {"args": vars(args) | {"out": str(args.out)}, "paths": table, "discovery": found, "samples": results},
        args.out,
    )


if __name__ == "__main__":
    main()
