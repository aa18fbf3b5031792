"""Secrets and configs on the node (agent/files.py): kept from assignments, written per task, wiped after.

The store works on a plain temporary directory here; `mount` (the tmpfs) is
the one thing not exercised.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from agent_fakes import make_task

from shoal.agent.executor import base
from shoal.agent.files import FileStore
from shoal.v1 import dispatcher_pb2, objects_pb2, types_pb2

UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


def secret(file_id: str, data: bytes = b"", action: int = UPDATE) -> dispatcher_pb2.AssignmentChange:
    item = dispatcher_pb2.AssignedFile(id=file_id, name=f"name-{file_id}", data=data)
    return dispatcher_pb2.AssignmentChange(action=action, secret=item)  # type: ignore[arg-type]


def config(file_id: str, data: bytes = b"", action: int = UPDATE) -> dispatcher_pb2.AssignmentChange:
    item = dispatcher_pb2.AssignedFile(id=file_id, name=f"name-{file_id}", data=data)
    return dispatcher_pb2.AssignmentChange(action=action, config=item)  # type: ignore[arg-type]


def task_using(
    secrets: list[types_pb2.FileReference] = (),  # type: ignore[assignment]
    configs: list[types_pb2.FileReference] = (),  # type: ignore[assignment]
) -> objects_pb2.Task:
    task = make_task()
    task.spec.container.secrets.extend(secrets)
    task.spec.container.configs.extend(configs)
    return task


def ref(file_id: str, target: str, mode: int = 0) -> types_pb2.FileReference:
    return types_pb2.FileReference(id=file_id, name=f"name-{file_id}", target=target, mode=mode)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def test_a_task_without_files_has_no_mounts_and_no_directory(store: FileStore) -> None:
    task = task_using()

    assert store.mounts(task) == []
    assert not (store.root / task.id).exists()


def test_secrets_and_configs_are_written_with_their_modes_and_mounted_read_only(store: FileStore) -> None:
    store.replace([secret("s1", b"hunter2"), config("c1", b"port=80\n")])
    task = task_using(secrets=[ref("s1", "db_password", 0o400)], configs=[ref("c1", "/etc/app.conf", 0o444)])

    mounts = store.mounts(task)

    secret_path = store.root / task.id / "secrets" / "0"
    config_path = store.root / task.id / "configs" / "0"
    assert mounts == [
        {"Type": "bind", "Source": str(secret_path), "Target": "/run/secrets/db_password", "ReadOnly": True},
        {"Type": "bind", "Source": str(config_path), "Target": "/etc/app.conf", "ReadOnly": True},
    ]
    assert secret_path.read_bytes() == b"hunter2"
    assert config_path.read_bytes() == b"port=80\n"
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o400
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o444
    assert stat.S_IMODE(secret_path.parent.stat().st_mode) == 0o700


def test_a_reference_without_a_mode_gets_0444(store: FileStore) -> None:
    store.replace([secret("s1", b"x")])
    task = task_using(secrets=[ref("s1", "token")])

    (mount,) = store.mounts(task)

    assert stat.S_IMODE(Path(mount["Source"]).stat().st_mode) == 0o444


def test_each_reference_gets_its_own_file_even_for_the_same_secret(store: FileStore) -> None:
    store.replace([secret("s1", b"x")])
    task = task_using(secrets=[ref("s1", "a"), ref("s1", "b", 0o440)])

    first, second = store.mounts(task)

    assert (first["Target"], second["Target"]) == ("/run/secrets/a", "/run/secrets/b")
    assert first["Source"] != second["Source"]
    assert stat.S_IMODE(Path(second["Source"]).stat().st_mode) == 0o440


def test_a_file_that_was_not_delivered_is_a_permanent_error(store: FileStore) -> None:
    store.replace([config("c1")])
    task = task_using(secrets=[ref("s9", "db_password")])

    with pytest.raises(base.PermanentError, match="secret 'name-s9' was not delivered to this node"):
        store.mounts(task)


def test_a_secret_and_a_config_with_the_same_id_are_different_files(store: FileStore) -> None:
    store.replace([config("x1", b"config data")])
    task = task_using(secrets=[ref("x1", "x")])

    with pytest.raises(base.PermanentError, match="secret"):
        store.mounts(task)


def test_apply_updates_and_removes(store: FileStore) -> None:
    store.replace([secret("s1", b"old")])
    task = task_using(secrets=[ref("s1", "s")])

    store.apply([secret("s1", b"new"), config("c1", b"c")])
    (mount,) = store.mounts(task)
    assert Path(mount["Source"]).read_bytes() == b"new"

    store.apply([secret("s1", action=REMOVE)])
    with pytest.raises(base.PermanentError):
        store.mounts(task)
    (config_mount,) = store.mounts(task_using(configs=[ref("c1", "/c")]))  # the config is still there
    assert Path(config_mount["Source"]).read_bytes() == b"c"


def test_apply_ignores_task_changes(store: FileStore) -> None:
    store.replace([])
    store.apply([dispatcher_pb2.AssignmentChange(task=make_task()), secret("s1", b"x")])

    (mount,) = store.mounts(task_using(secrets=[ref("s1", "s")]))
    assert Path(mount["Source"]).read_bytes() == b"x"


def test_replace_forgets_what_the_complete_set_does_not_name(store: FileStore) -> None:
    store.replace([secret("s1", b"x"), secret("s2", b"y")])

    store.replace([secret("s2", b"y")])

    with pytest.raises(base.PermanentError):
        store.mounts(task_using(secrets=[ref("s1", "s")]))
    assert len(store.mounts(task_using(secrets=[ref("s2", "s")]))) == 1


def test_wipe_removes_only_that_tasks_files(store: FileStore) -> None:
    store.replace([secret("s1", b"x")])
    kept, wiped = task_using(secrets=[ref("s1", "s")]), task_using(secrets=[ref("s1", "s")])
    (kept_mount,) = store.mounts(kept)
    store.mounts(wiped)

    store.wipe(wiped.id)
    store.wipe("never-had-files")

    assert not (store.root / wiped.id).exists()
    assert Path(kept_mount["Source"]).read_bytes() == b"x"
