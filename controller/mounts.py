"""Validation of a container spec's mounts (volumes, bind mounts, tmpfs), as Docker's rules have them.

Called from validation.py for every spec a client sends: any failure is
InvalidArgument with one line naming the service and the mount, before
anything is written.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping

from shoal import errors
from shoal.v1 import types_pb2

Mount = types_pb2.Mount

#: Mounts one container may have: far more than any real service, few enough to keep a spec small.
MAX_MOUNTS = 64
MAX_PATH = 4096
MAX_DRIVER_OPTS = 64
#: The Engine's volume name rule (at least two characters).
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_DRIVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
#: Largest tmpfs size accepted: 1 TiB is beyond any node's memory, and within int64 everywhere.
MAX_TMPFS_BYTES = 1 << 40
MAX_OPTION_BYTES = 32 * 1024

#: validation.check_labels, handed in by validation.py (which calls this module).
LabelCheck = Callable[[str, Mapping[str, str]], None]


def _type_name(mount: types_pb2.Mount) -> str:
    return {Mount.VOLUME: "volume", Mount.BIND: "bind", Mount.TMPFS: "tmpfs"}.get(mount.type, str(mount.type))


def _check_path(what: str, field: str, path: str) -> None:
    if not path.startswith("/"):
        raise errors.InvalidArgument(f"{what}: mount {field} {path[:80]!r} must be an absolute path")
    if len(path) > MAX_PATH or "\x00" in path:
        raise errors.InvalidArgument(f"{what}: mount {field} {path[:80]!r} is too long or contains NUL")


def _check_one(what: str, mount: types_pb2.Mount, check_labels: LabelCheck) -> None:
    kind = _type_name(mount)
    if mount.type not in Mount.Type.values():
        raise errors.InvalidArgument(f"{what}: unknown mount type {mount.type}")
    _check_path(what, "target", mount.target)
    if posixpath.normpath(mount.target) == "/":
        raise errors.InvalidArgument(f"{what}: a mount cannot replace the container's root (target /)")
    here = f"{what}: {kind} mount at {mount.target}"
    if mount.type != Mount.VOLUME and mount.HasField("volume"):
        raise errors.InvalidArgument(f"{here}: volume options apply to volume mounts only")
    if mount.type != Mount.BIND and mount.HasField("bind"):
        raise errors.InvalidArgument(f"{here}: bind options apply to bind mounts only")
    if mount.type != Mount.TMPFS and mount.HasField("tmpfs"):
        raise errors.InvalidArgument(f"{here}: tmpfs options apply to tmpfs mounts only")
    if mount.type == Mount.BIND:
        if not mount.source:
            raise errors.InvalidArgument(f"{here}: a bind mount needs a source path")
        _check_path(what, "source", mount.source)
        if mount.bind.propagation and mount.bind.propagation not in PROPAGATIONS:
            raise errors.InvalidArgument(
                f"{here}: unknown bind propagation {mount.bind.propagation[:40]!r} (use {', '.join(PROPAGATIONS)})"
            )
    elif mount.type == Mount.VOLUME:
        if mount.source and not _VOLUME_NAME.fullmatch(mount.source[:256]) or len(mount.source) > 255:
            raise errors.InvalidArgument(
                f"{here}: invalid volume name {mount.source[:80]!r} (letters, digits, '_', '.', '-'; "
                "at least 2 characters, starting with a letter or digit)"
            )
        _check_volume_options(here, mount.volume, check_labels)
    else:
        if mount.source:
            raise errors.InvalidArgument(f"{here}: a tmpfs mount takes no source")
        if not 0 <= mount.tmpfs.size_bytes <= MAX_TMPFS_BYTES:
            raise errors.InvalidArgument(f"{here}: tmpfs size must be between 0 (no limit) and 1TiB")
        if mount.tmpfs.mode > 0o7777:
            raise errors.InvalidArgument(f"{here}: tmpfs mode {mount.tmpfs.mode:o} is not a file mode (at most 7777)")


def _check_volume_options(here: str, options: types_pb2.VolumeOptions, check_labels: LabelCheck) -> None:
    if options.driver and not _DRIVER.fullmatch(options.driver):
        raise errors.InvalidArgument(f"{here}: invalid volume driver name {options.driver[:80]!r}")
    check_labels(f"{here}: volume", options.labels)
    if len(options.driver_opts) > MAX_DRIVER_OPTS:
        raise errors.InvalidArgument(f"{here}: at most {MAX_DRIVER_OPTS} volume driver options")
    for key, value in options.driver_opts.items():
        if not key or "\x00" in key + value or len(key.encode()) + len(value.encode()) > MAX_OPTION_BYTES:
            raise errors.InvalidArgument(f"{here}: invalid volume driver option {key[:80]!r}")


def check_mounts(what: str, container: types_pb2.ContainerSpec, check_labels: LabelCheck) -> None:
    """A bounded number of well-formed mounts, each at its own target (secrets' and configs' included)."""
    if len(container.mounts) > MAX_MOUNTS:
        raise errors.InvalidArgument(f"{what}: at most {MAX_MOUNTS} mounts")
    seen: set[str] = set(_file_targets(container))
    for mount in container.mounts:
        _check_one(what, mount, check_labels)
        target = posixpath.normpath(mount.target)
        if target in seen:
            raise errors.InvalidArgument(f"{what}: two mounts use the target {target!r}")
        seen.add(target)


def _file_targets(container: types_pb2.ContainerSpec) -> Iterable[str]:
    """Where secrets and configs are mounted (their targets as given; the API fills in defaults later)."""
    for ref in container.secrets:
        yield posixpath.normpath(f"/run/secrets/{ref.target or ref.name}")
    for ref in container.configs:
        if ref.target.startswith("/"):
            yield posixpath.normpath(ref.target)
