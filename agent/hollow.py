"""`swarmd hollow`: many simulated nodes in one process, for control-plane benchmarks only.

Each hollow node is a real agent above the executor: it joins with the worker
token like any node (its own key and certificate, kept in
`<state-dir>/<name>/tls`), opens its own mutual-TLS gRPC channel and session,
heartbeats, follows its assignment stream and reports task status through the
production session, worker, runners and reporter (`agent.run_sessions`). Only
the executor is simulated (`executor/hollow.py`), and the node says so in its
description (`executor="hollow"`).

What a real agent has per node and a thousand hollow ones must not: no agent
gRPC server (a hollow node registers no address, so task logs and inspect are
unavailable for it), no per-node metrics endpoint (one for the whole process
with `--metrics-listen`), no container stats, no secrets tmpfs.

Joins go through the controller's join port a few at a time; a join refused by
the controller's per-address rate limit (RESOURCE_EXHAUSTED) is retried with
backoff, so a thousand nodes can join from one address without raising the
limit (start the controller with `--join-rate` to make it quick).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal import backoff, daemon, errors, heap, logs, looplag, metrics_http, states, units
from shoal.agent import agent, credentials, metrics
from shoal.agent.executor import hollow
from shoal.agent.main import parse_labels
from shoal.agent.settings import AgentSettings
from shoal.agent.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_STATE_ROOT = Path("/var/lib/shoal/hollow")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")


class Fleet:
    """The hollow nodes of this process, and what they share: the executor and the join gate."""

    def __init__(self, base: AgentSettings, executor: hollow.HollowExecutor, *, join_concurrency: int) -> None:
        self.base = base
        self.executor = executor
        self._join_gate = asyncio.Semaphore(join_concurrency)
        self.joined = 0
        self.failed = 0
        self.workers: dict[str, Worker] = {}

    def settings_of(self, name: str) -> AgentSettings:
        assert self.base.state_dir is not None
        return AgentSettings(
            controllers=self.base.controllers,
            node_name=name,
            state_dir=Path(self.base.state_dir) / name,
            labels=self.base.labels,
            join_token=self.base.join_token,
            join_addr=self.base.join_addr,
            log_level=self.base.log_level,
        )

    async def _credentials(self, settings: AgentSettings) -> credentials.Credentials:
        """Load or join, retrying while the controller's join rate limit refuses us."""
        delay = backoff.Backoff(base=0.5, cap=5.0)
        while True:
            async with self._join_gate:
                try:
                    return await credentials.load_or_join(settings)
                except errors.ResourceExhausted:
                    wait = delay.next()
            log.debug("join of %s rate-limited; retrying in %.1fs", settings.node_name, wait)
            await asyncio.sleep(wait)

    async def run_node(self, name: str) -> None:
        """One hollow node: join, then the production session loop over the hollow executor."""
        settings = self.settings_of(name)
        try:
            creds = await self._credentials(settings)
            self.joined += 1
            logs.bind(node_id=creds.node_id)
            reporter = agent.new_reporter(settings)
            async with agent.new_worker(settings, self.executor, reporter, creds.node_id) as worker:
                self.workers[name] = worker
                await agent.run_sessions(
                    settings=settings,
                    credentials=creds,
                    executor=self.executor,
                    worker=worker,
                    reporter=reporter,
                    addr="",
                    metrics_addr="",
                )
        except (errors.ShoalError, credentials.NodeRemoved, OSError) as exc:
            # One node giving up (removed, refused) must not take the others with it.
            self.failed += 1
            log.error("hollow node %s stopped: %s", name, exc)
        finally:
            self.workers.pop(name, None)

    def observed_states(self) -> Iterator[int]:
        for worker in list(self.workers.values()):
            yield from worker.observed_states()


class FleetCollector(Collector):
    """`shoal_hollow_nodes{state}` and `shoal_agent_tasks{state}` summed over the process's hollow nodes."""

    def __init__(self, fleet: Fleet, size: int) -> None:
        self._fleet = fleet
        self._size = size

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = GaugeMetricFamily("shoal_hollow_nodes", "Hollow nodes of this process, by phase.", labels=["phase"])
        nodes.add_metric(["configured"], self._size)
        nodes.add_metric(["joined"], self._fleet.joined)
        nodes.add_metric(["running"], len(self._fleet.workers))
        nodes.add_metric(["failed"], self._fleet.failed)
        yield nodes
        tasks = GaugeMetricFamily(
            "shoal_agent_tasks", "Tasks the hollow nodes run, by observed state.", labels=["state"]
        )
        for state, count in sorted(collections.Counter(self._fleet.observed_states()).items()):
            tasks.add_metric([states.name(state)], count)
        yield tasks


def node_names(prefix: str, first: int, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(first, first + count)]


async def serve(
    base: AgentSettings,
    executor: hollow.HollowExecutor,
    names: list[str],
    *,
    metrics_listen: str = "",
    join_concurrency: int = 16,
) -> NoReturn:
    """Run every named hollow node until cancelled."""
    fleet = Fleet(base, executor, join_concurrency=join_concurrency)
    async with contextlib.AsyncExitStack() as stack:
        if metrics_listen:
            bound = await stack.enter_async_context(metrics_http.serve(metrics_listen))
            stack.enter_context(metrics.registered(FleetCollector(fleet, len(names))))
            log.warning("hollow metrics on %s", bound)
        log.warning(
            "starting %d hollow nodes (%s .. %s): start delay %s, failure rate %g",
            len(names), names[0], names[-1], executor.settings.start_delay, executor.settings.failure_rate,
        )
        with looplag.watching(metrics.EVENT_LOOP_LAG):
            async with asyncio.TaskGroup() as tg:
                for name in names:
                    tg.create_task(fleet.run_node(name), name=f"hollow-{name}")
        raise errors.FailedPrecondition(f"every hollow node stopped ({fleet.failed} failed)")
    raise AssertionError("unreachable")


def _delay(ctx: click.Context, param: click.Parameter, value: str) -> hollow.Delay:
    try:
        return hollow.Delay.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--start-delay") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--nodes", type=click.IntRange(1, 100_000), required=True, help="How many hollow nodes to run.")
@click.option("--controller", "controllers", required=True, metavar="HOST:PORT[,HOST:PORT...]",
              help="Controller addresses (comma-separated).")
@click.option("--join-token", default="", envvar="SHOAL_JOIN_TOKEN", metavar="TOKEN",
              help="Worker join token (needed for nodes that have no certificate yet).")
@click.option("--join-addr", default="", metavar="HOST:PORT", help="The controllers' join port (default: port + 1).")
@click.option("--name-prefix", default="hollow", show_default=True, help="Nodes are named PREFIX-1, PREFIX-2, ...")
@click.option("--first", type=click.IntRange(0), default=1, show_default=True, help="Number of the first node.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE_ROOT,
              show_default=True, help="Each node keeps its certificate in STATE_DIR/NAME.")
@click.option("--label", "labels", multiple=True, callback=parse_labels, metavar="KEY=VALUE",
              help="Label every node joins with (repeatable).")
@click.option("--start-delay", default="0", callback=_delay, show_default=True, metavar="DIST",
              help="Container start delay: SECONDS, uniform:LOW,HIGH or lognormal:MEDIAN,SIGMA.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Probability that a container start fails.")
@click.option("--cpus", type=click.IntRange(1), default=hollow.DEFAULT_CPUS, show_default=True,
              help="CPUs each node says it has.")
@click.option("--memory", default="32G", show_default=True, help="Memory each node says it has.")
@click.option("--metrics-listen", default="", metavar="HOST:PORT", help="One /metrics endpoint for the process.")
@click.option("--join-concurrency", type=click.IntRange(1, 1000), default=16, show_default=True,
              help="Joins in flight at once.")
@click.option("--seed", type=int, default=None, help="Seed of the delay and failure draws.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, help="Log level (info logs every task transition of every node).")
def command(
    nodes: int, controllers: str, join_token: str, join_addr: str, name_prefix: str, first: int, state_dir: Path,
    labels: dict[str, str], start_delay: hollow.Delay, failure_rate: float, cpus: int, memory: str,
    metrics_listen: str, join_concurrency: int, seed: int | None, log_level: str,
) -> None:
    """Run N hollow (simulated) nodes against the controllers: for control-plane benchmarks, never production."""
    addrs = tuple(a.strip() for a in controllers.split(",") if a.strip())
    try:
        for addr in (*addrs, *([join_addr] if join_addr else []), *([metrics_listen] if metrics_listen else [])):
            metrics_http.split_hostport(addr)
        memory_bytes = units.parse_size(memory)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not addrs:
        raise click.BadParameter("at least one HOST:PORT is needed", param_hint="--controller")
    if not _DNS_LABEL.match(f"{name_prefix}-{first + nodes}"):
        raise click.BadParameter(f"{name_prefix!r} does not make DNS labels", param_hint="--name-prefix")
    logs.setup(log_level)
    # A process of a thousand nodes holds as many tasks as a controller: collect as it does.
    heap.tune()
    base = AgentSettings(
        controllers=addrs, node_name=name_prefix, state_dir=state_dir, labels=labels,
        join_token=join_token, join_addr=join_addr, log_level=log_level,
    )
    executor = hollow.HollowExecutor(
        hollow.HollowSettings(
            start_delay=start_delay, failure_rate=failure_rate, nano_cpus=cpus * 1_000_000_000,
            memory_bytes=memory_bytes, seed=seed,
        )
    )
    names = node_names(name_prefix, first, nodes)

    async def main() -> None:
        await serve(base, executor, names, metrics_listen=metrics_listen, join_concurrency=join_concurrency)

    try:
        daemon.run(main)
    except (OSError, errors.ShoalError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
