"""Bringing a lab up and down: etcd members, controllers, a dockerd and an agent per node, a registry.

`Lab.up()` builds, in order: the network; etcd's own CA and the members (each
in its namespace, mutual TLS for clients and peers); the controllers (each in
its namespace, sharing the secrets data key); one dockerd per node host (its
own data root, exec root, socket, bridge subnet and cgroup parent, started
with nsenter); the registry on the machine's bridge address with the demo
image, built FROM scratch with the static busybox by the first node's dockerd;
and the agents, which join with the worker token. `Lab.down()` undoes all of
it in reverse, and also finds what a crashed lab left behind by its names.
The fault suite drives labs through this same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import grpc

from shoal import errors, pki, tls
from shoal.lab import net
from shoal.lab.procs import Processes, referencing
from shoal.lab.spec import (
    AGENT_METRICS_PORT,
    AGENT_PORT,
    CONTROLLER_METRICS_PORT,
    CONTROLLER_PORT,
    DOCKER_API_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    ETCD_SERVER_NAME,
    Host,
    LabSpec,
)
from shoal.v1 import control_pb2, control_pb2_grpc, types_pb2

_BIN = pathlib.Path(sys.executable).parent
REQUIREMENTS = (
    ("etcd", "etcd-server"),
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("docker-registry", "docker-registry"),
    ("busybox", "busybox-static"),
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("nft", "nftables"),
    ("nsenter", "util-linux"),
)


def check_prerequisites() -> None:
    """Root and every program the lab runs, or one line that says what is missing."""
    if os.geteuid() != 0:
        raise errors.FailedPrecondition("the lab needs root: it creates network namespaces and runs dockerd")
    for binary, package in REQUIREMENTS:
        if shutil.which(binary) is None:
            raise errors.FailedPrecondition(f"{binary} is not installed: apt-get install {package}")


def wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        if time.monotonic() > deadline:
            raise errors.Unavailable(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def _swarmd() -> str:
    path = _BIN / "swarmd"
    return str(path) if path.exists() else "swarmd"


class Lab:
    """One lab, described by its spec; every step records what it started."""

    def __init__(self, spec: LabSpec) -> None:
        self.spec = spec
        self.procs = Processes(spec.root)
        self._token = ""

    # ---- addresses and clients --------------------------------------------

    @property
    def admin_dir(self) -> pathlib.Path:
        return self.spec.dir(self.spec.controller_hosts[0]) / "state" / "admin-tls"

    def control(self) -> control_pb2_grpc.ControlStub:
        """The Control API over mutual TLS, on the controller that leads now (followers redirect)."""
        bundle = tls.Bundle.load(self.admin_dir)
        last: Exception | None = None
        for addr in self.spec.controller_addrs:
            channel = grpc.secure_channel(
                addr, tls.channel_credentials(bundle), options=tls.channel_options(pki.CONTROLLER_NAME)
            )
            stub = control_pb2_grpc.ControlStub(channel)
            try:
                stub.GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=3)
                return stub
            except grpc.RpcError as exc:
                last = exc
                channel.close()
        raise errors.Unavailable(f"no controller of the lab leads ({last})")

    def docker(
        self, node: Host, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against one node's own engine."""
        result = subprocess.run(
            ["docker", "-H", self.spec.docker_host(node), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            check=False,
        )
        if check and result.returncode != 0:
            raise errors.Unavailable(f"docker {args[0]} on {node.name}: {result.stderr.strip()[-300:]}")
        return result

    # ---- up -----------------------------------------------------------------

    def up(self, *, log: Callable[[str], None] = lambda _: None) -> None:
        """Build the whole lab and wait until every node is READY."""
        check_prerequisites()
        spec = self.spec
        if any(self.procs.running(n) for n in self.procs.names()):
            raise errors.FailedPrecondition(f"a lab is already running in {spec.root}: run 'swarmd lab down' first")
        if net.namespaces(spec):
            # What a crashed lab of this prefix left (its processes, namespaces) would be in the way.
            net.teardown(spec)
        spec.root.mkdir(parents=True, exist_ok=True)
        self.procs.save(
            {
                "processes": {},
                "spec": {
                    "nodes": spec.nodes,
                    "controllers": spec.controllers,
                    "etcd_members": spec.etcd_members,
                    "prefix": spec.prefix,
                    "subnet": spec.subnet,
                },
            }
        )
        net.create_bridge(spec)
        for host in spec.hosts:
            net.add_host(spec, host)
        log(f"network: bridge {spec.bridge} {spec.gateway}/{spec.network.prefixlen}, {len(spec.hosts)} hosts")
        self._start_etcd()
        log(f"etcd: {', '.join(spec.etcd_urls)}")
        self._start_registry()
        self._start_controllers()
        log(f"controllers: {', '.join(spec.controller_addrs)}")
        for node in spec.node_hosts:
            self._start_dockerd(node)
        for node in spec.node_hosts:
            wait(functools.partial(self.docker, node, "info", timeout=5), 60, f"dockerd on {node.name}")
        self._push_image()
        log(f"registry: {spec.registry}, image {spec.image}")
        for node in spec.node_hosts:
            self.start_agent(node)
        self.wait_ready([n.name for n in spec.node_hosts])
        log(f"nodes: {', '.join(f'{n.name} {n.ip}' for n in spec.node_hosts)}")

    def _etcd_tls(self) -> pathlib.Path:
        """The lab etcd's own CA, a member certificate (for clients and peers) and a client certificate."""
        d = self.spec.root / "etcd-tls"
        if (d / "client.pem").exists():
            return d
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_pem, ca_key = pki.new_ca("shoal lab etcd CA", "shoal-lab")
        (d / "ca.pem").write_bytes(ca_pem)
        ips = tuple(h.ip for h in self.spec.etcd)
        for name in ("member", "client"):
            key = pki.new_key()
            cert = pki.issue(
                ca_pem,
                ca_key,
                pki.csr_pem(key),
                common_name=name,
                validity=datetime.timedelta(days=3650),
                dns_names=(ETCD_SERVER_NAME,),
                ip_addresses=ips,
            )
            (d / f"{name}.pem").write_bytes(cert)
            (d / f"{name}-key.pem").write_bytes(pki.key_pem(key))
            os.chmod(d / f"{name}-key.pem", 0o600)
        return d

    def _start_etcd(self) -> None:
        spec = self.spec
        t = self._etcd_tls()
        cluster = ",".join(f"{h.name}=https://{h.addr(ETCD_PEER_PORT)}" for h in spec.etcd)
        for h in spec.etcd:
            self.procs.spawn(
                h.name,
                [
                    *net.nsenter(h),
                    "etcd",
                    f"--name={h.name}",
                    f"--data-dir={spec.dir(h) / 'data'}",
                    f"--listen-client-urls=https://{h.addr(ETCD_CLIENT_PORT)}",
                    f"--advertise-client-urls=https://{h.addr(ETCD_CLIENT_PORT)}",
                    f"--listen-peer-urls=https://{h.addr(ETCD_PEER_PORT)}",
                    f"--initial-advertise-peer-urls=https://{h.addr(ETCD_PEER_PORT)}",
                    f"--initial-cluster={cluster}",
                    f"--initial-cluster-token={spec.prefix}",
                    "--initial-cluster-state=new",
                    f"--trusted-ca-file={t / 'ca.pem'}",
                    f"--cert-file={t / 'member.pem'}",
                    f"--key-file={t / 'member-key.pem'}",
                    "--client-cert-auth",
                    f"--peer-trusted-ca-file={t / 'ca.pem'}",
                    f"--peer-cert-file={t / 'member.pem'}",
                    f"--peer-key-file={t / 'member-key.pem'}",
                    "--peer-client-cert-auth",
                    "--auto-compaction-mode=periodic",
                    "--auto-compaction-retention=5m",
                    "--log-level=warn",
                ],
            )
        wait(self.etcd_healthy, 60, "the etcd members to form a cluster")

    def etcd_healthy(self) -> bool:
        """True when a member answers a linearizable read (a quorum exists)."""
        from shoal.controller.store.etcd import Etcd, EtcdTLS  # the lab uses the controller's own adapter

        t = self.spec.root / "etcd-tls"
        tls_ = EtcdTLS.from_files(str(t / "ca.pem"), str(t / "client.pem"), str(t / "client-key.pem"), ETCD_SERVER_NAME)

        async def probe() -> bool:
            async with Etcd(self.spec.etcd_urls, timeout=2.0, tls=tls_) as etcd:
                await etcd.get(b"/health-probe")
                return True

        return asyncio.run(probe())

    def _start_registry(self) -> None:
        spec = self.spec
        config = spec.root / "registry.yml"
        config.write_text(
            f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {spec.root / 'registry'}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: {spec.registry}\n"
        )
        self.procs.spawn("registry", ["docker-registry", "serve", str(config)])
        wait(
            lambda: urllib.request.urlopen(f"http://{spec.registry}/v2/", timeout=1).status == 200,  # noqa: S310
            30,
            f"the registry on {spec.registry}",
        )

    def controller_argv(self, h: Host) -> list[str]:
        spec = self.spec
        t = spec.root / "etcd-tls"
        return [
            *net.nsenter(h),
            _swarmd(),
            "controller",
            "--listen",
            h.addr(CONTROLLER_PORT),
            "--metrics-listen",
            h.addr(CONTROLLER_METRICS_PORT),
            "--etcd",
            ",".join(spec.etcd_urls),
            "--etcd-cacert",
            str(t / "ca.pem"),
            "--etcd-cert",
            str(t / "client.pem"),
            "--etcd-key",
            str(t / "client-key.pem"),
            "--etcd-server-name",
            ETCD_SERVER_NAME,
            "--data-key-file",
            str(spec.root / "data.key"),
            "--state-dir",
            str(spec.dir(h) / "state"),
            "--heartbeat-period",
            spec.heartbeat_period,
            "--docker-api-listen",
            f"tcp://{h.addr(DOCKER_API_PORT)}",
            "--docker-api-listen",
            f"unix://{spec.dir(h) / 'docker.sock'}",
            f"--insecure-registry={spec.registry}",  # to pin the lab's images to digests, as its dockerds pull them
        ]

    def _start_controllers(self) -> None:
        key = self.spec.root / "data.key"
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        for h in self.spec.controller_hosts:
            self.procs.spawn(h.name, self.controller_argv(h))
        wait(lambda: tls.Bundle.exists(self.admin_dir), 60, "the first controller's admin bundle")
        wait(self.control, 60, "a leader")

    def _start_dockerd(self, node: Host) -> None:
        spec = self.spec
        d = spec.dir(node)
        exec_root = pathlib.Path("/run") / node.netns  # short: containerd's socket path must fit 108 bytes
        self.procs.spawn(
            f"{node.name}-dockerd",
            [
                *net.nsenter(node),
                "dockerd",
                f"--data-root={d / 'docker'}",
                f"--exec-root={exec_root}",
                f"--pidfile={d / 'docker.pid'}",
                f"--host={spec.docker_host(node)}",
                f"--bip=172.30.{node.index}.1/24",
                f"--insecure-registry={spec.registry}",
                f"--cgroup-parent={node.netns}",
                "--log-level=warn",
            ],
        )

    def _push_image(self) -> None:
        spec, first = self.spec, self.spec.node_hosts[0]
        ctx = spec.root / "image"
        ctx.mkdir(exist_ok=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", ctx / "busybox")
        (ctx / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n'
        )
        self.docker(first, "build", "-q", "-t", spec.image, str(ctx))
        self.docker(first, "push", spec.image)

    @property
    def worker_token(self) -> str:
        if not self._token:
            self._token = self.control().GetJoinTokens(control_pb2.GetJoinTokensRequest(), timeout=5).worker
        return self._token

    def agent_argv(self, node: Host) -> list[str]:
        spec = self.spec
        return [
            *net.nsenter(node),
            _swarmd(),
            "agent",
            "--controller",
            ",".join(spec.controller_addrs),
            "--node-name",
            node.name,
            "--docker-host",
            spec.docker_host(node),
            "--listen",
            node.addr(AGENT_PORT),
            "--metrics-listen",
            node.addr(AGENT_METRICS_PORT),
            "--state-dir",
            str(spec.dir(node) / "agent"),
            "--join-token",
            self.worker_token,
        ]

    def start_agent(self, node: Host) -> None:
        self.procs.spawn(node.name, self.agent_argv(node))

    def wait_ready(self, names: list[str], timeout: float = 90) -> None:
        def ready() -> bool:
            nodes = self.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes
            return set(names) <= {n.name for n in nodes if n.status.state == types_pb2.NodeStatus.READY}

        wait(ready, timeout, f"nodes {', '.join(names)} to be READY")

    # ---- down ---------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop and remove everything the lab made; returns what it did, for the user."""
        spec = self.spec
        done = []
        names = self.procs.names()
        for node in spec.node_hosts:
            self.procs.stop(node.name)
        removed = 0
        for node in spec.node_hosts:
            if self.procs.running(f"{node.name}-dockerd"):
                ids = self.docker(node, "ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    self.docker(node, "rm", "-f", *ids, check=False, timeout=120)
                    removed += len(ids)
        for name in names:
            self.procs.stop(name)
        # What the record does not name (it was lost in a crash), the lab's directory in its command line does.
        for pid in referencing(spec.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        done.append(f"stopped {len(names)} processes, removed {removed} containers")
        self._unmount_all()
        net.teardown(spec)
        for node in spec.node_hosts:
            shutil.rmtree(pathlib.Path("/run") / node.netns, ignore_errors=True)
        if spec.root.exists():
            shutil.rmtree(spec.root)
        done.append(f"removed the network ({spec.bridge}, namespaces {spec.prefix}-*), and {spec.root}")
        return done

    def _unmount_all(self) -> None:
        """Unmount what dockerd and the agents left mounted under the lab (overlays, netns files, tmpfs)."""
        roots = [str(self.spec.root), *(f"/run/{n.netns}" for n in self.spec.node_hosts)]
        mounts = pathlib.Path("/proc/mounts").read_text().splitlines()
        targets = [line.split()[1] for line in mounts if any(line.split()[1].startswith(r) for r in roots)]
        for target in sorted(targets, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)

    # ---- faults (the fault suite) ------------------------------------------

    def cut(self, host: str) -> None:
        net.cut(self.spec.host(host))

    def heal(self, host: str) -> None:
        net.heal(self.spec.host(host))
