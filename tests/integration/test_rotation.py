"""Certificates renew by themselves, under load, without dropping a session or touching a container."""

from __future__ import annotations

import pathlib
import threading

from shoal import pki, tls
from shoal.v1 import types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def serial(path: pathlib.Path) -> int:
    return pki.load_cert(tls.Bundle.load(path).cert_pem).serial_number


def test_certificates_rotate_under_load_without_dropping_a_session(
    tmp_path: pathlib.Path, etcd_url: str, image: str
) -> None:
    cluster = Cluster(tmp_path, etcd_url)
    try:
        # One-minute certificates: each renews between 30 and 48 seconds after it was issued.
        cluster.start_controller("--cert-validity", "1m")
        for name in ("n1", "n2", "n3"):
            cluster.start_agent(name)
        cluster.wait_ready("n1", "n2", "n3")
        service_id = create(cluster, "steady", image, "--replicas", "6", *SLEEP)
        wait_until(lambda: converged(cluster, service_id, 6, "steady"), 90, "6 replicas")
        containers = sorted(c["id"] for c in cluster.running_containers("steady"))
        first = {name: serial(tmp_path / name / "tls") for name in ("n1", "n2", "n3")}

        not_ready: list[str] = []
        stop = threading.Event()

        def sample() -> None:
            # Load while rotating: the API is busy, and every node must stay READY.
            while not stop.is_set():
                for node in cluster.control.nodes():
                    if node.status.state != types_pb2.NodeStatus.READY:
                        not_ready.append(node.name)
                cluster.ctl("service", "ps", "steady", check=True)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            wait_until(
                lambda: all(serial(tmp_path / n / "tls") != first[n] for n in first), 90, "every node to renew"
            )
        finally:
            stop.set()
            sampler.join()
        assert not not_ready
        log = cluster.controller.log() if cluster.controller else ""
        for name in first:
            # One registration each: the sessions lived through the renewals.
            assert log.count(f"node {name} registered") == 1, name
            assert "renewed the node certificate" in cluster.agents[name].log()
        assert sorted(c["id"] for c in cluster.running_containers("steady")) == containers

        # The renewed certificate is a good one: a restarted agent connects with it.
        cluster.agents["n1"].kill()
        cluster.agents["n1"].start()
        cluster.wait_ready("n1")
        wait_until(lambda: cluster.agent_tasks("n1") == 2, 30, "n1 to adopt its tasks")
        assert sorted(c["id"] for c in cluster.running_containers("steady")) == containers
    finally:
        cluster.close()
