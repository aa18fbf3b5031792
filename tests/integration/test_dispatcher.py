"""The dispatcher's rules, spoken to directly over gRPC as a (misbehaving) agent would, with real certificates."""

from __future__ import annotations

import grpc
import pytest

from shoal.v1 import dispatcher_pb2, dispatcher_pb2_grpc, types_pb2
from tests.integration import harness
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


def test_node_cannot_report_on_another_nodes_task(cluster: Cluster, image: str) -> None:
    service_id = create(cluster, "guarded", image, "--replicas", "3", *SLEEP)
    wait_until(lambda: converged(cluster, service_id, 3, "guarded"), 90, "3 replicas")
    victim = cluster.control.running(service_id)[0]

    intruder = harness.join_node(cluster, "intruder")
    with harness.sync_channel(cluster.controller_addr, intruder) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        session = stub.Session(dispatcher_pb2.SessionRequest(node_name="intruder", addr="127.0.0.1:1"), timeout=30)
        first = next(session)
        # The node ID is the certificate's CN, whatever the request says.
        assert first.session_id and first.node.id == intruder.identity.id

        bogus = dispatcher_pb2.UpdateTaskStatusRequest(
            session_id=first.session_id,
            updates=[
                dispatcher_pb2.TaskStatusUpdate(task_id=victim.id, status=types_pb2.TaskStatus(state=types_pb2.FAILED))
            ],
        )
        beat = dispatcher_pb2.HeartbeatRequest(session_id=first.session_id)
        stale = dispatcher_pb2.HeartbeatRequest(session_id="wrong")
        nothing = dispatcher_pb2.UpdateTaskStatusRequest(session_id=first.session_id)
        reports = stub.Report(
            iter(
                [
                    dispatcher_pb2.ReportRequest(statuses=bogus),
                    dispatcher_pb2.ReportRequest(heartbeat=beat),
                    dispatcher_pb2.ReportRequest(statuses=nothing),
                    dispatcher_pb2.ReportRequest(heartbeat=stale),
                ]
            ),
            timeout=10,
        )
        # The report is refused and the stream goes on: the next heartbeat is answered.
        refused = next(reports)
        assert "not assigned to this node" in refused.refused
        assert not refused.HasField("statuses")
        assert next(reports).HasField("heartbeat")
        # A report the controller takes counts as a heartbeat: its answer says when the next is due.
        taken = next(reports)
        assert taken.statuses.heartbeat_period.seconds + taken.statuses.heartbeat_period.nanos > 0
        # A session ID that is not the caller's ends the stream.
        with pytest.raises(grpc.RpcError) as err:
            next(reports)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        # Bytes that are not a report end the stream as the caller's error, not an INTERNAL one.
        raw = channel.stream_stream("/shoal.v1.Dispatcher/Report", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as err:
            next(raw(iter([b"\xff\xff\xff"]), timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        session.cancel()

    after = {t.id: t for t in cluster.control.tasks(service_id)}[victim.id]
    assert after.meta.version == victim.meta.version
    assert after.status.state == types_pb2.RUNNING


def test_node_names_are_unique_at_join(cluster: Cluster) -> None:
    with pytest.raises(grpc.RpcError) as err:
        harness.join_node(cluster, "n1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
