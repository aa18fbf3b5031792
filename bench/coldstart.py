"""Cold start and memory: restart the controller with 100,000 tasks in etcd; RSS and etcd size per 10,000 tasks.

A real etcd, one controller and 1,000 hollow nodes run as separate processes.
The controller's RSS and etcd's database size are read with the nodes alone,
then with the tasks (services of 1,000) all RUNNING: the differences per
10,000 tasks are the costs of a task. Then the controller is stopped
(SIGTERM) and started again: the times to its first answer as leader (the
cache is loaded), to a new service accepted, and to that service's task
placed ("schedules again"), with its RSS once settled. Goals: cold start
≤ 10 s with 100,000 tasks; RSS ≤ 1 GiB at 100,000 tasks.

    python bench/coldstart.py [--nodes 1000] [--services 100] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab, measure  # noqa: E402
from bench.placement import start_fleet  # noqa: E402
from shoal.v1 import control_pb2  # noqa: E402
from tests.integration import harness  # noqa: E402

GOAL_START_S = 10.0
GOAL_RSS = 2**30
DB_SIZE = "etcd_mvcc_db_total_size_in_use_in_bytes"
DB_ALLOCATED = "etcd_mvcc_db_total_size_in_bytes"


def rss(lab: hollowlab.HollowLab) -> int:
    return measure.memory(lab.pids()["controller"])[0]


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    total = args.services * args.tasks
    with hollowlab.HollowLab(heartbeat=args.heartbeat) as lab:
        lab.start_etcd()
        lab.start_controller()
        start_fleet(lab, args.nodes)
        lab.wait_nodes_ready(args.nodes, timeout=args.timeout)
        time.sleep(args.settle)
        rss0, db0 = rss(lab), measure.scrape(lab.etcd_metrics)
        watch = hollowlab.TaskWatch(lab).start()
        futures = [lab.create_service_async(f"cold-{i}", args.tasks) for i in range(args.services)]
        services = {f.result().service.id for f in futures}
        fill_start = time.monotonic()
        harness.wait_until(lambda: watch.running_now(services) >= total, args.timeout, f"{total} tasks RUNNING",
                           interval=0.5)
        fill_s = time.monotonic() - fill_start
        print(f"{total} tasks RUNNING after {fill_s:.0f}s; settling {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        rss1, db1 = rss(lab), measure.scrape(lab.etcd_metrics)
        # The restart.
        lab.controller.stop()
        t0 = time.monotonic()
        lab.controller.start()
        stub = lab.control()
        harness.wait_until(
            lambda: _answers(stub), args.timeout, "the restarted controller to lead", interval=0.05
        )
        t_lead = time.monotonic() - t0
        probe = harness.wait_until(lambda: _probe(lab), args.timeout, "a service to be accepted", interval=0.05)
        t_accept = time.monotonic() - t0
        harness.wait_until(
            lambda: any(watch.service_of.get(t) == probe and t in watch.assigned for t in list(watch.assigned)),
            args.timeout, "the probe task placed", interval=0.02,
        )
        t_sched = time.monotonic() - t0
        harness.wait_until(lambda: watch.running_now(services) >= total, args.timeout, "every task RUNNING again")
        time.sleep(args.settle)
        rss2 = rss(lab)
        watch.stop()
    per10k = 10_000 / total
    result = {
        "nodes": args.nodes,
        "tasks": total,
        "fill_s": round(fill_s, 1),
        "restart_to_leading_s": round(t_lead, 2),
        "restart_to_create_accepted_s": round(t_accept, 2),
        "restart_to_first_placement_s": round(t_sched, 2),
        "controller_rss_mib": {"nodes_only": _mib(rss0), "with_tasks": _mib(rss1), "after_restart": _mib(rss2)},
        "controller_rss_per_10k_tasks_mib": round((rss1 - rss0) * per10k / 2**20, 1),
        "etcd_db_in_use_mib": {"nodes_only": _mib(db0.get(DB_SIZE, 0)), "with_tasks": _mib(db1.get(DB_SIZE, 0))},
        "etcd_db_allocated_mib": _mib(db1.get(DB_ALLOCATED, 0)),
        "etcd_db_per_10k_tasks_mib": round((db1.get(DB_SIZE, 0) - db0.get(DB_SIZE, 0)) * per10k / 2**20, 2),
        "goal_start_s": GOAL_START_S,
        "goal_rss_mib": GOAL_RSS / 2**20,
        "goal_met": t_sched <= GOAL_START_S and max(rss1, rss2) <= GOAL_RSS,
    }
    r = result
    print(f"\ncold start and memory: {total} tasks on {args.nodes} hollow nodes")
    rows = [
        ("restart -> leading (cache loaded)", f"{r['restart_to_leading_s']} s"),
        ("restart -> create accepted", f"{r['restart_to_create_accepted_s']} s"),
        ("restart -> first placement", f"{r['restart_to_first_placement_s']} s   (goal <= {GOAL_START_S:g} s)"),
        ("controller RSS: nodes only", f"{r['controller_rss_mib']['nodes_only']} MiB"),
        ("controller RSS: with tasks", f"{r['controller_rss_mib']['with_tasks']} MiB   (goal <= 1024 MiB at 100k)"),
        ("controller RSS: after restart", f"{r['controller_rss_mib']['after_restart']} MiB"),
        ("controller RSS per 10k tasks", f"{r['controller_rss_per_10k_tasks_mib']} MiB"),
        ("etcd DB in use: nodes / tasks", f"{r['etcd_db_in_use_mib']['nodes_only']} / "
                                          f"{r['etcd_db_in_use_mib']['with_tasks']} MiB"),
        ("etcd DB per 10k tasks", f"{r['etcd_db_per_10k_tasks_mib']} MiB"),
    ]
    for label, value in rows:
        print(f"  {label:<36} {value}")
    hollowlab.write_result("coldstart", result, args.out)
    return result


def _answers(stub) -> bool:  # type: ignore[no-untyped-def]
    try:
        stub.ListServices(control_pb2.ListServicesRequest(), timeout=2)
        return True
    except grpc.RpcError:
        return False


def _probe(lab: hollowlab.HollowLab) -> str:
    try:
        return lab.create_service(f"probe-{time.monotonic_ns()}", 1)
    except grpc.RpcError:
        return ""


def _mib(n: float) -> float:
    return round(n / 2**20, 1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--tasks", type=int, default=1000, help="tasks per service")
    p.add_argument("--heartbeat", default="5s")
    p.add_argument("--settle", type=float, default=10)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=pathlib.Path, default=None)
    return p


if __name__ == "__main__":
    run(parser().parse_args())
