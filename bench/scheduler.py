"""The scheduler alone: decisions per second, no etcd, no agents.

The production `Scheduler` runs one pass over PENDING tasks held in an
in-memory cache, with a writer that accepts every decision at once, so what
is measured is the algorithm (filters once per service, spreading, building
the assigned copies), not the store. Tasks come in services of 1,000; a
constraint `node.labels.sel==yes` matches 100%, 33% or 1% of the nodes.
Goal: ≥ 20,000 decisions/s at 1,000 nodes and 33% selectivity.

    python bench/scheduler.py [--tasks 1000,10000,100000] [--nodes 1000,10000] [--selectivity 100,33,1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import hollowlab  # noqa: E402
from shoal import heap, ids, states  # noqa: E402
from shoal.controller.scheduler.scheduler import Scheduler  # noqa: E402
from shoal.controller.settings import LoopSettings  # noqa: E402
from shoal.v1 import objects_pb2, types_pb2  # noqa: E402

GOAL = 20_000.0
SERVICE_SIZE = 1000


class MemoryCache:
    """What the scheduler reads from the store's cache, held in dicts."""

    def __init__(self, nodes: list[objects_pb2.Node], tasks: list[objects_pb2.Task]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.tasks = {t.id: t for t in tasks}
        self.tasks_by_node: dict[str, set[str]] = collections.defaultdict(set)

    def tasks_of_node(self, node_id: str) -> list[objects_pb2.Task]:
        return [self.tasks[t] for t in self.tasks_by_node.get(node_id, ())]

    def subscribe(self) -> None:  # the benchmark calls the pass itself
        raise NotImplementedError


class AcceptAll:
    """A writer that lands every decision at once."""

    def __init__(self) -> None:
        self.written = 0

    async def commit_each(self, ops: list) -> list[bool]:  # type: ignore[type-arg]
        self.written += len(ops)
        return [True] * len(ops)


def make_nodes(count: int, selectivity: float) -> list[objects_pb2.Node]:
    eligible = max(1, round(count * selectivity))
    nodes = []
    for i in range(count):
        node = objects_pb2.Node(id=ids.new_id(), name=f"n{i}")
        node.spec.labels["sel"] = "yes" if i < eligible else "no"
        node.status.state = types_pb2.NodeStatus.READY
        node.description.resources.nano_cpus = 8_000_000_000
        node.description.resources.memory_bytes = 32 * 2**30
        nodes.append(node)
    return nodes


def make_tasks(count: int, constrained: bool) -> list[objects_pb2.Task]:
    tasks = []
    now = time.time()
    for s in range((count + SERVICE_SIZE - 1) // SERVICE_SIZE):
        spec = types_pb2.TaskSpec()
        spec.container.image = "hollow/app:1"
        if constrained:
            spec.placement.constraints.append("node.labels.sel==yes")
        service_id = ids.new_id()
        for slot in range(1, min(SERVICE_SIZE, count - s * SERVICE_SIZE) + 1):
            task = objects_pb2.Task(
                id=ids.new_id(), service_id=service_id, service_name=f"s{s}", slot=slot, spec_version=1,
                desired_state=states.RUNNING,
            )
            task.spec.CopyFrom(spec)
            task.status.state = states.PENDING
            task.status.timestamp.FromNanoseconds(int(now * 1e9))
            task.meta.version = 1
            tasks.append(task)
    return tasks


async def one(tasks: int, nodes: int, selectivity: float) -> dict:
    cache = MemoryCache(make_nodes(nodes, selectivity), make_tasks(tasks, selectivity < 1))
    writer = AcceptAll()
    scheduler = Scheduler(cache=cache, writer=writer, settings=LoopSettings())  # type: ignore[arg-type]
    for node in cache.nodes.values():
        scheduler._add_node(node)
    for task in cache.tasks.values():
        scheduler._apply_task(None, task)
    heap.settle()  # as the controller does once its cache is loaded
    start = time.perf_counter()
    cpu = time.process_time()
    await scheduler._pass()
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return {
        "tasks": tasks,
        "nodes": nodes,
        "selectivity_pct": round(selectivity * 100),
        "decisions": writer.written,
        "seconds": round(took, 4),
        "cpu_s": round(cpu, 4),
        "decisions_per_s": round(writer.written / took, 1) if took else None,
    }


def run(args: argparse.Namespace) -> dict:
    hollowlab.check_load()
    heap.tune()  # as the controller process does
    rows = []
    for nodes in args.nodes:
        for sel in args.selectivity:
            for tasks in args.tasks:
                row = asyncio.run(one(tasks, nodes, sel / 100))
                rows.append(row)
                print(
                    f"  {row['nodes']:>6} nodes {row['selectivity_pct']:>4}%  {row['tasks']:>7} tasks  "
                    f"{row['seconds']:>8.3f} s  {row['decisions_per_s']:>10,.0f} decisions/s",
                    flush=True,
                )
    goal_row = next(
        (r for r in rows if r["nodes"] == 1000 and r["selectivity_pct"] == 33 and r["tasks"] == max(args.tasks)), None
    )
    result = {
        "rows": rows,
        "goal_decisions_per_s": GOAL,
        "goal_row": goal_row,
        "goal_met": goal_row is not None and goal_row["decisions_per_s"] >= GOAL,
    }
    print("\nscheduler alone: one pass over PENDING tasks (services of 1,000), no etcd")
    print(f"  {'nodes':>6} {'sel':>5} {'tasks':>8} {'seconds':>9} {'decisions/s':>12}")
    for r in rows:
        print(
            f"  {r['nodes']:>6} {r['selectivity_pct']:>4}% {r['tasks']:>8} {r['seconds']:>9.3f} "
            f"{r['decisions_per_s']:>12,.0f}"
        )
    if goal_row:
        print(f"  goal: >= {GOAL:,.0f}/s at 1k nodes, 33%: {goal_row['decisions_per_s']:,.0f}/s")
    hollowlab.write_result("scheduler", result, args.out)
    return result


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=_ints, default=[1000, 10_000, 100_000])
    p.add_argument("--nodes", type=_ints, default=[1000, 10_000])
    p.add_argument("--selectivity", type=_ints, default=[100, 33, 1])
    p.add_argument("--out", type=pathlib.Path, default=None)
    return p


if __name__ == "__main__":
    run(parser().parse_args())
