"""The Docker API's cost: the same calls through the controller's Docker API (REST) and through gRPC, in one run.

Part 1 (hollow nodes, a real etcd and controller): P50/P99 of service
inspect, the task list of a 1,000-task service, and service update (a
label), each timed through the Docker API's unix socket (one keep-alive HTTP
connection, JSON parsed, as a client would) and through the Control API over
gRPC (a blocking stub), alternating call by call so both see the same
cluster. Goal: REST P99 <= 1.5 x gRPC P99.

Part 2 (three real agents on the machine's dockerd, a local registry):
`docker service create -d --replicas 30` against `swarmctl service create
--detach --replicas 30`, each timed from the command's start until the
Control API reports all 30 tasks RUNNING, rounds alternating. Goal: the
docker CLI's median <= 1.1 x swarmctl's.

    python bench/dockerapi.py [--nodes 100] [--tasks 1000] [--samples 200] [--converge-rounds 3]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import converge, hollowlab  # noqa: E402
from bench.heartbeat import start_fleet  # noqa: E402
from shoal.v1 import control_pb2, types_pb2  # noqa: E402
from tests.integration import dockerclients, harness  # noqa: E402

GOAL_REST_OVER_GRPC = 1.5
GOAL_CLI_OVER_SWARMCTL = 1.1


class Rest:
    """One keep-alive HTTP connection to the Docker API's unix socket."""

    def __init__(self, sock: pathlib.Path) -> None:
        self._conn = dockerclients._UnixConnection(sock)

    def call(self, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        self._conn.request(method, "/v1.45" + path, body=data, headers={"Content-Type": "application/json"})
        resp = self._conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self._conn.close()


def _stats(took: list[float]) -> dict:
    p = hollowlab.percentiles(took, (0.5, 0.99))
    return {"n": len(took), "p50": round(p["p50"], 5), "p99": round(p["p99"], 5), "max": round(max(took), 5)}


def _pair(samples: int, rest: Callable[[int], float], grpc: Callable[[int], float]) -> dict:
    """Alternate the two paths call by call; each callable returns the time of the part being compared."""
    took: dict[str, list[float]] = {"rest": [], "grpc": []}
    for i in range(samples):
        took["rest"].append(rest(i))
        took["grpc"].append(grpc(i))
    out = {k: _stats(v) for k, v in took.items()}
    out["p99_ratio"] = round(out["rest"]["p99"] / out["grpc"]["p99"], 3)
    return out


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency(args: argparse.Namespace) -> dict:
    with hollowlab.HollowLab(heartbeat="5s") as lab:
        lab.start_etcd()
        lab.start_controller()
        start_fleet(lab, args.nodes)
        lab.wait_nodes_ready(args.nodes, timeout=args.timeout)
        assert lab.cluster is not None
        big = lab.create_service("big", args.tasks)
        small = [lab.create_service(f"small-{i}", 1) for i in range(args.services)]
        stub = lab.control()
        harness.wait_until(
            lambda: (
                len(stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[big]), timeout=30).tasks) >= args.tasks
            ),
            args.timeout,
            f"{args.tasks} tasks",
            interval=0.5,
        )
        rest = Rest(lab.cluster.docker_sock)
        rng = random.Random(1)
        task_filter = urllib.parse.quote(json.dumps({"service": [big]}))
        try:
            inspect = _pair(
                args.samples,
                lambda i: _timed(lambda: rest.call("GET", f"/services/{rng.choice(small)}")),
                lambda i: _timed(
                    lambda: stub.GetService(control_pb2.GetServiceRequest(ref=rng.choice(small)), timeout=10)
                ),
            )
            listing = _pair(
                args.list_samples,
                lambda i: _timed(lambda: rest.call("GET", f"/tasks?filters={task_filter}")),
                lambda i: _timed(lambda: stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[big]), timeout=30)),
            )

            def rest_update(i: int) -> float:
                sid = rng.choice(small)
                doc = rest.call("GET", f"/services/{sid}")
                assert isinstance(doc, dict)
                spec = doc["Spec"]
                spec["Labels"]["bench"] = f"rest-{i}"
                return _timed(
                    lambda: rest.call("POST", f"/services/{sid}/update?version={doc['Version']['Index']}", spec)
                )

            def grpc_update(i: int) -> float:
                sid = rng.choice(small)
                svc = stub.GetService(control_pb2.GetServiceRequest(ref=sid), timeout=10).service
                spec = types_pb2.ServiceSpec()
                spec.CopyFrom(svc.spec)
                spec.labels["bench"] = f"grpc-{i}"
                req = control_pb2.UpdateServiceRequest(ref=sid, version=svc.meta.version, spec=spec)
                return _timed(lambda: stub.UpdateService(req, timeout=10))

            update = _pair(args.samples, rest_update, grpc_update)
        finally:
            rest.close()
    return {"service_inspect": inspect, "task_list_1000": listing, "service_update": update}


def _docker_round(cluster: harness.Cluster, image: str, replicas: int, name: str) -> float:
    start = time.perf_counter()
    dockerclients.ok(
        dockerclients.cli(
            cluster,
            "service",
            "create",
            "-d",
            "-q",
            "--no-resolve-image",
            "--name",
            name,
            "--replicas",
            str(replicas),
            "--stop-grace-period",
            "1s",
            image,
            *converge.COMMAND,
        )
    )
    service_id = cluster.control.service(name).id
    harness.wait_until(lambda: len(cluster.control.running(service_id)) == replicas, 120, "all RUNNING", interval=0.02)
    elapsed = time.perf_counter() - start
    dockerclients.ok(dockerclients.cli(cluster, "service", "rm", name))
    harness.wait_until(lambda: not [c for c in cluster.containers() if c["service"] == name], 120, "cleanup")
    return elapsed


def convergence(args: argparse.Namespace) -> dict:
    harness.check_docker()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        for d in ("etcd", "registry", "cluster"):
            (tmp / d).mkdir()
        with harness.etcd_server(tmp / "etcd") as etcd_url, harness.registry_with_image(tmp / "registry") as image:
            subprocess.run(["docker", "-H", harness.DOCKER_HOST, "pull", "-q", image], check=True, capture_output=True)
            cluster = harness.Cluster(tmp / "cluster", etcd_url, heartbeat="5s")
            try:
                cluster.start_controller()
                for n in ("n1", "n2", "n3"):
                    cluster.start_agent(n)
                cluster.wait_ready("n1", "n2", "n3")
                converge.shoal_round(cluster, image, args.replicas, "warmup")
                rows = []
                for r in range(args.converge_rounds):
                    docker = _docker_round(cluster, image, args.replicas, f"docker{r}")
                    swarmctl = converge.shoal_round(cluster, image, args.replicas, f"swarmctl{r}")
                    rows.append({"round": r + 1, "docker_s": docker, "swarmctl_s": swarmctl})
            finally:
                cluster.close()
    med_docker = statistics.median(r["docker_s"] for r in rows)
    med_swarmctl = statistics.median(r["swarmctl_s"] for r in rows)
    return {
        "replicas": args.replicas,
        "rounds": rows,
        "median_docker_s": med_docker,
        "median_swarmctl_s": med_swarmctl,
        "ratio": med_docker / med_swarmctl,
    }


def run(args: argparse.Namespace) -> dict:
    result: dict = {"nodes": args.nodes, "tasks": args.tasks, "latency": latency(args)}
    print(f"\nDocker API against gRPC: {args.nodes} hollow nodes, a {args.tasks}-task service (seconds)")
    print(f"  {'call':<18} {'path':<5} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  p99 REST/gRPC")
    worst = 0.0
    for name, pair in result["latency"].items():
        for path in ("rest", "grpc"):
            r = pair[path]
            ratio = f"{pair['p99_ratio']:.2f}" if path == "rest" else ""
            print(
                f"  {name:<18} {path:<5} {r['n']:>4} {r['p50'] * 1000:>9.2f} {r['p99'] * 1000:>9.2f} "
                f"{r['max'] * 1000:>9.2f}  {ratio}"
            )
        worst = max(worst, pair["p99_ratio"])
    print(f"  goal: REST p99 <= {GOAL_REST_OVER_GRPC} x gRPC p99 (worst {worst:.2f})")
    result["worst_p99_ratio"] = worst
    if args.converge_rounds:
        conv = result["converge"] = convergence(args)
        print(f"\n`service create --replicas {args.replicas}` to all RUNNING, 3 agents on one dockerd")
        print(f"{'round':>5}  {'docker (s)':>10}  {'swarmctl (s)':>12}")
        for r in conv["rounds"]:
            print(f"{r['round']:>5}  {r['docker_s']:>10.2f}  {r['swarmctl_s']:>12.2f}")
        print(
            f"{'median':>5}  {conv['median_docker_s']:>10.2f}  {conv['median_swarmctl_s']:>12.2f}   "
            f"ratio {conv['ratio']:.2f} (goal <= {GOAL_CLI_OVER_SWARMCTL})"
        )
    result["goal_met"] = worst <= GOAL_REST_OVER_GRPC and (
        not args.converge_rounds or result["converge"]["ratio"] <= GOAL_CLI_OVER_SWARMCTL
    )
    hollowlab.write_result("dockerapi", result, args.out)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--tasks", type=int, default=1000, help="tasks of the service whose task list is timed")
    p.add_argument("--services", type=int, default=10, help="small services inspected and updated")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--list-samples", type=int, default=50)
    p.add_argument("--replicas", type=int, default=30)
    p.add_argument("--converge-rounds", type=int, default=3, help="0 skips the convergence part")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--out", type=pathlib.Path, default=None)
    return p


if __name__ == "__main__":
    run(parser().parse_args())
