"""API latency under churn: 5,000 hollow nodes, 50,000 tasks, 20 mutations/s in the background.

A real etcd, one controller and the hollow agents run as separate processes.
Once every task runs, a background thread keeps up 20 mutations per second
(scaling small churn services up and down by one: a task created or removed
each time, as Kubernetes' SLOs count churn), while this process times the
Control API through gRPC (a blocking client: GetService, GetTask,
UpdateService, CreateService, ListTasks of one service of 1,000 tasks,
ListTasks of every task) and through `swarmctl` (the same verbs as a user runs
them: wall time includes starting the CLI). Goals: P99 ≤ 50 ms for the
single-object calls; listing every task ≤ 2 s.

    python bench/api.py [--nodes 5000] [--services 50] [--tasks 1000] [--churn 20] [--samples 200]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import random
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab, measure  # noqa: E402
from bench.heartbeat import start_fleet  # noqa: E402
from shoal.v1 import control_pb2, types_pb2  # noqa: E402
from tests.integration import harness  # noqa: E402

GOAL_SINGLE_P99 = 0.050
GOAL_LIST_ALL = 2.0
CHURN_SERVICES = 10
CHURN_BASE = 5


class Churn:
    """`rate` mutations per second from a thread: scale the churn services up and down by one."""

    def __init__(self, lab: hollowlab.HollowLab, services: list[str], rate: float) -> None:
        self._stub = lab.control()
        self._services = services
        self._rate = rate
        self._stop = threading.Event()
        self.done = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="churn")

    def start(self) -> Churn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        rng = random.Random(1)
        up = dict.fromkeys(self._services, True)
        start = time.monotonic()
        for n in itertools.count():
            if self._stop.wait(max(0.0, start + n / self._rate - time.monotonic())):
                return
            sid = rng.choice(self._services)
            try:
                svc = self._stub.GetService(control_pb2.GetServiceRequest(ref=sid), timeout=10).service
                spec = types_pb2.ServiceSpec()
                spec.CopyFrom(svc.spec)
                spec.replicated.replicas += 1 if up[sid] else -1
                up[sid] = not up[sid]
                self._stub.UpdateService(
                    control_pb2.UpdateServiceRequest(ref=sid, version=svc.meta.version, spec=spec), timeout=10
                )
                self.done += 1
            except Exception:  # noqa: BLE001 - counted, the load goes on
                self.failed += 1


def timed(samples: int, call: Callable[[int], object]) -> dict:
    """P50/P99/max of `samples` sequential calls, in seconds."""
    took = []
    for i in range(samples):
        start = time.perf_counter()
        call(i)
        took.append(time.perf_counter() - start)
    p = hollowlab.percentiles(took, (0.5, 0.99))
    return {"n": samples, "p50": round(p["p50"], 4), "p99": round(p["p99"], 4), "max": round(max(took), 4)}


#: What a call can wait out inside the controller, read around each phase: (metric, label filter).
STALLS = {
    "loop_lag": ("shoal_controller_event_loop_lag_seconds", ""),
    "gc_pause": ("shoal_gc_pause_seconds", ""),
    "heap_trim": ("shoal_heap_trim_seconds", ""),
    "etcd_txn": ("shoal_store_etcd_request_duration_seconds", 'operation="txn"'),
    "echo_wait": ("shoal_store_commit_echo_wait_seconds", ""),
}


def quantile(before: dict[str, float], after: dict[str, float], metric: str, label: str, q: float) -> float | None:
    """`histogram_quantile` over the series of `metric` whose labels include `label` ("": all of them)."""
    return measure.histogram_quantile(
        {k: v for k, v in before.items() if label in k}, {k: v for k, v in after.items() if label in k}, metric, q
    )


def stalls(before: dict[str, float], after: dict[str, float], method: str = "") -> dict:
    """The worst loop lag, GC pause and heap trim, etcd's txn P99 and the loop lag's P50, between two
    controller scrapes (bucket bounds, s); with `method`, the P99 of that RPC's time in its handler."""
    out = {
        name: quantile(before, after, metric, label, 0.99 if name in ("etcd_txn", "echo_wait") else 1.0)
        for name, (metric, label) in STALLS.items()
    }
    out["loop_lag_p50"] = quantile(before, after, STALLS["loop_lag"][0], "", 0.5)
    if method:
        out["handler_p99"] = quantile(before, after, "shoal_api_handling_seconds", f'method="{method}"', 0.99)
    return out


def grpc_calls(
    lab: hollowlab.HollowLab, services: list[str], tasks: list[str], samples: int, list_samples: int
) -> dict:
    stub = lab.control()

    def phase(n: int, call: Callable[[int], object], method: str = "") -> dict:
        before = _scrape(lab)
        result = timed(n, call)
        after = _scrape(lab)
        result["stalls"] = stalls(before["controller"], after["controller"], method)
        result["stalls"]["etcd_server_txn"] = quantile(
            before["etcd"], after["etcd"], "grpc_server_handling_seconds", 'grpc_method="Txn"', 0.99
        )
        return result
    rng = random.Random(2)
    created = []

    def update(i: int) -> None:
        sid = rng.choice(services)
        svc = stub.GetService(control_pb2.GetServiceRequest(ref=sid), timeout=10).service
        spec = types_pb2.ServiceSpec()
        spec.CopyFrom(svc.spec)
        spec.labels["bench"] = str(i)
        start = time.perf_counter()
        stub.UpdateService(control_pb2.UpdateServiceRequest(ref=sid, version=svc.meta.version, spec=spec), timeout=10)
        update.took.append(time.perf_counter() - start)  # type: ignore[attr-defined]

    update.took = []  # type: ignore[attr-defined]

    def create(i: int) -> None:
        created.append(lab.create_service(f"api-{i}-{rng.randrange(10**6)}", 1))

    out = {
        "get_service": phase(samples, lambda i: stub.GetService(
            control_pb2.GetServiceRequest(ref=rng.choice(services)), timeout=10), "GetService"),
        "get_task": phase(samples, lambda i: stub.GetTask(
            control_pb2.GetTaskRequest(ref=rng.choice(tasks)), timeout=10), "GetTask"),
        "create_service": phase(samples, create, "CreateService"),
        "list_service_tasks": phase(samples, lambda i: stub.ListTasks(
            control_pb2.ListTasksRequest(service_ids=[rng.choice(services)]), timeout=30)),
        "list_all_tasks": phase(list_samples, lambda i: stub.ListTasks(control_pb2.ListTasksRequest(), timeout=60)),
    }
    during = phase(samples, update, "UpdateService")
    took = update.took  # type: ignore[attr-defined]
    p = hollowlab.percentiles(took, (0.5, 0.99))
    out["update_service"] = {"n": len(took), "p50": round(p["p50"], 4), "p99": round(p["p99"], 4),
                             "max": round(max(took), 4), "stalls": during["stalls"]}
    for sid in created:
        stub.RemoveService(control_pb2.RemoveServiceRequest(ref=sid), timeout=30)
    return out


#: Where a write's time goes besides our code: the controller's event loop (every RPC waits out a stall
#: there) and etcd's disk (a write answers after etcd's WAL fsync and backend commit).
FLOORS = {
    "controller event-loop lag": ("controller", "shoal_controller_event_loop_lag_seconds", ""),
    "etcd WAL fsync": ("etcd", "etcd_disk_wal_fsync_duration_seconds", ""),
    "etcd backend commit": ("etcd", "etcd_disk_backend_commit_duration_seconds", ""),
    # etcd's own share of a transaction (--metrics=extensive), against the controller's view (etcd txn p99).
    "etcd Txn, server side": ("etcd", "grpc_server_handling_seconds", 'grpc_method="Txn"'),
}


def _scrape(lab: hollowlab.HollowLab) -> dict[str, dict[str, float]]:
    return {"controller": lab.controller_metrics(), "etcd": measure.scrape(lab.etcd_metrics)}


def latency_floors(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict:
    """P99 and worst of each floor's histogram between two scrapes (upper bucket bounds, in seconds)."""
    return {
        name: {
            "p99": quantile(before[proc], after[proc], metric, label, 0.99),
            "max": quantile(before[proc], after[proc], metric, label, 1.0),
        }
        for name, (proc, metric, label) in FLOORS.items()
    }


def _ms(value: float | None) -> str:
    return f"{value * 1000:7.0f}" if value is not None else "      -"


def cli_calls(lab: hollowlab.HollowLab, names: list[str], tasks: list[str], samples: int) -> dict:
    rng = random.Random(3)

    def ctl(*args: str) -> Callable[[int], None]:
        def call(i: int) -> None:
            result = lab.cluster.ctl(*(a.format(i=i, name=rng.choice(names), task=rng.choice(tasks)) for a in args))  # type: ignore[union-attr]
            if result.returncode != 0:
                raise RuntimeError(f"swarmctl {' '.join(args)}: {result.stderr.strip()}")
        return call

    return {
        "service_inspect": timed(samples, ctl("service", "inspect", "{name}")),
        "task_inspect": timed(samples, ctl("task", "inspect", "{task}")),
        "service_update": timed(samples, ctl("service", "update", "--detach", "{name}", "--label", "cli={i}")),
        "service_create": timed(
            samples,
            ctl("service", "create", "--detach", "-q", "--name", f"cli-{rng.randrange(10**6)}-{{i}}",
                "--image", "hollow/app:1", "--no-resolve-image"),
        ),
        "service_ps": timed(samples, ctl("service", "ps", "-q", "{name}")),
        "task_ls_all": timed(max(2, samples // 4), ctl("task", "ls", "-q")),
    }


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    total = args.services * args.tasks
    with hollowlab.HollowLab(heartbeat=args.heartbeat) as lab:
        lab.start_etcd()
        lab.start_controller()
        start_fleet(lab, args.nodes)
        joined = lab.wait_nodes_ready(args.nodes, timeout=args.timeout)
        print(f"{args.nodes} hollow nodes READY after {joined:.0f}s", flush=True)
        watch = hollowlab.TaskWatch(lab).start()
        names = [f"api-base-{i}" for i in range(args.services)]
        futures = [lab.create_service_async(name, args.tasks) for name in names]
        churn_futures = [lab.create_service_async(f"churn-{i}", CHURN_BASE) for i in range(CHURN_SERVICES)]
        services = [f.result().service.id for f in futures]
        churn_ids = [f.result().service.id for f in churn_futures]
        want = total + CHURN_SERVICES * CHURN_BASE
        harness.wait_until(lambda: watch.running_now() >= want, args.timeout, f"{want} tasks RUNNING", interval=0.5)
        watch.stop()
        tasks = [t for t, s in watch.service_of.items() if s in set(services)]
        print(f"{want} tasks RUNNING; churn at {args.churn}/s; measuring", flush=True)
        churn = Churn(lab, churn_ids, args.churn).start()
        meter = lab.meter()
        t0 = time.monotonic()
        before = _scrape(lab)
        with hollowlab.Profiler(lab, ["controller"], args.profile):
            grpc = grpc_calls(lab, services, tasks, args.samples, args.list_samples)
        floors = latency_floors(before, _scrape(lab))
        cli = cli_calls(lab, names, tasks, args.cli_samples)
        window = time.monotonic() - t0
        usage = meter.stop()
        churn.stop()
    single = ("get_service", "get_task", "update_service", "create_service")
    worst = max(grpc[k]["p99"] for k in single)
    result = {
        "nodes": args.nodes,
        "tasks": total,
        "churn_per_s": round(churn.done / window, 1),
        "churn_failed": churn.failed,
        "grpc": grpc,
        "swarmctl": cli,
        "during_grpc_calls": floors,
        "goal_single_p99_s": GOAL_SINGLE_P99,
        "goal_list_all_s": GOAL_LIST_ALL,
        "goal_met": worst <= GOAL_SINGLE_P99 and grpc["list_all_tasks"]["p99"] <= GOAL_LIST_ALL,
        "processes": usage,
    }
    print(f"\nAPI latency: {args.nodes} hollow nodes, {total} tasks, {result['churn_per_s']} mutations/s "
          f"({churn.failed} failed)")
    print(f"  {'through gRPC':<28} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"
          "   during it (ms, bucket bounds): loop lag p50 and worst, worst GC pause and heap trim, etcd txn p99,"
          " (etcd's own p99), cache echo p99, handler p99")
    for name, r in grpc.items():
        s = r["stalls"]
        print(f"  {name:<28} {r['n']:>4} {r['p50'] * 1000:>9.1f} {r['p99'] * 1000:>9.1f} {r['max'] * 1000:>9.1f}"
              f"   {_ms(s['loop_lag_p50'])} {_ms(s['loop_lag'])} {_ms(s['gc_pause'])} {_ms(s['heap_trim'])} "
              f"{_ms(s['etcd_txn'])} ({_ms(s['etcd_server_txn']).strip()}) {_ms(s['echo_wait'])} "
              f"{_ms(s.get('handler_p99'))}")
    print("  while timing the gRPC calls (P99 and worst, histogram bucket bounds, ms):")
    for name, r in floors.items():
        print(f"    {name:<40} p99 <= {_ms(r['p99'])}  max <= {_ms(r['max'])}")
    print(f"  {'through swarmctl (wall)':<28}")
    for name, r in cli.items():
        print(f"  {name:<28} {r['n']:>4} {r['p50'] * 1000:>9.1f} {r['p99'] * 1000:>9.1f} {r['max'] * 1000:>9.1f}")
    print(f"  goals: single-object p99 <= {GOAL_SINGLE_P99 * 1000:.0f} ms (worst {worst * 1000:.1f}); "
          f"all {total} tasks <= {GOAL_LIST_ALL:.0f} s (p99 {grpc['list_all_tasks']['p99']:.2f})")
    print(measure.usage_table(usage))
    hollowlab.write_result("api", result, args.out)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--tasks", type=int, default=1000, help="tasks per service")
    p.add_argument("--churn", type=float, default=20.0, help="background mutations per second")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--list-samples", type=int, default=10)
    p.add_argument("--cli-samples", type=int, default=20)
    p.add_argument("--heartbeat", default="5s")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=pathlib.Path, default=None)
    p.add_argument("--profile", type=pathlib.Path, default=None, help="py-spy the controller into this folder")
    return p


if __name__ == "__main__":
    run(parser().parse_args())
