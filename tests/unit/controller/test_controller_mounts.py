"""Validation of mounts in service specs: one clear line per mistake."""

from __future__ import annotations

import pytest

from shoal import errors
from shoal.controller import validation
from shoal.v1 import types_pb2

Mount = types_pb2.Mount


def spec_with(*mounts: types_pb2.Mount, secret: str = "") -> types_pb2.ServiceSpec:
    spec = types_pb2.ServiceSpec(name="web")
    spec.task.container.image = "r.example/app:1"
    spec.task.container.mounts.extend(mounts)
    if secret:
        spec.task.container.secrets.add(name=secret)
    return spec


def test_good_mounts_pass() -> None:
    validation.check_service_spec(
        spec_with(
            Mount(source="data", target="/data", volume=types_pb2.VolumeOptions(driver="local", labels={"a": "b"})),
            Mount(target="/anon"),
            Mount(type=Mount.BIND, source="/srv", target="/srv", readonly=True,
                  bind=types_pb2.BindOptions(propagation="rslave")),
            Mount(type=Mount.TMPFS, target="/tmp", tmpfs=types_pb2.TmpfsOptions(size_bytes=1 << 20, mode=0o1777)),
        )
    )


@pytest.mark.parametrize(
    ("mounts", "why"),
    [
        ([Mount(source="d", target="/x")], "invalid volume name"),
        ([Mount(source="data", target="rel")], "must be an absolute path"),
        ([Mount(source="data", target="/")], "root"),
        ([Mount(target="/a"), Mount(type=Mount.TMPFS, target="/a/")], "two mounts use the target '/a'"),
        ([Mount(type=Mount.BIND, target="/a")], "needs a source path"),
        ([Mount(type=Mount.BIND, source="srv", target="/a")], "must be an absolute path"),
        ([Mount(type=Mount.BIND, source="/s", target="/a", bind=types_pb2.BindOptions(propagation="x"))],
         "unknown bind propagation"),
        ([Mount(type=Mount.BIND, source="/s", target="/a", volume=types_pb2.VolumeOptions(nocopy=True))],
         "volume options apply to volume mounts only"),
        ([Mount(type=Mount.TMPFS, source="x", target="/a")], "takes no source"),
        ([Mount(type=Mount.TMPFS, target="/a", tmpfs=types_pb2.TmpfsOptions(size_bytes=-1))], "tmpfs size"),
        ([Mount(type=Mount.TMPFS, target="/a", tmpfs=types_pb2.TmpfsOptions(mode=0o10000))], "not a file mode"),
        ([Mount(target="/a", tmpfs=types_pb2.TmpfsOptions(mode=1))], "tmpfs options apply to tmpfs"),
        ([Mount(type=7, target="/a")], "unknown mount type"),
        ([Mount(source="vol", target="/a", volume=types_pb2.VolumeOptions(labels={"bad key!": "x"}))], "label key"),
        ([Mount(target=f"/m{i}") for i in range(65)], "at most 64 mounts"),
        ([Mount(target="/run/secrets/pw")], "two mounts use the target"),
    ],
)
def test_bad_mounts_are_refused(mounts: list[types_pb2.Mount], why: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=why) as err:
        validation.check_service_spec(spec_with(*mounts, secret="pw"))
    assert str(err.value).startswith('service "web": ') and "\n" not in str(err.value)
