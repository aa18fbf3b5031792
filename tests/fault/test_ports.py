"""Host-mode published ports on a lab of real hosts: reachable from the other hosts, one task per host port per node."""

from __future__ import annotations

import subprocess

from shoal.v1 import types_pb2
from tests.fault.faultlab import FaultLab
from tests.integration.harness import wait_until


def test_published_ports_are_reachable_from_other_hosts(flab: FaultLab) -> None:
    service_id = flab.ctl(
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--image",
        flab.spec.image,
        "--replicas",
        "4",
        "--publish",
        "published=8080,target=8080,mode=host",
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/bin",
    ).stdout.strip()
    wait_until(lambda: len(flab.running_tasks(service_id)) == 3, 120, "one task on each of the 3 nodes")
    assert flab.nodes_of(service_id) == {"lab-1", "lab-2", "lab-3"}
    # The fourth cannot have a node: the port is taken on every one, and it says so.
    pending = wait_until(
        lambda: [t for t in flab.tasks(service_id) if t.status.state == types_pb2.PENDING and t.status.err],
        30,
        "the fourth task's reason",
    )
    assert "3 nodes host port 8080/tcp already in use" in pending[0].status.err
    for target in flab.spec.node_hosts:
        for source in flab.spec.node_hosts:
            if source is target:
                continue
            code = subprocess.run(
                [
                    "nsenter",
                    f"--net=/run/netns/{source.netns}",
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "5",
                    f"http://{target.ip}:8080/busybox",
                ],
                capture_output=True,
                text=True,
            ).stdout
            assert code == "200", f"{source.name} -> {target.name}:8080 answered {code!r}"
