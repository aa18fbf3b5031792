"""`--mount` as docker service create takes it, and how `--mount`/`--mount-rm` change a spec's mounts.

A value is comma-separated `key=value` fields, read as CSV so that a field
holding a comma can be quoted (`"volume-opt=o=addr=10.0.0.1,rw"`):

    type=volume|bind|tmpfs (default volume)   source|src=S   target|dst|destination=T
    readonly|ro[=true|false]   volume-driver=D   volume-label=K=V   volume-opt=K=V   volume-nocopy[=true|false]
    bind-propagation=rprivate|private|rshared|shared|rslave|slave   tmpfs-size=SIZE   tmpfs-mode=OCTAL

This module only parses (a bad value is a usage error, exit status 2); what a
mount may be (absolute paths, sizes, how many) is the controller's to decide.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from shoal import units
from shoal.v1 import types_pb2

Mount = types_pb2.Mount
F = TypeVar("F", bound=Callable[..., Any])

TYPES = {"volume": Mount.VOLUME, "bind": Mount.BIND, "tmpfs": Mount.TMPFS}
#: Strings Go's strconv.ParseBool accepts, as the docker CLI reads `readonly=...`.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
#: Keys that may stand alone, meaning "true".
_FLAGS = frozenset({"readonly", "ro", "volume-nocopy"})


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid value for {key}: {value!r} (use true or false)")


def _pair(key: str, value: str) -> tuple[str, str]:
    name, sep, val = value.partition("=")
    if not sep or not name:
        raise ValueError(f"{key} must be {key}=KEY=VALUE, not {key}={value}")
    return name, val


def parse(text: str) -> types_pb2.Mount:
    """One `--mount` value as a Mount; ValueError with the docker CLI's reasons."""
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise ValueError(f"cannot read {text!r} as comma-separated fields") from None
    mount = Mount()
    used: set[str] = set()  # option groups given: volume, bind, tmpfs
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if not sep:
            if key not in _FLAGS:
                raise ValueError(f"invalid field {field!r}: must be a key=value pair")
            value = "true"
        if key == "type":
            if value not in TYPES:
                raise ValueError(f"invalid mount type {value!r} (use volume, bind or tmpfs)")
            mount.type = TYPES[value]
        elif key in ("source", "src"):
            mount.source = value
        elif key in ("target", "dst", "destination"):
            mount.target = value
        elif key in ("readonly", "ro"):
            mount.readonly = _bool(key, value)
        elif key == "volume-nocopy":
            mount.volume.nocopy = _bool(key, value)
            used.add("volume")
        elif key == "volume-driver":
            mount.volume.driver = value
            used.add("volume")
        elif key in ("volume-label", "volume-opt"):
            name, val = _pair(key, value)
            (mount.volume.labels if key == "volume-label" else mount.volume.driver_opts)[name] = val
            used.add("volume")
        elif key == "bind-propagation":
            mount.bind.propagation = value
            used.add("bind")
        elif key == "tmpfs-size":
            try:
                mount.tmpfs.size_bytes = units.parse_size(value)
            except ValueError as exc:
                raise ValueError(f"tmpfs-size: {exc}") from None
            used.add("tmpfs")
        elif key == "tmpfs-mode":
            try:
                mount.tmpfs.mode = int(value, 8)
            except ValueError:
                raise ValueError(f"tmpfs-mode must be an octal mode such as 1777, not {value!r}") from None
            used.add("tmpfs")
        else:
            raise ValueError(f"unexpected key {key!r} in {field!r}")
    if not mount.target:
        raise ValueError("target is required")
    kind = next(k for k, v in TYPES.items() if v == mount.type)
    wrong = sorted(used - {kind})
    if wrong:
        raise ValueError(f"cannot mix '{wrong[0]}-*' options with mount type '{kind}'")
    return mount


class MountParam(click.ParamType[Any, Any]):
    """A `--mount` value as a Mount message."""

    name = "type=T,source=S,target=T[,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Mount):
            return value
        try:
            return parse(str(value))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


MOUNT = MountParam()


def options_(fn: F) -> F:
    """The storage and image flags `service create` and `service update` share."""
    decorators = [
        click.option(
            "--mount",
            type=MOUNT,
            multiple=True,
            help="Mount a volume, bind mount or tmpfs: type=volume|bind|tmpfs,source=S,target=T[,readonly]... "
            "(repeatable; as docker service create).",
        ),
        click.option(
            "--with-registry-auth",
            is_flag=True,
            help="Send the Docker config's credentials for the image's registry (stored sealed; nodes pull with them).",
        ),
        click.option(
            "--no-resolve-image",
            is_flag=True,
            help="Do not pin the image's tag to the digest it has now in the registry.",
        ),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def update_options_(fn: F) -> F:
    """`--mount-rm`, which only `service update` takes."""
    return click.option("--mount-rm", metavar="TARGET", multiple=True, help="Remove the mount at TARGET.")(fn)


def apply(mounts: Any, add: Sequence[types_pb2.Mount], remove: Sequence[str]) -> None:
    """Drop mounts by target and those mounted at a target again, then append the new ones.

    Two new mounts at one target are both kept: the controller refuses the spec, as Docker does.
    """
    if not add and not remove:
        return

    def target(m: types_pb2.Mount) -> str:
        return m.target.rstrip("/") or "/"

    replaced = {t.rstrip("/") or "/" for t in remove} | {target(m) for m in add}
    kept = [m for m in mounts if target(m) not in replaced] + list(add)
    del mounts[:]
    mounts.extend(kept)


def describe(mount: types_pb2.Mount) -> str:
    """One line for `service inspect`: "volume data -> /data (ro, driver=local)"."""
    kind = next(k for k, v in TYPES.items() if v == mount.type)
    source = mount.source or ("(anonymous)" if mount.type == Mount.VOLUME else "")
    head = f"{kind} {source} -> {mount.target}" if source else f"{kind} {mount.target}"
    extras = ["ro"] if mount.readonly else []
    v, b, t = mount.volume, mount.bind, mount.tmpfs
    if v.driver:
        extras.append(f"driver={v.driver}")
    extras += [f"opt {k}={val}" for k, val in sorted(v.driver_opts.items())]
    extras += [f"label {k}={val}" for k, val in sorted(v.labels.items())]
    if v.nocopy:
        extras.append("nocopy")
    if b.propagation:
        extras.append(f"propagation={b.propagation}")
    if t.size_bytes:
        extras.append(f"size={units.format_size(t.size_bytes)}")
    if t.mode:
        extras.append(f"mode={t.mode:o}")
    return head + (f" ({', '.join(extras)})" if extras else "")
