"""Failover benchmark on a lab of real hosts (3 etcd members, 3 controllers, 3 nodes in namespaces).

Over several rounds it measures:
- node cut off (its veth down) → every task it ran RUNNING elsewhere (goal: heartbeat grace + 3 s);
- leader controller killed (kill -9) → the first write a new leader accepts (goal: ≤ 5 s), with the
  number of containers restarted meanwhile (goal: 0).

Prints a table with the median and maximum, and writes bench/results/failover.json.

    python bench/failover.py [--rounds 5] [--heartbeat 5s]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shoal import units  # noqa: E402
from shoal.lab import Lab, LabSpec  # noqa: E402
from shoal.v1 import control_pb2  # noqa: E402
from tests.fault.faultlab import FaultLab  # noqa: E402
from tests.integration.harness import wait_until  # noqa: E402

REPLICAS = 6


def node_loss(flab: FaultLab, service_id: str) -> float:
    victim = next(iter(sorted(flab.nodes_of(service_id))))
    start = time.monotonic()
    flab.lab.cut(victim)
    try:
        wait_until(
            lambda: len(flab.running_tasks(service_id)) == REPLICAS and victim not in flab.nodes_of(service_id),
            120,
            "replacements",
            interval=0.05,
        )
        took = time.monotonic() - start
    finally:
        flab.lab.heal(victim)
    flab.lab.wait_ready([victim])
    flab.wait_converged(service_id, "bench", REPLICAS, timeout=120)
    return took


def leader_kill(flab: FaultLab, n: int) -> tuple[float, int]:
    before = flab.running_ids("bench")
    old = flab.leader()
    start = time.monotonic()
    flab.signal(old, signal.SIGKILL)
    wait_until(
        lambda: (
            flab.ctl(
                "--timeout", "1", "service", "update", "--detach", "bench", "--label", f"round={n}", check=False
            ).returncode
            == 0
        ),
        60,
        "a write to be accepted",
        interval=0.05,
    )
    took = time.monotonic() - start
    flab.lab.procs.restart(old)
    # The next round starts once every node has registered with the new leader: until then a new
    # leader gives nodes twice the grace (as SwarmKit), which a node-loss round would measure instead.
    killed_at = time.time() - took
    wait_until(
        lambda: all(
            n.status.timestamp.ToSeconds() >= killed_at
            for n in flab.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes
        ),
        60,
        "every node registered with the new leader",
    )
    restarted = len(before - flab.running_ids("bench"))
    return took, restarted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heartbeat", default="5s")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "failover.json")
    args = parser.parse_args()
    grace = 3 * units.parse_duration(args.heartbeat)
    with tempfile.TemporaryDirectory(prefix="shoal-failover-") as tmp:
        lab = Lab(
            LabSpec(
                pathlib.Path(tmp),
                nodes=3,
                controllers=3,
                etcd_members=3,
                prefix="sbf",
                subnet="10.80.0.0/24",
                heartbeat_period=args.heartbeat,
            )
        )
        try:
            lab.up()
            flab = FaultLab(lab)
            service_id = flab.create("bench", REPLICAS)
            flab.wait_converged(service_id, "bench", REPLICAS, timeout=120)
            rows = []
            for n in range(args.rounds):
                loss = node_loss(flab, service_id)
                failover, restarted = leader_kill(flab, n)
                rows.append(
                    {
                        "round": n + 1,
                        "node_loss_s": loss,
                        "leader_failover_s": failover,
                        "containers_restarted": restarted,
                    }
                )
                print(
                    f"round {n + 1}: node loss {loss:.2f}s, leader failover {failover:.2f}s, "
                    f"{restarted} containers restarted",
                    flush=True,
                )
        finally:
            lab.down()
    loss = [r["node_loss_s"] for r in rows]
    fail = [r["leader_failover_s"] for r in rows]
    print(f"\nfailover: 3 etcd, 3 controllers, 3 nodes (namespaces), heartbeat {args.heartbeat}, {REPLICAS} replicas")
    print(f"{'':36} {'median':>8} {'max':>8}  goal")
    print(
        f"{'node cut off -> tasks running again':36} {statistics.median(loss):>7.2f}s {max(loss):>7.2f}s"
        f"  <= {grace + 3:.0f}s (grace {grace:.0f}s + 3s)"
    )
    print(f"{'leader killed -> first write':36} {statistics.median(fail):>7.2f}s {max(fail):>7.2f}s  <= 5s")
    print(f"{'containers restarted by failovers':36} {sum(r['containers_restarted'] for r in rows):>8}           0")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "heartbeat": args.heartbeat,
                "grace_s": grace,
                "rounds": rows,
                "node_loss_median_s": statistics.median(loss),
                "node_loss_max_s": max(loss),
                "leader_failover_median_s": statistics.median(fail),
                "leader_failover_max_s": max(fail),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
