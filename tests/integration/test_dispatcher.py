"""The dispatcher's rules, spoken to directly over gRPC as a (misbehaving) agent would."""

from __future__ import annotations

import grpc
import pytest

from shoal import ids
from shoal.identity import NODE_ID_METADATA_KEY
from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, types_pb2
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def test_node_cannot_report_on_another_nodes_task(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "guarded", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "guarded"), 90, "3 replicas")
    victim = cluster.control.running(service_id)[0]

    intruder = ids.new_id()
    metadata = ((NODE_ID_METADATA_KEY, intruder),)
    with grpc.insecure_channel(cluster.controller_addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        request = dispatcher_pb2.SessionRequest(node_name="intruder", addr="127.0.0.1:1")
        session = stub.Session(request, metadata=metadata, timeout=30)
        first = next(session)
        assert first.session_id and first.node.id == intruder

        bogus = dispatcher_pb2.UpdateTaskStatusRequest(
            session_id=first.session_id,
            updates=[
                dispatcher_pb2.TaskStatusUpdate(task_id=victim.id, status=types_pb2.TaskStatus(state=types_pb2.FAILED))
            ],
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.UpdateTaskStatus(bogus, metadata=metadata, timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # A session ID that is not the caller's is refused too.
        with pytest.raises(grpc.RpcError) as err:
            stub.Heartbeat(dispatcher_pb2.HeartbeatRequest(session_id="wrong"), metadata=metadata, timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # No identity at all: refused.
        with pytest.raises(grpc.RpcError) as err:
            stub.Heartbeat(dispatcher_pb2.HeartbeatRequest(session_id=first.session_id), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        session.cancel()

    after = {t.id: t for t in cluster.control.tasks(service_id)}[victim.id]
    assert after.meta.version == victim.meta.version
    assert after.status.state == types_pb2.RUNNING


def test_node_name_must_be_unique(cluster: Cluster) -> None:
    metadata = ((NODE_ID_METADATA_KEY, ids.new_id()),)
    with grpc.insecure_channel(cluster.controller_addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            next(stub.Session(dispatcher_pb2.SessionRequest(node_name="n1"), metadata=metadata, timeout=10))
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
