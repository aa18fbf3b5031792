"""Node loss: 1,000 hollow nodes × 10 tasks; kill one node's process, then 10% of the nodes at once.

The fleet runs as three hollow processes: the survivors, one node alone, and a
tenth of the nodes, so that losing nodes is a real `kill -9` of the processes
that ran them (no goodbye, sockets reset). Tasks come from services of 100
replicas spread over every node. For each loss the etcd watch of this process
sees: the kill → the first and the last lost node DOWN (detection), → every
replacement placed, → every replacement RUNNING (and healthy nodes untouched).
Goal: every replacement RUNNING within the heartbeat grace (3 periods) + 2 s
of the kill.

    python bench/nodeloss.py [--nodes 1000] [--tasks-per-node 10] [--heartbeat 5s]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab, measure  # noqa: E402
from shoal import units  # noqa: E402
from tests.integration import harness  # noqa: E402

SERVICE_SIZE = 100
RUNNING = hollowlab.RUNNING


def lose(lab: hollowlab.HollowLab, watch: hollowlab.TaskWatch, process: str, names: set[str],
         services: set[str], total: int, timeout: float) -> dict:
    """Kill one hollow process and follow its nodes' tasks to their replacements."""
    ids = {nid for nid, name in watch.node_names.items() if name in names}
    lost_tasks = {
        t for t, n in list(watch.node_of.items())
        if n in ids and watch.state.get(t) == RUNNING and watch.desired.get(t) == RUNNING
    }
    before = set(watch.created)
    t0 = time.monotonic()
    lab.hollows[process].kill()

    def replaced() -> bool:
        new = [t for t in list(watch.created) if t not in before and watch.service_of.get(t) in services]
        running = [t for t in new if watch.state.get(t) == RUNNING and watch.node_of.get(t) not in ids]
        return len(running) >= len(lost_tasks) and watch.running_now(services) >= total

    harness.wait_until(replaced, timeout, f"replacements of {len(lost_tasks)} tasks RUNNING", interval=0.05)
    t_all = time.monotonic() - t0
    new = [t for t in list(watch.created) if t not in before and watch.service_of.get(t) in services]
    down = sorted(watch.down[n] for n in ids if n in watch.down)
    placed = sorted(watch.assigned[t] for t in new if t in watch.assigned)
    running = sorted(watch.running[t] for t in new if t in watch.running)
    return {
        "nodes_lost": len(ids),
        "tasks_lost": len(lost_tasks),
        "replacements": len(new),
        "first_down_s": round(down[0] - t0, 2) if down else None,
        "last_down_s": round(down[-1] - t0, 2) if down else None,
        "all_placed_s": round(placed[-1] - t0, 2) if placed else None,
        "all_running_s": round(t_all, 2),
        "after_last_down_s": round(running[-1] - down[-1], 2) if running and down else None,
    }


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    grace = 3 * units.parse_duration(args.heartbeat)
    tenth = max(1, args.nodes // 10)
    rest = args.nodes - tenth - 1
    total = args.nodes * args.tasks_per_node
    with hollowlab.HollowLab(heartbeat=args.heartbeat) as lab:
        lab.start_etcd()
        lab.start_controller()
        lab.start_hollow("survivors", rest, first=1)
        lab.start_hollow("one", 1, first=rest + 1)
        lab.start_hollow("tenth", tenth, first=rest + 2)
        joined = lab.wait_nodes_ready(args.nodes, timeout=args.timeout)
        print(f"{args.nodes} hollow nodes READY after {joined:.0f}s", flush=True)
        watch = hollowlab.TaskWatch(lab).start()
        services = set()
        for i in range((total + SERVICE_SIZE - 1) // SERVICE_SIZE):
            services.add(lab.create_service(f"loss-{i}", min(SERVICE_SIZE, total - i * SERVICE_SIZE)))
        harness.wait_until(lambda: watch.running_now(services) >= total, args.timeout, f"{total} tasks RUNNING")
        print(f"{total} tasks RUNNING; settling {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        meter = lab.meter()
        one = lose(lab, watch, "one", {f"h-{rest + 1}"}, services, total, args.timeout)
        print(f"one node lost: all replacements RUNNING after {one['all_running_s']}s", flush=True)
        time.sleep(args.settle)
        names = {f"h-{i}" for i in range(rest + 2, rest + 2 + tenth)}
        many = lose(lab, watch, "tenth", names, services, total, args.timeout)
        usage = meter.stop()
        watch.stop()
    goal = grace + 2
    result = {
        "nodes": args.nodes,
        "tasks": total,
        "heartbeat": args.heartbeat,
        "grace_s": grace,
        "goal_s": goal,
        "one_node": one,
        "tenth_of_nodes": many,
        "goal_met": one["all_running_s"] <= goal and many["all_running_s"] <= goal,
        "processes": usage,
    }
    print(f"\nnode loss: {args.nodes} hollow nodes x {args.tasks_per_node} tasks, heartbeat {args.heartbeat} "
          f"(grace {grace:g}s); times from the kill -9")
    print(f"  {'':16} {'nodes':>6} {'tasks':>6} {'1st DOWN':>9} {'last DOWN':>9} {'placed':>8} {'RUNNING':>8}  goal")
    for label, r in (("one node", one), ("10% of nodes", many)):
        print(
            f"  {label:16} {r['nodes_lost']:>6} {r['tasks_lost']:>6} {r['first_down_s']:>8}s {r['last_down_s']:>8}s "
            f"{r['all_placed_s']:>7}s {r['all_running_s']:>7}s  <= {goal:g}s"
        )
    print(measure.usage_table(usage))
    hollowlab.write_result("nodeloss", result, args.out)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--tasks-per-node", type=int, default=10)
    p.add_argument("--heartbeat", default="5s")
    p.add_argument("--settle", type=float, default=10)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--out", type=pathlib.Path, default=None)
    return p


if __name__ == "__main__":
    run(parser().parse_args())
