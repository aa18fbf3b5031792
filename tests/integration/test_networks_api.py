"""The network API on a real controller and etcd: create, list, inspect, remove, and every refusal with its code
and nothing written. The harness's agents share this machine's network (no data path), so a task that joins a
network waits for a node, and says why."""

from __future__ import annotations

import grpc
import pytest

from shoal.v1 import control_pb2, objects_pb2, types_pb2
from tests.integration.harness import Cluster, etcd_dump, wait_until
from tests.integration.test_bad_input import one_line_error


def test_networks_are_created_listed_inspected_and_removed(cluster: Cluster, image: str) -> None:
    net_id = cluster.ctl("network", "create", "front", "--label", "tier=web", check=True).stdout.strip()
    second = cluster.ctl("network", "create", "back", "--subnet", "10.20.0.0/24", "--internal", check=True)
    listing = cluster.ctl("network", "ls", check=True).stdout
    assert "front" in listing and "10.0.0.0/24" in listing and "10.20.0.0/24" in listing and "internal" in listing
    shown = cluster.ctl("network", "inspect", "front", check=True).stdout
    assert net_id in shown and "tier=tier" not in shown and "VNI:" in shown
    service = cluster.ctl(
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--image",
        image,
        "--network",
        "front,alias=www",
        "--",
        "sleep",
        "1000",
        check=True,
    ).stdout.strip()

    def pending_reason() -> str:
        tasks = cluster.control.stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[service]), timeout=5).tasks
        return tasks[0].status.err if tasks and tasks[0].status.state == types_pb2.PENDING else ""

    reason = wait_until(pending_reason, 30, "the task's reason for waiting")
    assert "3 nodes without an overlay data path" in reason
    inspected = cluster.ctl("service", "inspect", "web", check=True).stdout
    assert "front (aliases: www)" in inspected and "front: 10.0.0." in inspected
    task = cluster.ctl("task", "ls", "--service", "web", "-q", check=True).stdout.split()[0]
    assert "front: 10.0.0." in cluster.ctl("task", "inspect", task, check=True).stdout

    rm = cluster.ctl("network", "rm", "front")
    assert "in use by service(s) web" in one_line_error(rm)
    cluster.ctl("service", "rm", "web", check=True)
    cluster.ctl("network", "rm", "front", "back", check=True)
    assert "front" not in cluster.ctl("network", "ls", check=True).stdout
    assert second.returncode == 0


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["network", "create", "Bad_Name"], "invalid"),
        (["network", "create", "ingress"], "reserved"),
        (["network", "create", "n", "--subnet", "10.0.0.1/24"], "host bits"),
        (["network", "create", "n", "--subnet", "10.40.0.0/30"], "between /8 and /29"),
        (["network", "create", "n", "--subnet", "10.30.0.0/24", "--gateway", "10.31.0.1"], "not a host address"),
        (["network", "create", "n", "--driver", "bridge"], "unknown driver"),
        (["network", "rm", "nope"], "not found"),
        (["service", "create", "--name", "s", "--image", "i", "--network", "nope"], "not found"),
        (["service", "create", "--name", "s", "--image", "i", "--network", "ingress"], "publishing a port"),
        (["service", "create", "--name", "s", "--image", "i", "--endpoint-mode", "dnsrr", "-p", "80:80"], "vip"),
        (["service", "create", "--name", "s", "--image", "i", "--dns", "nameserver"], "not an IP"),
        (["service", "create", "--name", "s", "--image", "i", "-p", "a:b"], "PUBLISHED"),
    ],
)
def test_bad_network_input_is_refused_and_writes_nothing(cluster: Cluster, args: list[str], phrase: str) -> None:
    before = etcd_dump(cluster)
    line = one_line_error(cluster.ctl(*args))
    assert phrase.lower() in line.lower()
    assert etcd_dump(cluster) == before


def test_api_codes_for_networks_and_mesh_ports(cluster: Cluster, image: str) -> None:
    control = cluster.control.stub

    def code(call, request) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=5)
        return info.value.code()

    control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=objects_pb2.NetworkSpec(name="taken")), timeout=5)
    spec = types_pb2.ServiceSpec(name="web")
    spec.task.container.image = image
    spec.endpoint.ports.add(published=8080, target=80)
    control.CreateService(control_pb2.CreateServiceRequest(spec=spec), timeout=5)
    assert "ingress" in cluster.ctl("network", "ls", check=True).stdout
    before = etcd_dump(cluster)
    other = types_pb2.ServiceSpec()
    other.CopyFrom(spec)
    other.name = "other"
    overlap = objects_pb2.NetworkSpec(name="overlap", subnet="10.0.0.0/16")
    cases = [
        (
            control.CreateNetwork,
            control_pb2.CreateNetworkRequest(spec=objects_pb2.NetworkSpec(name="taken")),
            grpc.StatusCode.ALREADY_EXISTS,
        ),
        (control.CreateNetwork, control_pb2.CreateNetworkRequest(spec=overlap), grpc.StatusCode.INVALID_ARGUMENT),
        (control.CreateService, control_pb2.CreateServiceRequest(spec=other), grpc.StatusCode.ALREADY_EXISTS),
        (control.RemoveNetwork, control_pb2.GetNetworkRequest(ref="ingress"), grpc.StatusCode.FAILED_PRECONDITION),
        (control.GetNetwork, control_pb2.GetNetworkRequest(ref="nope"), grpc.StatusCode.NOT_FOUND),
    ]
    for call, request, want in cases:
        assert code(call, request) == want, request
    assert etcd_dump(cluster) == before
