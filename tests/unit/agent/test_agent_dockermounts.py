"""The Engine's Mount objects for a task's mounts, merged with the secrets' in the create body."""

from __future__ import annotations

from shoal.agent.executor import docker, dockermounts
from shoal.agent.registryauth import AuthStore
from shoal.v1 import dispatcher_pb2, objects_pb2, types_pb2

Mount = types_pb2.Mount


def task_with(*mounts: types_pb2.Mount) -> objects_pb2.Task:
    task = objects_pb2.Task(id="t1", service_id="s1", service_name="web", slot=1, node_id="n1")
    task.spec.container.image = "r/app:1"
    task.spec.container.mounts.extend(mounts)
    return task


def test_each_type_maps_to_the_engine_api() -> None:
    task = task_with(
        Mount(source="data", target="/data", readonly=True,
              volume=types_pb2.VolumeOptions(nocopy=True, labels={"a": "b"}, driver="local", driver_opts={"o": "x"})),
        Mount(target="/anon"),
        Mount(type=Mount.BIND, source="/srv", target="/srv", bind=types_pb2.BindOptions(propagation="rshared")),
        Mount(type=Mount.TMPFS, target="/t", tmpfs=types_pb2.TmpfsOptions(size_bytes=1024, mode=0o700)),
    )
    named, anonymous, bind, tmpfs = docker.container_config(task, 10)["HostConfig"]["Mounts"]
    assert named == {
        "Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True,
        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b", "shoal.node.id": "n1"},
                          "DriverConfig": {"Name": "local", "Options": {"o": "x"}}},
    }
    assert "Source" not in anonymous and anonymous["VolumeOptions"]["Labels"] == {"shoal.node.id": "n1"}
    assert bind == {"Type": "bind", "Source": "/srv", "Target": "/srv", "ReadOnly": False,
                    "BindOptions": {"Propagation": "rshared"}}
    assert tmpfs == {"Type": "tmpfs", "Target": "/t", "ReadOnly": False,
                     "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}}
    assert "Mounts" not in docker.container_config(task_with(), 10)["HostConfig"]


def test_volume_labels_keep_shoals_own() -> None:
    assert dockermounts.volume_labels({"shoal.node.id": "forged", "x": "y"}, "n1") == {"shoal.node.id": "n1", "x": "y"}


def test_the_auth_store_holds_only_what_is_assigned() -> None:
    store = AuthStore()
    update = dispatcher_pb2.AssignmentChange(
        registry_auth=dispatcher_pb2.AssignedRegistryAuth(id="c1", auth=types_pb2.RegistryAuth(username="u"))
    )
    secret = dispatcher_pb2.AssignmentChange(secret=dispatcher_pb2.AssignedFile(id="s1", data=b"x"))
    store.replace([update, secret])
    assert store.get("c1").username == "u" and store.get("s1") is None
    store.apply([dispatcher_pb2.AssignmentChange(action=dispatcher_pb2.AssignmentChange.REMOVE,
                                                 registry_auth=dispatcher_pb2.AssignedRegistryAuth(id="c1"))])
    assert store.get("c1") is None
