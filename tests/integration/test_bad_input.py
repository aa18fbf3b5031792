"""Bad input: one clear line on stderr, a non-zero exit, the right status code, nothing written."""

from __future__ import annotations

import grpc
import pytest

from shoal.v1 import control_pb2, types_pb2
from tests.integration.harness import Cluster, free_port


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--name", "Bad_Name"], "invalid"),
        (["--name", "x" * 64], "invalid"),
        (["--name", "-web"], "invalid"),
        (["--name", "neg", "--replicas", "-1"], "replicas"),
        (["--name", "nocolon", "--env", "NOEQUALS"], ""),
        (["--name", "badcons", "--constraint", "node.color=red"], "constraint"),
        (["--name", "badkey", "--constraint", "node.colour==red"], "unknown key"),
        (["--name", "flag", "--bogus-flag"], "bogus"),
        (["--name", "badmem", "--reserve-memory", "lots"], "size"),
    ],
)
def test_service_create_refuses_bad_input(cluster: Cluster, image: str, args: list[str], phrase: str) -> None:
    before = cluster.ctl("--format", "json", "service", "ls", check=True).stdout
    result = cluster.ctl("service", "create", "--image", image, *args)
    line = one_line_error(result)
    assert phrase.lower() in line.lower()
    assert cluster.ctl("--format", "json", "service", "ls", check=True).stdout == before


def test_duplicate_name_unknown_object_and_unreachable(cluster: Cluster, image: str) -> None:
    cluster.ctl("service", "create", "--name", "dup", "--image", image, "--", "sleep", "1000", check=True)
    assert "already exists" in one_line_error(cluster.ctl("service", "create", "--name", "dup", "--image", image))
    assert "not found" in one_line_error(cluster.ctl("service", "inspect", "nosuchservice"))
    assert "not found" in one_line_error(cluster.ctl("node", "inspect", "nosuchnode"))
    assert "not found" in one_line_error(cluster.ctl("task", "inspect", "nosuchtask"))
    assert "not found" in one_line_error(cluster.ctl("service", "rm", "nosuchservice"))
    assert "not found" in one_line_error(cluster.ctl("service", "scale", "nosuchservice=3"))

    dead = f"127.0.0.1:{free_port()}"
    import subprocess

    from tests.integration.harness import BIN

    result = subprocess.run(
        [str(BIN / "swarmctl"), "-H", dead, "--tls-dir", str(cluster.admin_tls), "service", "ls"],
        capture_output=True,
        text=True,
    )
    assert "cannot reach" in one_line_error(result)


def test_api_status_codes(cluster: Cluster, image: str) -> None:
    stub = cluster.control.stub

    def code(call, request) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=5)
        return err.value.code()

    spec = types_pb2.ServiceSpec(name="ok")
    spec.task.container.image = image
    spec.replicated.replicas = -3
    assert code(stub.CreateService, control_pb2.CreateServiceRequest(spec=spec)) == grpc.StatusCode.INVALID_ARGUMENT
    spec.replicated.replicas = 1
    spec.name = "Not A Name"
    assert code(stub.CreateService, control_pb2.CreateServiceRequest(spec=spec)) == grpc.StatusCode.INVALID_ARGUMENT
    spec.name = "ok"
    spec.task.container.image = ""
    assert code(stub.CreateService, control_pb2.CreateServiceRequest(spec=spec)) == grpc.StatusCode.INVALID_ARGUMENT
    spec.task.container.image = image
    created = stub.CreateService(control_pb2.CreateServiceRequest(spec=spec, request_id="r1"), timeout=5).service
    # A retried create (same request ID) returns the first service instead of making a second.
    again = stub.CreateService(control_pb2.CreateServiceRequest(spec=spec, request_id="r1"), timeout=5).service
    assert again.id == created.id
    assert code(stub.CreateService, control_pb2.CreateServiceRequest(spec=spec, request_id="r2")) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    assert code(stub.GetService, control_pb2.GetServiceRequest(ref="nope")) == grpc.StatusCode.NOT_FOUND
    stale = control_pb2.UpdateServiceRequest(ref="ok", version=created.meta.version - 1, spec=spec)
    assert code(stub.UpdateService, stale) == grpc.StatusCode.ABORTED
    services = stub.ListServices(control_pb2.ListServicesRequest(), timeout=5).services
    assert [s.spec.name for s in services] == ["ok"]
