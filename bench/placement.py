"""Placement throughput, a scaled C1M: services × tasks on hollow nodes, a third of them constrained.

A real etcd, one controller and the hollow agents run as separate processes.
A third of the nodes carry `tier=gold`, and a third of the services are
constrained to them (`node.labels.tier==gold`). All services are created
through the Control API at once (none waits for another's reply); an etcd watch in this process sees every
task's states as the store has them. Reported: placements/s (first to last
placement seen), time to first and to all RUNNING from the first submission,
P50/P95/P99 submission→RUNNING per task, the placement rate per tenth of the
tasks (does it stay flat as the cluster fills?), and each process's CPU and
memory. Goal (full run): 100,000 tasks on 1,000 nodes all RUNNING within 30 s.

    python bench/placement.py [--nodes 1000] [--services 100] [--tasks 1000] [--start-delay 0]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab, measure  # noqa: E402
from tests.integration import harness  # noqa: E402

GOAL_S = 30.0
GOLD = "node.labels.tier==gold"


def start_fleet(lab: hollowlab.HollowLab, nodes: int, *, start_delay: str = "0") -> None:
    """A third of `nodes` labelled tier=gold, the rest tier=std, in two hollow processes."""
    gold = max(1, nodes // 3)
    lab.start_hollow("gold", gold, first=1, labels={"tier": "gold"}, start_delay=start_delay)
    if nodes - gold:
        lab.start_hollow("std", nodes - gold, first=gold + 1, labels={"tier": "std"}, start_delay=start_delay)


def deciles(times: list[float]) -> list[float]:
    """Placements per second within each tenth of the placements, in order."""
    times = sorted(times)
    n = len(times)
    if n < 20:
        return []
    rates = []
    for i in range(10):
        a, b = times[i * n // 10], times[min(n - 1, (i + 1) * n // 10 - 1)]
        count = (i + 1) * n // 10 - i * n // 10
        rates.append(count / (b - a) if b > a else float("inf"))
    return rates


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    total = args.services * args.tasks
    with hollowlab.HollowLab(heartbeat=args.heartbeat) as lab:
        lab.start_etcd()
        lab.start_controller()
        start_fleet(lab, args.nodes, start_delay=args.start_delay)
        joined = lab.wait_nodes_ready(args.nodes, timeout=args.timeout)
        print(f"{args.nodes} hollow nodes READY after {joined:.1f}s", flush=True)
        watch = hollowlab.TaskWatch(lab).start()
        profiler = hollowlab.Profiler(lab, ["controller", "hollow std"], args.profile).__enter__()
        meter = lab.meter()
        traffic = measure.Traffic(lab).start()
        t0 = time.monotonic()
        # Every service at once, as C1M submits its jobs: each task's latency counts from t0.
        futures = [
            lab.create_service_async(f"c1m-{i}", args.tasks, constraints=[GOLD] if i % 3 == 2 else [])
            for i in range(args.services)
        ]
        submitted = {f.result().service.id: t0 for f in futures}
        t_submit = time.monotonic() - t0
        harness.wait_until(
            lambda: watch.running_now() >= total, args.timeout, f"{total} tasks RUNNING", interval=0.1
        )
        t_all = time.monotonic() - t0
        usage = meter.stop()
        counts = traffic.stop()
        profiler.__exit__()
        watch.stop()
        mine = [t for t, s in watch.service_of.items() if s in submitted]
        created = sorted(watch.created[t] for t in mine if t in watch.created)
        placed = sorted(watch.assigned[t] for t in mine if t in watch.assigned)
        running = sorted(watch.running[t] for t in mine if t in watch.running)
        latencies = [watch.running[t] - submitted[watch.service_of[t]] for t in mine if t in watch.running]
        span = placed[-1] - placed[0] if len(placed) > 1 else 0.0
        result = {
            "nodes": args.nodes,
            "services": args.services,
            "tasks_per_service": args.tasks,
            "tasks": total,
            "constrained_services": args.services // 3,
            "start_delay": args.start_delay,
            "heartbeat": args.heartbeat,
            "join_s": round(joined, 2),
            "submit_s": round(t_submit, 3),
            "placements_per_s": round(len(placed) / span, 1) if span else None,
            "last_creation_s": round(created[-1] - t0, 3) if created else None,
            "first_placement_s": round(placed[0] - t0, 3) if placed else None,
            "last_placement_s": round(placed[-1] - t0, 3) if placed else None,
            "first_running_s": round(running[0] - t0, 3) if running else None,
            "all_running_s": round(t_all, 3),
            "end_to_end_per_s": round(total / t_all, 1),
            "submit_to_running_s": {k: round(v, 3) for k, v in hollowlab.percentiles(latencies).items()},
            "creation_rate_by_tenth": [round(r, 1) for r in deciles(created)],
            "placement_rate_by_tenth": [round(r, 1) for r in deciles(placed)],
            "goal_all_running_s": GOAL_S,
            "goal_met": t_all <= GOAL_S,
            "processes": usage,
            "traffic": counts,
            "event_loop_lag_s": traffic.lag,
        }
    print_table(result)
    hollowlab.write_result("placement", result, args.out)
    return result


def print_table(r: dict) -> None:
    print(
        f"\nplacement: {r['tasks']} tasks ({r['services']} services x {r['tasks_per_service']}, "
        f"{r['constrained_services']} constrained to a third of the nodes) on {r['nodes']} hollow nodes, "
        f"start delay {r['start_delay']}"
    )
    lat = r["submit_to_running_s"]
    rows = [
        ("submission of every service", f"{r['submit_s']:.2f} s"),
        ("placements/s (first to last)", f"{r['placements_per_s']}"),
        ("last task created", f"{r['last_creation_s']} s"),
        ("first placement", f"{r['first_placement_s']} s"),
        ("last placement", f"{r['last_placement_s']} s"),
        ("first RUNNING", f"{r['first_running_s']} s"),
        ("all RUNNING", f"{r['all_running_s']:.2f} s   (goal <= {GOAL_S:.0f} s at 100k/1k)"),
        ("end to end", f"{r['end_to_end_per_s']} tasks/s"),
        ("submit -> RUNNING p50/p95/p99", f"{lat['p50']} / {lat['p95']} / {lat['p99']} s"),
        ("creations/s by tenth", " ".join(f"{x:.0f}" for x in r["creation_rate_by_tenth"])),
        ("placements/s by tenth", " ".join(f"{x:.0f}" for x in r["placement_rate_by_tenth"])),
    ]
    for label, value in rows:
        print(f"  {label:<32} {value}")
    print(measure.traffic_table(r["traffic"], r["event_loop_lag_s"]))
    print(measure.usage_table(r["processes"]))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--tasks", type=int, default=1000, help="tasks per service")
    p.add_argument("--start-delay", default="0", help="hollow container start delay (see swarmd hollow)")
    p.add_argument("--heartbeat", default="5s")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--out", type=pathlib.Path, default=None)
    p.add_argument("--profile", type=pathlib.Path, default=None, help="py-spy the controller into this folder")
    return p


if __name__ == "__main__":
    run(parser().parse_args())
