"""What the control-plane benchmarks share: a real etcd, a controller and hollow agents as separate processes.

`HollowLab` starts a single-member etcd (mutual TLS, metrics on a plain HTTP
port), one controller (`swarmd controller`, join rate raised so a fleet can
join from this one address) and any number of `swarmd hollow` processes, each
running many hollow nodes. It measures every process from /proc (CPU seconds,
RSS, peak RSS) and scrapes Prometheus endpoints through measure.py, and watches etcd itself
(`TaskWatch`) to see task states as the store has them ("observed via watch",
as Kubernetes' startup SLI counts). Everything is killed and removed on exit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import measure  # noqa: E402
from shoal import tls  # noqa: E402
from shoal.controller.store.etcd import Etcd, EtcdTLS  # noqa: E402
from shoal.controller.store.keys import Keys, Kind  # noqa: E402
from shoal.errors import ShoalError  # noqa: E402
from shoal.v1 import control_pb2, control_pb2_grpc, objects_pb2, types_pb2  # noqa: E402
from tests.integration import harness  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RUNNING = types_pb2.RUNNING
ASSIGNED = types_pb2.ASSIGNED


# ---- the lab -----------------------------------------------------------------------------------


class HollowLab:
    """etcd, a controller and hollow-agent processes under one temporary directory."""

    def __init__(self, *, heartbeat: str = "5s", tmp: pathlib.Path | None = None, log_level: str = "info") -> None:
        self._own_tmp = tmp is None
        self.tmp = tmp or pathlib.Path(tempfile.mkdtemp(prefix="shoal-hollowlab-"))
        self.heartbeat = heartbeat
        self.log_level = log_level
        self.etcd: harness.Process | None = None
        self.etcd_url = ""
        self.etcd_metrics = ""
        self.cluster: harness.Cluster | None = None
        self.hollows: dict[str, harness.Process] = {}
        self.hollow_metrics: dict[str, str] = {}
        self._channel: grpc.Channel | None = None
        self.stub: control_pb2_grpc.ControlStub | None = None

    # -- etcd

    def start_etcd(self) -> str:
        harness.require("etcd", "etcd-server")
        d = self.tmp / "etcd"
        d.mkdir(parents=True, exist_ok=True)
        client, peer, metrics = harness.free_port(), harness.free_port(), harness.free_port()
        ca, server, server_key, client_cert, client_key = harness.etcd_tls_files(d)
        self.etcd = harness.Process(
            "etcd",
            [
                "etcd", "--name=bench", f"--data-dir={d / 'data'}",
                f"--listen-client-urls=https://127.0.0.1:{client}",
                f"--advertise-client-urls=https://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=bench=http://127.0.0.1:{peer}",
                f"--listen-metrics-urls=http://127.0.0.1:{metrics}",
                f"--trusted-ca-file={ca}", f"--cert-file={server}", f"--key-file={server_key}",
                "--client-cert-auth", "--log-level=warn",
                "--quota-backend-bytes=8589934592",
                # Per-method server-side latency (grpc_server_handling_seconds): etcd's own share of a request.
                "--metrics=extensive",
            ],
            self.tmp / "etcd.log",
        )
        self.etcd_url = f"https://127.0.0.1:{client}"
        self.etcd_metrics = f"127.0.0.1:{metrics}"
        harness.ETCD_TLS[self.etcd_url] = (ca, client_cert, client_key)
        harness.wait_until(lambda: harness._tcp_open("127.0.0.1", client), 30, "etcd to listen")
        return self.etcd_url

    def etcd_client(self) -> Etcd:
        ca, cert, key = harness.ETCD_TLS[self.etcd_url]
        return Etcd([self.etcd_url], timeout=30, tls=EtcdTLS.from_files(str(ca), str(cert), str(key)))

    # -- controller

    def start_controller(self, *extra: str) -> harness.Process:
        if self.cluster is None:
            (self.tmp / "cluster").mkdir(exist_ok=True)
            self.cluster = harness.Cluster(self.tmp / "cluster", self.etcd_url, heartbeat=self.heartbeat)
        proc = self.cluster.start_controller(
            "--log-level", self.log_level, "--join-rate", "10000", "--join-burst", "10000", *extra
        )
        return proc

    @property
    def controller(self) -> harness.Process:
        assert self.cluster is not None and self.cluster.controller is not None
        return self.cluster.controller

    @property
    def keys(self) -> Keys:
        assert self.cluster is not None
        return Keys(self.cluster.prefix)

    def control(self) -> control_pb2_grpc.ControlStub:
        """A blocking Control client that accepts big replies (listing every task)."""
        if self.stub is None:
            assert self.cluster is not None
            self._channel = grpc.secure_channel(
                self.cluster.controller_addr,
                tls.channel_credentials(tls.Bundle.load(self.cluster.admin_tls)),
                options=tls.channel_options("shoal-controller", [("grpc.max_receive_message_length", 512 * 2**20)]),
            )
            self.stub = control_pb2_grpc.ControlStub(self._channel)
        return self.stub

    def controller_metrics(self) -> dict[str, float]:
        assert self.cluster is not None
        return measure.scrape(self.cluster.controller_metrics)

    # -- hollow agents

    def start_hollow(
        self, name: str, nodes: int, *, first: int = 1, prefix: str = "h", labels: dict[str, str] | None = None,
        start_delay: str = "0", failure_rate: float = 0.0,
    ) -> harness.Process:
        assert self.cluster is not None
        self.hollow_metrics[name] = f"127.0.0.1:{harness.free_port()}"
        argv = [
            str(harness.BIN / "swarmd"), "hollow", "--nodes", str(nodes), "--first", str(first),
            "--name-prefix", prefix, "--controller", self.cluster.controller_addr,
            "--join-addr", self.cluster.join_addr, "--join-token", self.cluster.worker_token,
            "--state-dir", str(self.tmp / "hollow"), "--metrics-listen", self.hollow_metrics[name],
            "--start-delay", start_delay, "--failure-rate", str(failure_rate), "--join-concurrency", "32",
        ]
        for k, v in (labels or {}).items():
            argv += ["--label", f"{k}={v}"]
        self.hollows[name] = harness.Process(f"hollow {name}", argv, self.tmp / f"hollow-{name}.log")
        return self.hollows[name]

    def nodes_ready(self) -> int:
        nodes = self.control().ListNodes(control_pb2.ListNodesRequest(), timeout=30).nodes
        return sum(1 for n in nodes if n.status.state == types_pb2.NodeStatus.READY)

    def wait_nodes_ready(self, count: int, timeout: float = 300) -> float:
        start = time.monotonic()
        harness.wait_until(lambda: self.nodes_ready() >= count, timeout, f"{count} nodes READY", interval=0.5)
        return time.monotonic() - start

    def pids(self) -> dict[str, int]:
        out = {}
        if self.etcd is not None and self.etcd.running:
            out["etcd"] = self.etcd.proc.pid  # type: ignore[union-attr]
        if self.cluster is not None and self.cluster.controller is not None and self.cluster.controller.running:
            out["controller"] = self.cluster.controller.proc.pid  # type: ignore[union-attr]
        for name, proc in self.hollows.items():
            if proc.running:
                out[f"hollow {name}"] = proc.proc.pid  # type: ignore[union-attr]
        return out

    def meter(self) -> measure.Meter:
        return measure.Meter(self.pids()).start()

    # -- services

    def create_service(
        self, name: str, replicas: int, *, constraints: Sequence[str] = (), image: str = "hollow/app:1"
    ) -> str:
        return self.create_service_async(name, replicas, constraints=constraints, image=image).result().service.id

    def create_service_async(
        self, name: str, replicas: int, *, constraints: Sequence[str] = (), image: str = "hollow/app:1",
        timeout: float = 60,
    ) -> grpc.Future:
        """Send a CreateService without waiting for the reply (`.result()` is the CreateServiceResponse)."""
        spec = types_pb2.ServiceSpec(name=name)
        spec.task.container.image = image
        spec.task.placement.constraints.extend(constraints)
        spec.replicated.replicas = replicas
        spec.update.parallelism = 1
        # Hollow images are in no registry: nothing to pin them to.
        request = control_pb2.CreateServiceRequest(spec=spec, no_resolve_image=True)
        return self.control().CreateService.future(request, timeout=timeout)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        # Signal every process before waiting for any: a process of thousands of nodes can take
        # seconds to exit, and a timeout there must not leave the others running.
        doomed = [*self.hollows.values()]
        if self.cluster is not None and self.cluster.controller is not None:
            doomed.append(self.cluster.controller)
        for proc in doomed:
            if proc.running:
                with contextlib.suppress(ProcessLookupError):
                    proc.signal(signal.SIGKILL)
        for proc in doomed:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.kill()
        if self.cluster is not None:
            self.cluster.control.close()
        if self.etcd is not None:
            self.etcd.stop()
            harness.ETCD_TLS.pop(self.etcd_url, None)
        if self._own_tmp and not os.environ.get("SHOAL_BENCH_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self._own_tmp:
            print(f"kept {self.tmp} (SHOAL_BENCH_KEEP)")

    def __enter__(self) -> HollowLab:
        # `kill` or a CI timeout sends SIGTERM: unwind like Ctrl-C so every process is stopped.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# ---- watching etcd -----------------------------------------------------------------------------


class TaskWatch:
    """Watches the cluster's tasks and nodes in etcd from a thread of the benchmark process.

    For every task it records when it was first seen, first seen ASSIGNED (or
    later) and first seen RUNNING, as monotonic times; for nodes, when each
    was first seen DOWN.
    """

    def __init__(self, lab: HollowLab) -> None:
        self._lab = lab
        self.created: dict[str, float] = {}
        self.assigned: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.service_of: dict[str, str] = {}
        self.node_of: dict[str, str] = {}
        self.state: dict[str, int] = {}
        self.desired: dict[str, int] = {}
        self.down: dict[str, float] = {}
        self.node_names: dict[str, str] = {}
        self.events = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name="task-watch")

    def start(self) -> TaskWatch:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the etcd watch did not start")
        return self

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(10)

    def _main(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        keys = self._lab.keys
        async with self._lab.etcd_client() as etcd:
            revision, kvs = await etcd.range_prefix(keys.root)
            now = time.monotonic()
            for kv in kvs:
                self._see(keys, kv.key, kv.value, now)
            self._ready.set()
            while True:
                try:
                    async for resp in etcd.watch(keys.root, revision + 1):
                        now = time.monotonic()
                        for ev in resp.events:
                            if ev.type == 0:  # PUT
                                self._see(keys, ev.kv.key, ev.kv.value, now)
                            revision = max(revision, ev.kv.mod_revision)
                except ShoalError as exc:
                    print(f"note: the benchmark's etcd watch broke ({exc}); resuming", flush=True)
                    await asyncio.sleep(0.2)

    def _see(self, keys: Keys, key: bytes, value: bytes, now: float) -> None:
        parsed = keys.parse(key)
        if parsed is None:
            return
        kind, obj_id = parsed
        self.events += 1
        if kind is Kind.TASK:
            task = objects_pb2.Task.FromString(value)
            self.created.setdefault(obj_id, now)
            self.service_of[obj_id] = task.service_id
            self.state[obj_id] = task.status.state
            self.desired[obj_id] = task.desired_state
            if task.node_id:
                self.node_of[obj_id] = task.node_id
            if task.status.state >= ASSIGNED:
                self.assigned.setdefault(obj_id, now)
            if task.status.state == RUNNING:
                self.running.setdefault(obj_id, now)
        elif kind is Kind.NODE:
            node = objects_pb2.Node.FromString(value)
            self.node_names[obj_id] = node.name
            if node.status.state == types_pb2.NodeStatus.DOWN:
                self.down.setdefault(obj_id, now)

    def running_now(self, service_ids: set[str] | None = None) -> int:
        """Tasks whose latest state is RUNNING and desired RUNNING (of these services)."""
        return sum(
            1
            for t, s in list(self.state.items())
            if s == RUNNING and self.desired.get(t) == RUNNING
            and (service_ids is None or self.service_of.get(t) in service_ids)
        )


# ---- output ------------------------------------------------------------------------------------


def percentiles(values: Sequence[float], qs: Sequence[float] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    if not values:
        return {f"p{int(q * 100)}": float("nan") for q in qs}
    ordered = sorted(values)
    return {f"p{int(q * 100)}": ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs}


def write_result(name: str, data: dict[str, Any], out: pathlib.Path | None = None) -> pathlib.Path:
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": host_info(), **data}
    path.write_text(json.dumps(data, indent=2, default=_jsonable))
    print(f"wrote {path}")
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, measure.Usage):
        return value.as_dict()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)  # type: ignore[arg-type]
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def host_info() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_at_end": [round(x, 2) for x in load], "python": sys.version.split()[0]}


def check_load(limit: float = 1.5) -> None:
    """Say so when the machine is busy before a measurement (the lead may be running tests)."""
    one, _, _ = os.getloadavg()
    if one > limit:
        print(f"note: load average is {one:.2f} before the run; figures may be pessimistic", flush=True)


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    print(f"{label}: {time.monotonic() - start:.1f}s", flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_swarmctl(lab: HollowLab, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run swarmctl against the lab; (wall seconds, result)."""
    start = time.monotonic()
    result = lab.cluster.ctl(*args)  # type: ignore[union-attr]
    return time.monotonic() - start, result


# ---- profiling ---------------------------------------------------------------------------------


class Profiler:
    """py-spy sampling named processes while the context is open (collapsed stacks, one file each)."""

    def __init__(self, lab: HollowLab, names: Sequence[str], out_dir: pathlib.Path | None, rate: int = 67) -> None:
        self._lab, self._names, self._out, self._rate = lab, names, out_dir, rate
        self._procs: list[subprocess.Popen[bytes]] = []
        self.files: dict[str, pathlib.Path] = {}

    def __enter__(self) -> Profiler:
        if self._out is None:
            return self
        spy = shutil.which("py-spy") or str(harness.BIN / "py-spy")
        self._out.mkdir(parents=True, exist_ok=True)
        pids = self._lab.pids()
        for name in self._names:
            if name not in pids:
                continue
            path = self._out / f"{name.replace(' ', '-')}.txt"
            self.files[name] = path
            self._procs.append(
                subprocess.Popen(
                    [spy, "record", "--pid", str(pids[name]), "--rate", str(self._rate), "--format", "raw",
                     "--nonblocking", "-o", str(path)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for name, path in self.files.items():
            if path.exists():
                print(f"\nprofile of {name} ({path}):\n{top_entries(path)}")


def top_entries(path: pathlib.Path, n: int = 15) -> str:
    """The functions with the most samples in a collapsed-stack file: self and inclusive."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [re.sub(r" \(.*/(?:site-packages/)?", " (", f) for f in stack.split(";")]
        c = int(count)
        total += c
        own[frames[-1]] += c
        for f in set(frames):
            inclusive[f] += c
    if not total:
        return "  (no samples)"
    lines = ["  self%   function"]
    lines += [f"  {100 * c / total:5.1f}   {f}" for f, c in own.most_common(n)]
    lines += ["  incl%   function"]
    lines += [f"  {100 * c / total:5.1f}   {f}" for f, c in inclusive.most_common(n + 10)]
    return "\n".join(lines)
