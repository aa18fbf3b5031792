"""`--mount` parsing (Docker's syntax and defaults) and how --mount/--mount-rm change a spec."""

from __future__ import annotations

import re

import pytest

from shoal.ctl import mountflags
from shoal.v1 import types_pb2

Mount = types_pb2.Mount


def test_defaults_and_every_key() -> None:
    m = mountflags.parse("source=data,target=/data")
    assert m.type == Mount.VOLUME and m.source == "data" and m.target == "/data" and not m.readonly
    m = mountflags.parse(
        'type=volume,src=db,dst=/var/lib/db,ro,volume-driver=local,volume-label=a=b,"volume-opt=o=addr=1.2.3.4,rw",'
        "volume-opt=type=nfs,volume-nocopy"
    )
    assert (m.source, m.target, m.readonly) == ("db", "/var/lib/db", True)
    assert m.volume.driver == "local" and m.volume.nocopy
    assert dict(m.volume.labels) == {"a": "b"} and dict(m.volume.driver_opts) == {"o": "addr=1.2.3.4,rw", "type": "nfs"}
    m = mountflags.parse("type=bind,source=/srv,destination=/srv,readonly=false,bind-propagation=rshared")
    assert m.type == Mount.BIND and not m.readonly and m.bind.propagation == "rshared"
    m = mountflags.parse("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770,readonly=1")
    assert (m.type, m.tmpfs.size_bytes, m.tmpfs.mode, m.readonly) == (Mount.TMPFS, 64 << 20, 0o1770, True)
    assert not mountflags.parse("type=volume,target=/anon").source  # anonymous volume


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("type=nfs,target=/x", "invalid mount type"),
        ("source=x", "target is required"),
        ("target=/x,bogus=1", "unexpected key"),
        ("target=/x,shared", "key=value pair"),
        ("target=/x,readonly=maybe", "use true or false"),
        ("type=bind,source=/a,target=/b,volume-driver=x", "cannot mix 'volume-*' options with mount type 'bind'"),
        ("type=volume,target=/b,tmpfs-size=1m", "cannot mix 'tmpfs-*'"),
        ("type=tmpfs,target=/b,bind-propagation=shared", "cannot mix 'bind-*'"),
        ("type=tmpfs,target=/t,tmpfs-size=big", "tmpfs-size"),
        ("type=tmpfs,target=/t,tmpfs-mode=9", "octal"),
        ("target=/x,volume-label=novalue", "volume-label=KEY=VALUE"),
    ],
)
def test_bad_values_say_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        mountflags.parse(value)


def test_apply_replaces_by_target_and_removes() -> None:
    spec = types_pb2.ContainerSpec()
    mountflags.apply(spec.mounts, [mountflags.parse("source=a,target=/a"), mountflags.parse("source=b,target=/b")], [])
    mountflags.apply(spec.mounts, [mountflags.parse("source=a2,target=/a/")], ["/b"])
    assert [(m.source, m.target) for m in spec.mounts] == [("a2", "/a/")]
    # Two new mounts at one target stay two: the controller refuses them.
    mountflags.apply(spec.mounts, [mountflags.parse("target=/c"), mountflags.parse("type=tmpfs,target=/c")], [])
    assert len(spec.mounts) == 3


def test_describe() -> None:
    assert mountflags.describe(mountflags.parse("source=d,target=/d,ro,volume-driver=local")) == (
        "volume d -> /d (ro, driver=local)"
    )
    assert mountflags.describe(mountflags.parse("type=tmpfs,target=/t,tmpfs-size=1m")) == "tmpfs /t (size=1MiB)"
