"""`swarmd lab`: a lab cluster on this machine, made of real processes.

`lab up` starts a local registry holding a demo image built FROM scratch with
the static busybox (there is no Docker Hub here), a controller with its
embedded etcd, and N agents named lab-1..lab-N that share the local Docker
engine. Every process is detached, logs to the lab directory, and is recorded
in `lab.json`, so that `lab down` can stop it and remove what it made (its
containers, the registry data, the etcd data) even after a crash. Per-host
isolation with network namespaces is a later step; this layout keeps the
same commands.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import click
import grpc

from shoal import errors, lab_prometheus, pki, tls
from shoal.v1 import control_pb2, control_pb2_grpc, types_pb2

DEFAULT_DIR = "/var/lib/shoal/lab"
CONTROLLER = "127.0.0.1:4240"
CONTROLLER_METRICS = "127.0.0.1:9420"
ETCD = "127.0.0.1:2379"
REGISTRY = "127.0.0.1:5000"
DEMO_IMAGE = f"{REGISTRY}/shoal/busybox:1"
AGENT_PORT, AGENT_METRICS_PORT = 4250, 9430
DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
_BIN = pathlib.Path(sys.executable).parent


class LabError(click.ClickException):
    """One line on stderr, exit 1."""


def _swarmd() -> str:
    path = _BIN / "swarmd"
    return str(path) if path.exists() else "swarmd"


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise LabError(f"{binary} is not installed: apt-get install {package} (or run deploy/setup.sh)")
    return path


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", "-H", DOCKER_HOST, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if check and result.returncode != 0:
        raise LabError(f"docker {args[0]} failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
    return result


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
            return resp.status == 200
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Lab:
    """The lab directory and the processes recorded in it."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.record = root / "lab.json"

    def load(self) -> dict:
        return json.loads(self.record.read_text()) if self.record.exists() else {"processes": {}}

    def save(self, state: dict) -> None:
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.record)

    def spawn(self, state: dict, name: str, argv: list[str]) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        state["processes"][name] = {"pid": proc.pid, "argv": argv}
        self.save(state)

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie child of ours is not alive.
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
            return stat.rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


def _admin_dir(root: pathlib.Path) -> pathlib.Path:
    return root / "controller" / "admin-tls"


def _control(root: pathlib.Path) -> control_pb2_grpc.ControlStub:
    """The Control API over mutual TLS with the admin bundle the lab's controller wrote."""
    _wait(lambda: tls.Bundle.exists(_admin_dir(root)), 60, "the controller's admin bundle")
    bundle = tls.Bundle.load(_admin_dir(root))
    channel = grpc.secure_channel(
        CONTROLLER, tls.channel_credentials(bundle), options=tls.channel_options(pki.CONTROLLER_NAME)
    )
    return control_pb2_grpc.ControlStub(channel)


def _ready_nodes(stub: control_pb2_grpc.ControlStub) -> set[str]:
    try:
        nodes = stub.ListNodes(control_pb2.ListNodesRequest(), timeout=2).nodes
    except grpc.RpcError:
        return set()
    return {n.name for n in nodes if n.status.state == types_pb2.NodeStatus.READY}


def _build_demo_image(root: pathlib.Path) -> None:
    ctx = root / "image"
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy(_need("busybox", "busybox-static"), ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n'
    )
    _docker("build", "-q", "-t", DEMO_IMAGE, str(ctx))
    _docker("push", DEMO_IMAGE)


@click.group()
def group() -> None:
    """A lab cluster on this machine: registry, controller (embedded etcd) and agents."""


@group.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 50), help="Agents to start.")
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
@click.option("--heartbeat-period", default="5s", show_default=True)
@click.option("--prometheus", is_flag=True, help=f"Also run Prometheus on {lab_prometheus.ADDR}, scraping the lab.")
def up(nodes: int, root: pathlib.Path, heartbeat_period: str, prometheus: bool) -> None:
    """Start the lab and wait until every node is READY."""
    for binary, package in (("etcd", "etcd-server"), ("docker", "docker.io"), ("docker-registry", "docker-registry")):
        _need(binary, package)
    if _docker("info", check=False).returncode != 0:
        raise LabError(f"dockerd is not reachable at {DOCKER_HOST}: start it (deploy/setup.sh does)")
    lab = Lab(root)
    state = lab.load()
    if any(Lab.alive(p["pid"]) for p in state["processes"].values()):
        raise LabError(f"a lab is already running in {root}: run 'swarmd lab down' first")
    root.mkdir(parents=True, exist_ok=True)
    state = {"processes": {}, "nodes": nodes, "image": DEMO_IMAGE}
    lab.save(state)

    registry_cfg = root / "registry.yml"
    registry_cfg.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'registry'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: {REGISTRY}\n"
    )
    lab.spawn(state, "registry", ["docker-registry", "serve", str(registry_cfg)])
    _wait(lambda: _http_ok(f"http://{REGISTRY}/v2/"), 30, f"the registry on {REGISTRY}")
    click.echo(f"registry on {REGISTRY}; building {DEMO_IMAGE}")
    _build_demo_image(root)

    lab.spawn(
        state,
        "controller",
        [
            _swarmd(),
            "controller",
            "--listen",
            CONTROLLER,
            "--metrics-listen",
            CONTROLLER_METRICS,
            "--state-dir",
            str(root / "controller"),
            "--embedded-etcd-listen",
            ETCD,
            "--heartbeat-period",
            heartbeat_period,
        ],
    )
    stub = _control(root)
    _wait(lambda: _leading(stub), 60, f"the controller on {CONTROLLER}")
    token = stub.GetJoinTokens(control_pb2.GetJoinTokensRequest(), timeout=5).worker
    admin = _install_admin_bundle(root)
    names = [f"lab-{i}" for i in range(1, nodes + 1)]
    for i, name in enumerate(names, start=1):
        lab.spawn(
            state,
            name,
            [
                _swarmd(),
                "agent",
                "--controller",
                CONTROLLER,
                "--node-name",
                name,
                "--listen",
                f"127.0.0.1:{AGENT_PORT + i}",
                "--metrics-listen",
                f"127.0.0.1:{AGENT_METRICS_PORT + i}",
                "--state-dir",
                str(root / name),
                "--docker-host",
                DOCKER_HOST,
                "--join-token",
                token,
            ],
        )
    _wait(lambda: set(names) <= _ready_nodes(stub), 60, f"nodes {', '.join(names)} to be READY")
    click.echo(
        f"lab up: controller {CONTROLLER} (metrics http://{CONTROLLER_METRICS}/metrics), nodes {', '.join(names)}"
    )
    click.echo(f"demo image: {DEMO_IMAGE}; logs in {root / 'logs'}")
    click.echo(f"swarmctl's admin bundle (mutual TLS): {admin}")
    if prometheus:
        argv = lab_prometheus.prepare(root, _need("prometheus", "prometheus"), CONTROLLER_METRICS)
        lab.spawn(state, "prometheus", argv)
        _wait(lambda: _http_ok(f"http://{lab_prometheus.ADDR}/-/ready"), 60, f"Prometheus on {lab_prometheus.ADDR}")
        click.echo(f"prometheus: http://{lab_prometheus.ADDR} (targets: /targets, alerts: /alerts)")


def _install_admin_bundle(root: pathlib.Path) -> pathlib.Path:
    """Copy the lab's admin bundle where swarmctl looks by default, so that it just works."""
    target = tls.default_client_dir()
    tls.Bundle.load(_admin_dir(root)).save(target)
    return target


def _remove_admin_bundle(root: pathlib.Path) -> None:
    """Remove the default admin bundle if it is this lab's (another cluster's is left alone)."""
    target = tls.default_client_dir()
    try:
        if tls.Bundle.load(target).ca_pem == tls.Bundle.load(_admin_dir(root)).ca_pem:
            shutil.rmtree(target)
    except errors.ShoalError:
        pass


def _leading(stub: control_pb2_grpc.ControlStub) -> bool:
    try:
        stub.GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=2)
        return True
    except grpc.RpcError:
        return False


@group.command()
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
def down(root: pathlib.Path) -> None:
    """Stop every lab process and remove its containers, images and data."""
    lab = Lab(root)
    state = lab.load()
    procs = state["processes"]
    # Agents first, so that nothing restarts containers while we remove them.
    order = sorted(procs, key=lambda n: (n == "registry", n == "controller"))
    for name in order:
        _terminate(procs[name]["pid"])
    removed = 0
    for node_dir in root.glob("lab-*"):
        id_file = node_dir / "node_id"
        if id_file.exists():
            ids = _docker(
                "ps", "-aq", "--filter", f"label=shoal.node.id={id_file.read_text().strip()}", check=False
            ).stdout.split()
            if ids:
                _docker("rm", "-f", *ids, check=False)
                removed += len(ids)
    _docker("rmi", "-f", state.get("image", DEMO_IMAGE), check=False)
    for files in root.glob("lab-*/files"):
        # The agents' tmpfs for secrets (lazily: a container that just died may still hold it).
        if os.path.ismount(files):
            subprocess.run(["umount", "-l", str(files)], check=False, capture_output=True)
    _remove_admin_bundle(root)
    if root.exists():
        shutil.rmtree(root)
    click.echo(f"lab down: stopped {len(procs)} processes, removed {removed} containers and {root}")


def _terminate(pid: int) -> None:
    if not Lab.alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while Lab.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if Lab.alive(pid):
        os.killpg(pid, signal.SIGKILL)


@group.command()
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
def status(root: pathlib.Path) -> None:
    """List the lab's processes, their addresses and health."""
    state = Lab(root).load()
    if not state["processes"]:
        raise LabError(f"no lab in {root}")
    ready = _ready_nodes(_control(root))
    click.echo(f"{'PROCESS':<12} {'PID':>7}  {'STATE':<8} NODE")
    for name, proc in state["processes"].items():
        alive = "running" if Lab.alive(proc["pid"]) else "dead"
        node = ("READY" if name in ready else "not ready") if name.startswith("lab-") else ""
        click.echo(f"{name:<12} {proc['pid']:>7}  {alive:<8} {node}")
