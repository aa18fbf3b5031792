"""Convergence benchmark: `service create --replicas 30` over three agents, against the Engine API alone.

Both sides start the same 30 containers (same image, already pulled, same
command) on the same dockerd, so the difference is what Shoal adds: the CLI,
the control API, etcd writes, scheduling, assignment streams, the agents'
state machine and status reports.

- Shoal: from running `swarmctl service create --detach --replicas 30` until
  the control API reports all 30 tasks RUNNING (polled every 20 ms). Without
  `--detach` the command follows the service and, as `docker service create`
  does, waits 5 s more to see the tasks stay up: a wait of the CLI's, not of
  the cluster's.
- Direct: from the first call until all 30 containers are created and started
  through the Engine API (aiodocker), concurrently, as fast as the engine allows.

Rounds alternate between the two; the table shows each round and the
medians, and the JSON goes to bench/results/converge.json. Goal: Shoal's
median ≤ 1.3 × the direct median.

    python bench/converge.py [--replicas 30] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import statistics
import sys
import tempfile
import time

import aiodocker

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shoal.v1 import types_pb2  # noqa: E402
from tests.integration import harness  # noqa: E402

COMMAND = ["sleep", "100000"]


def shoal_round(cluster: harness.Cluster, image: str, replicas: int, name: str) -> float:
    start = time.perf_counter()
    cluster.ctl(
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--image",
        image,
        "--replicas",
        str(replicas),
        "--stop-grace-period",
        "1s",
        "--",
        *COMMAND,
        check=True,
    )
    service_id = cluster.control.service(name).id
    harness.wait_until(lambda: len(cluster.control.running(service_id)) == replicas, 120, "all RUNNING", interval=0.02)
    elapsed = time.perf_counter() - start
    cluster.ctl("service", "rm", name, check=True)
    harness.wait_until(lambda: not [c for c in cluster.containers() if c["service"] == name], 120, "cleanup")
    return elapsed


async def direct_round(image: str, replicas: int, tag: str) -> float:
    async with aiodocker.Docker(url=harness.DOCKER_HOST) as docker:

        async def one(i: int) -> aiodocker.containers.DockerContainer:
            container = await docker.containers.create(
                {"Image": image, "Cmd": COMMAND, "Labels": {"shoal.bench": tag}, "StopTimeout": 1},
                name=f"bench-{tag}-{i}",
            )
            await container.start()
            return container

        start = time.perf_counter()
        containers = await asyncio.gather(*(one(i) for i in range(replicas)))
        elapsed = time.perf_counter() - start
        await asyncio.gather(*(c.delete(force=True) for c in containers))
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "converge.json")
    args = parser.parse_args()

    harness.check_docker()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        (tmp / "etcd").mkdir()
        (tmp / "registry").mkdir()
        (tmp / "cluster").mkdir()
        with harness.etcd_server(tmp / "etcd") as etcd_url, harness.registry_with_image(tmp / "registry") as image:
            harness.docker("pull", image)  # both sides start from a pulled image
            cluster = harness.Cluster(tmp / "cluster", etcd_url, heartbeat="5s")
            try:
                cluster.start_controller()
                for n in ("n1", "n2", "n3"):
                    cluster.start_agent(n)
                cluster.wait_ready("n1", "n2", "n3")
                shoal_round(cluster, image, args.replicas, "warmup")
                rows = []
                for r in range(args.rounds):
                    direct = asyncio.run(direct_round(image, args.replicas, f"r{r}"))
                    shoal = shoal_round(cluster, image, args.replicas, f"bench{r}")
                    rows.append({"round": r + 1, "direct_s": direct, "shoal_s": shoal, "ratio": shoal / direct})
            finally:
                cluster.close()
    med_direct = statistics.median(r["direct_s"] for r in rows)
    med_shoal = statistics.median(r["shoal_s"] for r in rows)
    print(f"converge: {args.replicas} containers on one dockerd, 3 agents, image pre-pulled")
    print(f"{'round':>5}  {'direct (s)':>10}  {'shoal (s)':>9}  {'ratio':>5}")
    for r in rows:
        print(f"{r['round']:>5}  {r['direct_s']:>10.2f}  {r['shoal_s']:>9.2f}  {r['ratio']:>5.2f}")
    ratio = med_shoal / med_direct
    print(f"{'median':>5}  {med_direct:>10.2f}  {med_shoal:>9.2f}  {ratio:>5.2f}   (goal: ratio <= 1.30)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "replicas": args.replicas,
                "rounds": rows,
                "median_direct_s": med_direct,
                "median_shoal_s": med_shoal,
                "ratio": ratio,
                "goal_ratio": 1.3,
                "state": types_pb2.TaskState.Name(types_pb2.RUNNING),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
