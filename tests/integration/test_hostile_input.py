"""The control API under random and malformed input (hypothesis).

Whatever a client sends, the answer is never INTERNAL, and a request that
is refused leaves etcd byte-for-byte as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal import units
from shoal.v1 import control_pb2, types_pb2
from tests.integration import harness
from tests.integration.harness import Cluster, wait_until

names = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True),
    st.text(max_size=80),
    st.just("x" * 64),
)
label_maps = st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=4)
constraints = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda k, op, v: f"{k}{op}{v}",
        st.sampled_from(["node.hostname", "node.labels.zone", "node.id", "node.color", ""]),
        st.sampled_from(["==", "!=", "=", "<"]),
        st.text(max_size=10),
    ),
)


@st.composite
def service_specs(draw: st.DrawFn) -> types_pb2.ServiceSpec:
    spec = types_pb2.ServiceSpec(name=draw(names))
    spec.labels.update(draw(label_maps))
    c = spec.task.container
    c.image = draw(st.one_of(st.just("busybox:1"), st.text(max_size=30)))
    c.env.extend(draw(st.lists(st.text(max_size=20), max_size=4)))
    c.command.extend(draw(st.lists(st.text(max_size=10), max_size=3)))
    c.labels.update(draw(label_maps))
    spec.task.placement.constraints.extend(draw(st.lists(constraints, max_size=3)))
    if draw(st.booleans()):
        spec.task.restart.delay.CopyFrom(
            units.to_duration(0)
            if draw(st.booleans())
            else types_pb2.google_dot_protobuf_dot_duration__pb2.Duration(seconds=draw(st.integers(-10, 10)))
        )
    spec.task.resources.reservations.nano_cpus = draw(st.integers(-(2**40), 2**40))
    spec.task.resources.reservations.memory_bytes = draw(st.integers(-(2**40), 2**40))
    if draw(st.booleans()):
        getattr(spec, "global").SetInParent()
    else:
        spec.replicated.replicas = draw(st.one_of(st.integers(-3, 2), st.integers(-(2**63), 2**63 - 1)))
    spec.update.parallelism = draw(st.integers(0, 3))
    spec.update.max_failure_ratio = draw(st.floats(allow_nan=True, allow_infinity=True, width=32))
    return spec


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, etcd_url: str) -> Iterator[Cluster]:
    """A controller with no agents, so nothing but our requests changes etcd."""
    cluster = Cluster(tmp_path_factory.mktemp("hostile"), etcd_url)
    try:
        cluster.start_controller()
        yield cluster
    finally:
        cluster.close()


def _settle(cluster: Cluster, baseline: dict[bytes, bytes]) -> None:
    wait_until(lambda: harness.etcd_dump(cluster) == baseline, 30, "etcd back to its state before the request")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=service_specs())
def test_random_specs_never_internal_and_refusals_write_nothing(bare: Cluster, spec: types_pb2.ServiceSpec) -> None:
    stub = bare.control.stub
    before = harness.etcd_dump(bare)
    try:
        # no_resolve_image: the random images name Docker Hub, which is not to be asked.
        request = control_pb2.CreateServiceRequest(spec=spec, no_resolve_image=True)
        created = stub.CreateService(request, timeout=10).service
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.INTERNAL, exc.details()
        assert harness.etcd_dump(bare) == before, f"refused ({exc.code().name}) but etcd changed"
        return
    # Accepted: an update with the same random spec (name kept) must behave too, then clean up.
    try:
        stub.UpdateService(
            control_pb2.UpdateServiceRequest(
                ref=created.id, version=created.meta.version, spec=spec, no_resolve_image=True
            ),
            timeout=10,
        )
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.INTERNAL, exc.details()
    stub.RemoveService(control_pb2.RemoveServiceRequest(ref=created.id), timeout=10)
    _settle(bare, before)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(
        [
            "CreateService",
            "UpdateService",
            "UpdateNode",
            "RemoveNode",
            "GetTask",
            "CreateSecret",
            "RemoveService",
            "RotateJoinToken",
        ]
    ),
    body=st.binary(max_size=300),
)
def test_malformed_bytes_never_internal(bare: Cluster, method: str, body: bytes) -> None:
    before = harness.etcd_dump(bare)
    channel = bare.control._channel
    assert channel is not None
    call = channel.unary_unary(f"/shoal.v1.Control/{method}", request_serializer=None, response_deserializer=None)
    try:
        call(body, timeout=10)
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.INTERNAL, f"{method}: {exc.details()}"
        if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
            assert harness.etcd_dump(bare) == before
        return
    # Some random bytes are valid (empty) messages: a harmless create or rotation may then have happened.


def test_oversized_requests_are_refused(bare: Cluster) -> None:
    spec = types_pb2.ServiceSpec(name="huge")
    spec.task.container.image = "busybox:1"
    spec.task.container.env.extend(["X=" + "y" * 1000] * 5000)  # ~5 MB: over the server's message limit
    before = harness.etcd_dump(bare)
    with pytest.raises(grpc.RpcError) as err:
        bare.control.stub.CreateService(control_pb2.CreateServiceRequest(spec=spec, no_resolve_image=True), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    spec.task.container.ClearField("env")
    spec.task.container.env.extend(["X=1"] * 2000)  # under the message limit, over the spec bound
    with pytest.raises(grpc.RpcError) as err:
        bare.control.stub.CreateService(control_pb2.CreateServiceRequest(spec=spec, no_resolve_image=True), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert harness.etcd_dump(bare) == before
