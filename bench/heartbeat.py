"""Heartbeat load: N hollow nodes heartbeating at the default period, and nothing else, for a while.

The default period is 5 s until the fleet would send more than the controller's
heartbeat budget (--max-heartbeats-per-second, 250/s): then it is nodes / 250
(20 s at 5,000 nodes), as Nomad scales its heartbeat TTL. `--max-rate 0`
measures every node at 5 s.

A real etcd, one controller and the hollow agents (in processes of up to
2,500 nodes) run as separate processes. Once every node is READY the window
starts: the controller's CPU (cores), the etcd writes it caused per second
(etcd's own counters of committed proposals and of puts), heartbeat latency
as the agents measure it (P50/P99 of the Heartbeat round trip), the
controller's view of lateness, and false DOWN nodes (every DOWN is false:
no node stops). Goals at 5,000 nodes: zero false DOWN, controller below half
a core.

    python bench/heartbeat.py [--nodes 1000,5000] [--duration 300] [--heartbeat 5s] [--max-rate 250]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab, measure  # noqa: E402
from shoal.v1 import control_pb2, types_pb2  # noqa: E402

PER_PROCESS = 2500
GOAL_CORES = 0.5

ETCD_WRITES = ("etcd_server_proposals_committed_total", "etcd_mvcc_put_total", "etcd_mvcc_txn_total")


def start_fleet(lab: hollowlab.HollowLab, nodes: int, *, prefix: str = "h") -> None:
    first = 1
    for i, n in enumerate(range(0, nodes, PER_PROCESS)):
        count = min(PER_PROCESS, nodes - n)
        lab.start_hollow(f"p{i + 1}", count, first=first, prefix=prefix)
        first += count


def one(nodes: int, args: argparse.Namespace) -> dict:
    with hollowlab.HollowLab(heartbeat=args.heartbeat) as lab:
        lab.start_etcd()
        lab.start_controller("--max-heartbeats-per-second", str(args.max_rate))
        start_fleet(lab, nodes)
        joined = lab.wait_nodes_ready(nodes, timeout=args.join_timeout)
        print(f"{nodes} hollow nodes READY after {joined:.0f}s; settling {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        ctl0 = lab.controller_metrics()
        etcd0 = measure.scrape(lab.etcd_metrics)
        agents0 = {name: measure.scrape(addr) for name, addr in lab.hollow_metrics.items()}
        processes = lab.meter()
        with hollowlab.Profiler(lab, ["controller"], args.profile):
            time.sleep(args.duration)
        usage = processes.stop()
        ctl1 = lab.controller_metrics()
        etcd1 = measure.scrape(lab.etcd_metrics)
        agents1 = {name: measure.scrape(addr) for name, addr in lab.hollow_metrics.items()}
        final = lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=30).nodes
        not_ready = sum(1 for n in final if n.status.state != types_pb2.NodeStatus.READY)
    window = usage["controller"].wall_s
    merged0: dict[str, float] = {}
    merged1: dict[str, float] = {}
    for name in agents1:
        for key, value in agents0.get(name, {}).items():
            merged0[key] = merged0.get(key, 0.0) + value
        for key, value in agents1[name].items():
            merged1[key] = merged1.get(key, 0.0) + value
    hb = "shoal_agent_heartbeat_duration_seconds"
    beats = merged1.get(f"{hb}_count", 0) - merged0.get(f"{hb}_count", 0)
    down = ctl1.get("shoal_dispatcher_nodes_down_total", 0) - ctl0.get("shoal_dispatcher_nodes_down_total", 0)
    return {
        "nodes": nodes,
        "heartbeat": args.heartbeat,
        "window_s": round(window, 1),
        "join_s": round(joined, 1),
        "heartbeats": int(beats),
        "heartbeats_per_s": round(beats / window, 1),
        "max_heartbeats_per_s": args.max_rate,
        "period_s": round(nodes * window / beats, 2) if beats else None,
        "controller_cores": round(usage["controller"].cores, 3),
        "etcd_writes_per_s": {k: round((etcd1.get(k, 0) - etcd0.get(k, 0)) / window, 2) for k in ETCD_WRITES},
        "heartbeat_rtt_s": {
            "p50": measure.histogram_quantile(merged0, merged1, hb, 0.5),
            "p99": measure.histogram_quantile(merged0, merged1, hb, 0.99),
        },
        "lateness_p99_s": measure.histogram_quantile(ctl0, ctl1, "shoal_dispatcher_heartbeat_lateness_seconds", 0.99),
        "false_down": int(down),
        "not_ready_at_end": not_ready,
        "goal_met": down == 0 and not_ready == 0 and (nodes < 5000 or usage["controller"].cores < GOAL_CORES),
        "processes": usage,
    }


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    rows = [one(n, args) for n in args.nodes]
    limit = f"at most {args.max_rate:g}/s" if args.max_rate else "no limit"
    print(
        f"\nheartbeat load: hollow nodes, period {args.heartbeat} (+-10%), {limit}, nothing else, {args.duration:.0f}s"
    )
    print(
        f"  {'nodes':>6} {'period':>7} {'beats/s':>8} {'ctl cores':>9} {'etcd props/s':>12} {'etcd puts/s':>11} "
        f"{'rtt p50':>8} {'rtt p99':>8} {'late p99':>8} {'false DOWN':>10}"
    )
    for r in rows:
        w = r["etcd_writes_per_s"]
        rtt = r["heartbeat_rtt_s"]
        print(
            f"  {r['nodes']:>6} {r['period_s'] or 0:>6.1f}s {r['heartbeats_per_s']:>8.0f} "
            f"{r['controller_cores']:>9.3f} "
            f"{w['etcd_server_proposals_committed_total']:>12.2f} {w['etcd_mvcc_put_total']:>11.2f} "
            f"{_s(rtt['p50']):>8} {_s(rtt['p99']):>8} {_s(r['lateness_p99_s']):>8} {r['false_down']:>10}"
        )
    for r in rows:
        print(f"\n  {r['nodes']} nodes:")
        print(measure.usage_table(r["processes"]))
    print(f"\n  goal at 5,000 nodes: 0 false DOWN, controller < {GOAL_CORES} core")
    result = {"rows": rows, "goal_controller_cores": GOAL_CORES}
    hollowlab.write_result("heartbeat", result, args.out)
    return result


def _s(value: float | None) -> str:
    return "-" if value is None else f"<={value:g}s"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=_ints, default=[1000, 5000])
    p.add_argument("--duration", type=float, default=300)
    p.add_argument("--settle", type=float, default=15, help="seconds after every node is READY before measuring")
    p.add_argument("--heartbeat", default="5s")
    p.add_argument("--max-rate", type=float, default=250.0,
                   help="the controller's --max-heartbeats-per-second (0: every node beats at --heartbeat)")
    p.add_argument("--join-timeout", type=float, default=900)
    p.add_argument("--out", type=pathlib.Path, default=None)
    p.add_argument("--profile", type=pathlib.Path, default=None, help="py-spy the controller into this folder")
    return p


if __name__ == "__main__":
    run(parser().parse_args())
