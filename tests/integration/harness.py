"""Real processes for integration tests: etcd, a registry with a test image, controllers, agents.

Everything here starts real programs on free loopback ports and cleans up
after itself: processes are killed, containers made by the test's nodes are
removed, temporary directories go away with pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from shoal import pki, tls
from shoal.v1 import control_pb2, control_pb2_grpc, objects_pb2, types_pb2

T = TypeVar("T")

BIN = pathlib.Path(sys.executable).parent
DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


# Ports come from below Linux's ephemeral range (32768+), where the kernel
# never hands out a port between our check and the daemon's bind.
_next_port = itertools.count(20000 + (os.getpid() * 97) % 10000)


def free_port() -> int:
    """A loopback port nobody listens on, outside the ephemeral range."""
    while True:
        port = 20000 + (next(_next_port) - 20000) % 12000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; fail with the last value seen after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - reported below if it never settles
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} is not installed (Debian package {package}); run deploy/setup.sh or .ci/run")
    return path


class Process:
    """A child process with its log file; kill(), stop(), start() again."""

    def __init__(self, name: str, argv: list[str], log_path: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            os.killpg(self.proc.pid, sig)  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL the process group: no cleanup runs, as in a crash."""
        if self.running:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


#: The client TLS files (CA, certificate, key) of each etcd the harness started, by URL.
ETCD_TLS: dict[str, tuple[pathlib.Path, pathlib.Path, pathlib.Path]] = {}


def etcd_tls_files(tmp: pathlib.Path) -> tuple[pathlib.Path, ...]:
    """An etcd CA with a server certificate for 127.0.0.1 and a client certificate, as files."""
    ca_pem, ca_key = pki.new_ca("test etcd CA", "shoal-test")
    paths = [tmp / "etcd-ca.pem"]
    paths[0].write_bytes(ca_pem)
    for name in ("server", "client"):
        key = pki.new_key()
        cert = pki.issue(
            ca_pem, ca_key, pki.csr_pem(key), common_name=name, validity=datetime.timedelta(days=1),
            dns_names=("localhost",), ip_addresses=("127.0.0.1",),
        )
        (tmp / f"etcd-{name}.pem").write_bytes(cert)
        (tmp / f"etcd-{name}-key.pem").write_bytes(pki.key_pem(key))
        paths += [tmp / f"etcd-{name}.pem", tmp / f"etcd-{name}-key.pem"]
    return tuple(paths)


@contextlib.contextmanager
def etcd_server(tmp: pathlib.Path) -> Iterator[str]:
    """A single-member etcd on free ports with mutual TLS; yields its client URL (TLS files in ETCD_TLS)."""
    require("etcd", "etcd-server")
    client, peer = free_port(), free_port()
    ca, server, server_key, client_cert, client_key = etcd_tls_files(tmp)
    proc = Process(
        "etcd",
        [
            "etcd",
            "--name=test",
            f"--data-dir={tmp / 'etcd'}",
            f"--listen-client-urls=https://127.0.0.1:{client}",
            f"--advertise-client-urls=https://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=test=http://127.0.0.1:{peer}",
            f"--trusted-ca-file={ca}",
            f"--cert-file={server}",
            f"--key-file={server_key}",
            "--client-cert-auth",
            "--log-level=warn",
        ],
        tmp / "etcd.log",
    )
    url = f"https://127.0.0.1:{client}"
    ETCD_TLS[url] = (ca, client_cert, client_key)
    try:
        wait_until(lambda: _tcp_open("127.0.0.1", client), 30, "etcd to listen")
        yield url
    finally:
        ETCD_TLS.pop(url, None)
        proc.stop()


def unmount(path: pathlib.Path) -> None:
    """Unmount an agent's secrets tmpfs, if it is mounted (lazily: a dead container may still hold it)."""
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _tcp_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
        return resp.status == 200


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against the test engine."""
    return subprocess.run(
        ["docker", "-H", DOCKER_HOST, *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )


def check_docker() -> None:
    require("docker", "docker.io")
    result = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(
            f"dockerd is not reachable at {DOCKER_HOST} (start it, e.g. .ci/run): {result.stderr.strip()}"
        )


@contextlib.contextmanager
def registry_with_image(tmp: pathlib.Path) -> Iterator[str]:
    """A local registry holding a busybox image built FROM scratch; yields the image reference."""
    require("docker-registry", "docker-registry")
    busybox = require("busybox", "busybox-static")
    port = free_port()
    config = tmp / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{tmp / 'registry-data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = Process("registry", ["docker-registry", "serve", str(config)], tmp / "registry.log")
    image = f"127.0.0.1:{port}/shoal-test/busybox:1"
    try:
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/v2/"), 30, "the registry to answer")
        ctx = tmp / "image"
        ctx.mkdir()
        shutil.copy(busybox, ctx / "busybox")
        (ctx / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n'
        )
        docker("build", "-q", "-t", image, str(ctx))
        docker("push", image)
        # Agents must pull it: the pull path is part of what is tested.
        docker("rmi", image)
        yield image
    finally:
        docker("rmi", "-f", image, check=False)
        proc.stop()


def sync_channel(addr: str, bundle: tls.Bundle | None, *, ca_pem: bytes | None = None,
                 server_name: str = pki.CONTROLLER_NAME) -> grpc.Channel:
    """A blocking mutual-TLS channel, as tests make them."""
    return grpc.secure_channel(addr, tls.channel_credentials(bundle, ca_pem), options=tls.channel_options(server_name))


class Control:
    """A synchronous Control API client for assertions, with the controller's admin bundle."""

    def __init__(self, addr: str, tls_dir: pathlib.Path) -> None:
        self.addr = addr
        self.tls_dir = tls_dir
        self._channel: grpc.Channel | None = None
        self._stub: control_pb2_grpc.ControlStub | None = None

    @property
    def stub(self) -> control_pb2_grpc.ControlStub:
        # The admin bundle exists only once the controller has started.
        if self._stub is None:
            self._channel = sync_channel(self.addr, tls.Bundle.load(self.tls_dir))
            self._stub = control_pb2_grpc.ControlStub(self._channel)
        return self._stub

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def worker_token(self) -> str:
        return self.stub.GetJoinTokens(control_pb2.GetJoinTokensRequest(), timeout=5).worker

    def nodes(self) -> list[objects_pb2.Node]:
        return list(self.stub.ListNodes(control_pb2.ListNodesRequest(), timeout=5).nodes)

    def service(self, ref: str) -> objects_pb2.Service:
        return self.stub.GetService(control_pb2.GetServiceRequest(ref=ref), timeout=5).service

    def tasks(self, service_id: str = "", **kw: Any) -> list[objects_pb2.Task]:
        req = control_pb2.ListTasksRequest(service_ids=[service_id] if service_id else [], **kw)
        return list(self.stub.ListTasks(req, timeout=5).tasks)

    def running(self, service_id: str) -> list[objects_pb2.Task]:
        """Tasks observed RUNNING and meant to run."""
        return [
            t
            for t in self.tasks(service_id)
            if t.status.state == types_pb2.RUNNING and t.desired_state == types_pb2.RUNNING
        ]


class Cluster:
    """A controller and agents as separate processes, under their own etcd prefix."""

    def __init__(self, tmp: pathlib.Path, etcd_url: str, *, heartbeat: str = "1s") -> None:
        self.tmp = tmp
        self.etcd_url = etcd_url
        self.prefix = f"/test-{tmp.name}-{os.getpid()}"
        self.heartbeat = heartbeat
        self.controller_addr = f"127.0.0.1:{free_port()}"
        self.controller_metrics = f"127.0.0.1:{free_port()}"
        self.controller: Process | None = None
        self.agents: dict[str, Process] = {}
        self.agent_metrics: dict[str, str] = {}
        self.join_addr = f"127.0.0.1:{free_port()}"
        self.control = Control(self.controller_addr, tmp / "controller" / "admin-tls")
        # The controller's Docker Engine API: a unix socket (short enough for sun_path) and TLS on TCP.
        sock = tmp / "docker.sock"
        self.docker_sock = sock if len(str(sock)) < 100 else pathlib.Path(f"/tmp/shoal-docker-{tmp.name[-40:]}.sock")
        self.docker_tcp = f"127.0.0.1:{free_port()}"
        self._token = ""

    def _etcd_tls_args(self) -> list[str]:
        files = ETCD_TLS.get(self.etcd_url)
        if files is None:
            return []
        ca, cert, key = files
        return ["--etcd-cacert", str(ca), "--etcd-cert", str(cert), "--etcd-key", str(key)]

    @property
    def admin_tls(self) -> pathlib.Path:
        """The admin client bundle the controller wrote."""
        return self.tmp / "controller" / "admin-tls"

    def start_controller(self, *extra: str) -> Process:
        d = self.tmp / "controller"
        d.mkdir(exist_ok=True)
        self.controller = Process(
            "controller",
            [
                str(BIN / "swarmd"),
                "controller",
                "--listen",
                self.controller_addr,
                "--etcd",
                self.etcd_url,
                "--etcd-prefix",
                self.prefix,
                *self._etcd_tls_args(),
                "--join-listen",
                self.join_addr,
                "--state-dir",
                str(d),
                "--metrics-listen",
                self.controller_metrics,
                "--heartbeat-period",
                self.heartbeat,
                "--log-level",
                "debug",
                "--docker-api-listen",
                f"unix://{self.docker_sock}",
                "--docker-api-listen",
                f"tcp://{self.docker_tcp}",
                *extra,
            ],
            self.tmp / "controller.log",
        )
        wait_until(
            lambda: self.control.stub.GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=2),
            30,
            "the controller to lead",
        )
        return self.controller

    def start_agent(self, name: str, labels: dict[str, str] | None = None, docker_host: str = DOCKER_HOST) -> Process:
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        self.agent_metrics[name] = f"127.0.0.1:{free_port()}"
        argv = [
            str(BIN / "swarmd"),
            "agent",
            "--controller",
            self.controller_addr,
            "--node-name",
            name,
            "--docker-host",
            docker_host,
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--metrics-listen",
            self.agent_metrics[name],
            "--state-dir",
            str(d),
            "--log-level",
            "debug",
            "--join-token",
            self.worker_token,
            "--join-addr",
            self.join_addr,
        ]
        for k, v in (labels or {}).items():
            argv += ["--label", f"{k}={v}"]
        self.agents[name] = Process(f"agent {name}", argv, self.tmp / f"{name}.log")
        return self.agents[name]

    @property
    def worker_token(self) -> str:
        """The worker join token, asked once."""
        if not self._token:
            self._token = self.control.worker_token()
        return self._token

    def agent_tasks(self, name: str, state: str = "RUNNING") -> int:
        """What the agent's own metrics say it runs: proof that it has reconciled its assignment set."""
        import urllib.request

        with urllib.request.urlopen(f"http://{self.agent_metrics[name]}/metrics", timeout=2) as resp:  # noqa: S310
            for line in resp.read().decode().splitlines():
                if line.startswith(f'shoal_agent_tasks{{state="{state}"}}'):
                    return int(float(line.split()[-1]))
        return 0

    def node_id(self, name: str) -> str:
        return wait_until(lambda: (self.tmp / name / "node_id").read_text().strip(), 10, f"{name}'s node ID")

    def wait_ready(self, *names: str, timeout: float = 30) -> None:
        def ready() -> bool:
            states = {n.name: n.status.state for n in self.control.nodes()}
            return all(states.get(n) == types_pb2.NodeStatus.READY for n in names)

        wait_until(ready, timeout, f"nodes {names} to be READY")

    def ctl(
        self, *args: str, check: bool = False, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run swarmctl against this cluster (in `env`, when given)."""
        result = subprocess.run(
            [str(BIN / "swarmctl"), "-H", self.controller_addr, "--tls-dir", str(self.admin_tls), *args],
            capture_output=True,
            text=True,
            timeout=60,
            input=input,
            env=env,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"swarmctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def ctl_json(self, *args: str) -> Any:
        return json.loads(self.ctl("--format", "json", *args, check=True).stdout)

    def containers(self, *, all: bool = True) -> list[dict[str, str]]:
        """Containers made by this cluster's nodes: id, name, state, task ID."""
        out = []
        ids = [self.node_id(n) for n in self.agents]
        for node_id in ids:
            args = ["ps", "--no-trunc", "--filter", f"label=shoal.node.id={node_id}", "--format", "{{json .}}"]
            if all:
                args.insert(1, "-a")
            for line in docker(*args).stdout.splitlines():
                doc = json.loads(line)
                labels = dict(kv.split("=", 1) for kv in doc.get("Labels", "").split(",") if "=" in kv)
                out.append(
                    {
                        "id": doc["ID"],
                        "name": doc["Names"],
                        "state": doc["State"],
                        "node": node_id,
                        "task": labels.get("shoal.task.id", ""),
                        "service": labels.get("shoal.service.name", ""),
                    }
                )
        return out

    def running_containers(self, service: str | None = None) -> list[dict[str, str]]:
        return [c for c in self.containers(all=False) if c["state"] == "running" and service in (None, c["service"])]

    def close(self) -> None:
        for proc in self.agents.values():
            proc.kill()
        if self.controller is not None:
            self.controller.stop()
        self.control.close()
        for name in self.agents:
            path = self.tmp / name / "node_id"
            if path.exists():
                node_id = path.read_text().strip()
                ids = docker("ps", "-aq", "--filter", f"label=shoal.node.id={node_id}").stdout.split()
                if ids:
                    docker("rm", "-f", *ids, check=False)
                # The volumes the node's agent made (they outlive containers by design).
                volumes = docker("volume", "ls", "-q", "--filter", f"label=shoal.node.id={node_id}").stdout.split()
                if volumes:
                    docker("volume", "rm", "-f", *volumes, check=False)
            unmount(self.tmp / name / "files")

    def dump_logs(self) -> str:
        parts = []
        for proc in [self.controller, *self.agents.values()]:
            if proc is not None:
                parts.append(f"===== {proc.name} =====\n{proc.log()[-6000:]}")
        return "\n".join(parts)


def join_node(cluster: Cluster, name: str, token: str | None = None) -> tls.Bundle:
    """Join a node by hand (as an agent would, without running one): its certificate bundle."""
    from shoal.v1 import ca_pb2, ca_pb2_grpc

    token = token or cluster.worker_token
    ca_pem = tls.fetch_root_ca(cluster.join_addr, pki.parse_token(token).ca_digest)
    key = pki.new_key()
    with sync_channel(cluster.join_addr, None, ca_pem=ca_pem) as channel:
        reply = ca_pb2_grpc.CAStub(channel).Join(
            ca_pb2.JoinRequest(token=token, csr_pem=pki.csr_pem(key), node_name=name), timeout=10
        )
    return tls.Bundle(reply.ca_pem, reply.certificate_pem, pki.key_pem(key))


def read_etcd(cluster: Cluster, key: bytes) -> bytes | None:
    """One raw value from the cluster's etcd (for checks of what is stored)."""
    import asyncio

    from shoal.controller.store.etcd import Etcd, EtcdTLS

    ca, cert, key_file = ETCD_TLS[cluster.etcd_url]

    async def get() -> bytes | None:
        async with Etcd([cluster.etcd_url], tls=EtcdTLS.from_files(str(ca), str(cert), str(key_file))) as etcd:
            kv = await etcd.get(key)
            return kv.value if kv else None

    return asyncio.run(get())


def etcd_dump(cluster: Cluster) -> dict[bytes, bytes]:
    """Every key and value under the cluster's prefix."""
    import asyncio

    from shoal.controller.store.etcd import Etcd, EtcdTLS
    from shoal.controller.store.keys import Keys

    ca, cert, key_file = ETCD_TLS[cluster.etcd_url]

    async def dump() -> dict[bytes, bytes]:
        async with Etcd([cluster.etcd_url], tls=EtcdTLS.from_files(str(ca), str(cert), str(key_file))) as etcd:
            _, kvs = await etcd.range_prefix(Keys(cluster.prefix).root)
            return {kv.key: kv.value for kv in kvs}

    return asyncio.run(dump())
