"""Registry credentials of service specs: sealed objects, named by ID, kept only while a spec names them."""

from __future__ import annotations

import asyncio
import os
import types

import pytest
from controller_fakes import make_service, make_task

from shoal import errors, states
from shoal.controller import imageresolve, registryauth
from shoal.controller.dispatcher import assignments
from shoal.controller.secrets import Sealer
from shoal.controller.settings import DispatcherSettings, RegistrySettings
from shoal.controller.store import writer as w
from shoal.v1 import dispatcher_pb2, objects_pb2, types_pb2

SEALER = Sealer(os.urandom(32))
AUTH = types_pb2.RegistryAuth(username="alice", password="s3cret-pw")


def stored(cache: types.SimpleNamespace, ops: list[w.Op]) -> None:
    """Apply the plan to the fake cache, as the writer and watch would."""
    for op in ops:
        if isinstance(op, w.Put):
            op.obj.meta.version = 1  # type: ignore[attr-defined]
            cache.registry_credentials[op.obj.id] = op.obj  # type: ignore[attr-defined]
        elif isinstance(op, w.Delete):
            del cache.registry_credentials[op.obj_id]


def test_create_update_and_remove() -> None:
    cache = types.SimpleNamespace(registry_credentials={})
    service = objects_pb2.Service(id="svc1")
    service.spec.name = "web"
    service.spec.task.container.image = "reg.example:5000/app:1"
    ops = registryauth.attach(cache, SEALER, service, service.spec, AUTH)  # type: ignore[arg-type]
    (created,) = ops
    cred = created.obj  # type: ignore[union-attr]
    assert service.spec.task.container.registry_auth_id == cred.id and cred.registry == "reg.example:5000"
    assert b"s3cret-pw" not in cred.SerializeToString()
    assert registryauth.open_auth(SEALER, cred) == AUTH
    stored(cache, ops)
    service.meta.version = 5

    # The same credentials again: nothing new, the spec unchanged.
    same = types_pb2.ServiceSpec()
    same.CopyFrom(service.spec)
    assert registryauth.attach(cache, SEALER, service, same, AUTH) == []  # type: ignore[arg-type]
    assert same == service.spec
    # New ones: a new object; the old one is kept for the previous spec (a rollback).
    newer = types_pb2.ServiceSpec()
    newer.CopyFrom(service.spec)
    ops = registryauth.attach(cache, SEALER, service, newer, types_pb2.RegistryAuth(username="a", password="b"))  # type: ignore[arg-type]
    assert len(ops) == 1 and newer.task.container.registry_auth_id != cred.id
    stored(cache, ops)
    service.spec.CopyFrom(newer)
    # An update without credentials keeps the spec's; the one no spec names any more goes.
    keep = types_pb2.ServiceSpec()
    keep.CopyFrom(service.spec)
    (dropped,) = registryauth.attach(cache, SEALER, service, keep, None)  # type: ignore[arg-type]
    assert isinstance(dropped, w.Delete) and dropped.obj_id == cred.id
    # A spec may not name credentials that are not its service's.
    forged = types_pb2.ServiceSpec()
    forged.CopyFrom(service.spec)
    forged.task.container.registry_auth_id = "someone-elses"
    with pytest.raises(errors.InvalidArgument, match="names no credentials of this service"):
        registryauth.attach(cache, SEALER, service, forged, None)  # type: ignore[arg-type]
    assert len(registryauth.removals(cache, "svc1")) == len(cache.registry_credentials)  # type: ignore[arg-type]


async def test_credentials_reach_a_node_only_with_a_task_that_names_them() -> None:
    auth_id = "cred1"
    service = make_service()
    task = make_task(service, 1, node="n1", state=states.ASSIGNED)
    task.spec.container.registry_auth_id = auth_id

    def source(kind: str, item_id: str) -> dispatcher_pb2.AssignedRegistryAuth | None:
        assert kind == "registry_auth"
        return dispatcher_pb2.AssignedRegistryAuth(id=item_id, auth=AUTH)

    stream = assignments.AssignmentStream("n1", DispatcherSettings(assignments_debounce=0.001), source)
    messages = stream.messages([])
    async with asyncio.timeout(5):
        await anext(messages)
        stream.change(None, task)
        first = await anext(messages)
        assert [c.WhichOneof("item") for c in first.changes] == ["registry_auth", "task"]  # credentials first
        gone = objects_pb2.Task()
        gone.CopyFrom(task)
        gone.node_id = ""
        stream.change(task, gone)
        second = await anext(messages)
    withdrawn = [c for c in second.changes if c.WhichOneof("item") == "registry_auth"]
    assert withdrawn[0].action == dispatcher_pb2.AssignmentChange.REMOVE
    assert not withdrawn[0].registry_auth.auth.password
    other = assignments.AssignmentStream("n2", DispatcherSettings(), source)
    other.change(None, task)  # a task of another node
    assert not other._pending


def test_challenges_and_insecure_registries() -> None:
    scheme, params = imageresolve.challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer" and params["realm"] == "https://auth.example/token" and params["scope"].endswith(":pull")
    assert imageresolve.challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    settings = RegistrySettings(insecure_registries=("10.0.0.1:5000",))
    assert imageresolve._is_insecure("127.0.0.1:5000", settings) and imageresolve._is_insecure("localhost:1", settings)
    assert imageresolve._is_insecure("10.0.0.1:5000", settings)
    assert not imageresolve._is_insecure("10.0.0.2:5000", settings)
    assert not imageresolve._is_insecure("docker.io", settings)
