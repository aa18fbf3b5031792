"""The fault suite's lab: 3 etcd members, 3 controllers, 3 nodes, each a network namespace with its own
processes (the same `shoal.lab` code `swarmd lab up` runs), and a sampler that watches every host's
containers and the API while a fault happens, so that invariants are checked all along, not only at
the end.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from shoal.lab import Lab, LabSpec
from shoal.v1 import control_pb2, types_pb2
from tests.integration.harness import BIN, wait_until

#: After a fault ends, the cluster must converge within this long with no new load (the liveness bound).
CONVERGE_WITHIN = 60.0


@dataclasses.dataclass
class Sample:
    at: float
    #: Running containers of the service, by node name: container ID -> task ID.
    containers: dict[str, dict[str, str]]
    #: Node states, by name (None when the API did not answer).
    nodes: dict[str, int] | None


class FaultLab:
    """A lab for one fault scenario, with the helpers the scenarios share."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.spec = lab.spec

    # ---- API and CLI -----------------------------------------------------------

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(BIN / "swarmctl"),
                "-H",
                ",".join(self.spec.controller_addrs),
                "--tls-dir",
                str(self.lab.admin_dir),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"swarmctl {' '.join(args)}: {result.stderr}")
        return result

    def create(self, name: str, replicas: int, *args: str, command: tuple[str, ...] = ("sleep", "100000")) -> str:
        """A service of the lab's image (`args`: more `service create` flags); its ID."""
        return self.ctl(
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--image",
            self.spec.image,
            "--replicas",
            str(replicas),
            "--stop-grace-period",
            "1s",
            *args,
            "--",
            *command,
        ).stdout.strip()

    def tasks(self, service_id: str) -> list[Any]:
        return list(
            self.lab.control().ListTasks(control_pb2.ListTasksRequest(service_ids=[service_id]), timeout=5).tasks
        )

    def running_tasks(self, service_id: str) -> list[Any]:
        return [
            t
            for t in self.tasks(service_id)
            if t.status.state == types_pb2.RUNNING and t.desired_state == types_pb2.RUNNING
        ]

    def nodes_of(self, service_id: str) -> set[str]:
        """Names of the nodes its RUNNING tasks run on."""
        nodes = self.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes
        names = {n.id: n.name for n in nodes}
        return {names.get(t.node_id, t.node_id) for t in self.running_tasks(service_id)}

    def node_states(self) -> dict[str, int]:
        nodes = self.lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes
        return {n.name: n.status.state for n in nodes}

    def leader(self) -> str:
        """The name of the controller host that leads now."""
        info = self.lab.control().GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=3)
        addr = next(c.addr for c in info.controllers if c.leader)
        return next(h.name for h in self.spec.controller_hosts if h.addr(4240) == addr)

    # ---- hosts ------------------------------------------------------------------

    def containers(self, service: str, *, running: bool = True) -> dict[str, dict[str, str]]:
        """Containers of `service` on every node host: node -> {container ID: task ID}."""
        out: dict[str, dict[str, str]] = {}
        for node in self.spec.node_hosts:
            args = ["ps", "--no-trunc", "--filter", f"label=shoal.service.name={service}", "--format", "{{json .}}"]
            if not running:
                args.insert(1, "-a")
            result = self.lab.docker(node, *args, check=False, timeout=10)
            found = {}
            for line in result.stdout.splitlines():
                doc = json.loads(line)
                labels = dict(kv.split("=", 1) for kv in doc.get("Labels", "").split(",") if "=" in kv)
                found[doc["ID"]] = labels.get("shoal.task.id", "")
            out[node.name] = found
        return out

    def running_ids(self, service: str) -> set[str]:
        return {cid for per in self.containers(service).values() for cid in per}

    def converged(self, service_id: str, service: str, replicas: int) -> bool:
        """Exactly `replicas` tasks RUNNING, and exactly that many containers running across all hosts."""
        return len(self.running_tasks(service_id)) == replicas and len(self.running_ids(service)) == replicas

    def wait_converged(self, service_id: str, service: str, replicas: int, timeout: float = CONVERGE_WITHIN) -> float:
        start = time.monotonic()
        wait_until(
            lambda: self.converged(service_id, service, replicas),
            timeout,
            f"{service} to converge on {replicas} running containers",
        )
        return time.monotonic() - start

    def etcd_get(self, key: bytes) -> bytes | None:
        """One raw value from the lab's etcd (to see what was written when the API cannot be asked)."""
        import asyncio

        from shoal.controller.store.etcd import Etcd, EtcdTLS
        from shoal.lab.spec import ETCD_SERVER_NAME

        t = self.spec.root / "etcd-tls"
        etcd_tls = EtcdTLS.from_files(
            str(t / "ca.pem"), str(t / "client.pem"), str(t / "client-key.pem"), ETCD_SERVER_NAME
        )

        async def get() -> bytes | None:
            async with Etcd(self.spec.etcd_urls, timeout=3.0, tls=etcd_tls) as etcd:
                kv = await etcd.get(key)
                return kv.value if kv else None

        return asyncio.run(get())

    def process(self, name: str) -> dict[str, Any]:
        return self.lab.procs.load()["processes"][name]

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.process(name)["pid"], sig)


class Sampler:
    """Samples containers and node states in a thread until stopped; the scenario asserts on the samples."""

    def __init__(self, flab: FaultLab, service: str) -> None:
        self.flab = flab
        self.service = service
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                nodes: dict[str, int] | None = self.flab.node_states()
            except (grpc.RpcError, Exception):  # noqa: BLE001 - an unreachable API is a sample too
                nodes = None
            self.samples.append(Sample(time.monotonic(), self.flab.containers(self.service), nodes))
            self._stop.wait(0.2)

    def containers_seen(self) -> set[str]:
        return {cid for s in self.samples for per in s.containers.values() for cid in per}

    def max_running(self, nodes: Callable[[str], bool] = lambda _n: True) -> int:
        return max((sum(len(c) for n, c in s.containers.items() if nodes(n)) for s in self.samples), default=0)

    def states_seen(self) -> dict[str, set[int]]:
        seen: dict[str, set[int]] = collections.defaultdict(set)
        for s in self.samples:
            for name, state in (s.nodes or {}).items():
                seen[name].add(state)
        return seen


def make_lab(root: Any, *, etcd_members: int = 3) -> Lab:
    spec = LabSpec(
        root,
        nodes=3,
        controllers=3,
        etcd_members=etcd_members,
        prefix="sft",
        subnet="10.79.0.0/24",
        heartbeat_period="1s",
    )
    return Lab(spec)
