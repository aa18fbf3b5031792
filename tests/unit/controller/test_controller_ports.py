"""Host-mode published ports: one task per host port per node, and the reason when none is free."""

from __future__ import annotations

from shoal import states
from shoal.controller.scheduler.filters import Pipeline
from shoal.controller.scheduler.nodeinfo import NodeInfo
from shoal.v1 import objects_pb2, types_pb2


def node(name: str) -> objects_pb2.Node:
    n = objects_pb2.Node(id=name, name=name)
    n.status.state = types_pb2.NodeStatus.READY
    return n


def spec(*ports: tuple[int, int]) -> types_pb2.TaskSpec:
    s = types_pb2.TaskSpec()
    s.container.image = "x"
    for published, target in ports:
        s.container.ports.add(published=published, target=target)
    return s


def running(on: str, task_spec: types_pb2.TaskSpec) -> objects_pb2.Task:
    t = objects_pb2.Task(id=f"t-{on}", service_id="s", node_id=on, spec=task_spec, desired_state=states.RUNNING)
    t.status.state = states.RUNNING
    return t


def test_a_node_whose_host_port_is_taken_is_refused_with_the_reason() -> None:
    busy, free = NodeInfo(node("a")), NodeInfo(node("b"))
    busy.add(running("a", spec((8080, 80))))
    pipeline = Pipeline(spec((8080, 8080)))
    assert [n.node.name for n in pipeline.eligible([busy, free])] == ["b"]
    assert "1 node host port 8080/tcp already in use" in pipeline.explain(2)


def test_the_port_is_free_again_once_the_task_has_finished() -> None:
    info = NodeInfo(node("a"))
    task = running("a", spec((9000, 9000)))
    info.add(task)
    assert (9000, "tcp") in info.ports
    info.remove(task)
    assert not info.ports
    assert Pipeline(spec((9000, 9000))).eligible([info])


def test_other_ports_and_protocols_do_not_conflict() -> None:
    info = NodeInfo(node("a"))
    info.add(running("a", spec((8080, 80))))
    udp = spec()
    udp.container.ports.add(published=8080, target=8080, protocol="udp")
    assert Pipeline(udp).eligible([info])
    assert Pipeline(spec((8081, 80))).eligible([info])
