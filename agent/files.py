"""Secrets and configs on the node: held in memory, written to a tmpfs only for the tasks that mount them.

The controller sends a node a secret only while a task assigned to it uses
one. Before such a task's container is created, its files are written under
`<state-dir>/files/<task-id>/` (a tmpfs the agent mounts, so they never
touch a disk) with the modes the spec asks for, and bind-mounted read-only
into the container: secrets at /run/secrets/<target>, configs at their
target path. When the task stops or is removed, its directory is wiped.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import subprocess
from typing import Any

from shoal.agent.executor import base
from shoal.v1 import dispatcher_pb2, objects_pb2

log = logging.getLogger(__name__)

SECRETS_DIR = "/run/secrets"


class FileStore:
    """The secrets and configs assigned to this node, and the per-task copies of them."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self._files: dict[tuple[str, str], dispatcher_pb2.AssignedFile] = {}

    def mount(self, size: str) -> None:
        """Make `root` a tmpfs (once; an agent restart finds it mounted and keeps it, with the running tasks' files)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.path.ismount(self.root):
            return
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(self.root)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise OSError(f"cannot mount a tmpfs for secrets at {self.root}: {result.stderr.strip()}")

    def replace(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        """Take the files of a COMPLETE assignment set; anything not in it is forgotten."""
        self._files.clear()
        self.apply(changes)

    def apply(self, changes: list[dispatcher_pb2.AssignmentChange]) -> None:
        """Take file changes (UPDATE or REMOVE of a secret or config)."""
        for change in changes:
            kind = change.WhichOneof("item")
            if kind not in ("secret", "config"):
                continue
            item = getattr(change, kind)
            if change.action == dispatcher_pb2.AssignmentChange.REMOVE:
                self._files.pop((kind, item.id), None)
            else:
                self._files[(kind, item.id)] = item

    def mounts(self, task: objects_pb2.Task) -> list[dict[str, Any]]:
        """Write the task's files and return the Engine's bind mounts for them; PermanentError if one is missing."""
        container = task.spec.container
        if not container.secrets and not container.configs:
            return []
        task_dir = self.root / task.id
        mounts = []
        for kind, refs in (("secret", container.secrets), ("config", container.configs)):
            for n, ref in enumerate(refs):
                item = self._files.get((kind, ref.id))
                if item is None:
                    raise base.PermanentError(f"exec: {kind} {ref.name!r} was not delivered to this node")
                path = task_dir / f"{kind}s" / str(n)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(item.data)
                os.chmod(path, ref.mode or 0o444)
                target = f"{SECRETS_DIR}/{ref.target}" if kind == "secret" else ref.target
                mounts.append({"Type": "bind", "Source": str(path), "Target": target, "ReadOnly": True})
        return mounts

    def wipe(self, task_id: str) -> None:
        """Remove a task's copies of its secrets and configs (it stopped, or is gone)."""
        task_dir = self.root / task_id
        if task_dir.exists():
            shutil.rmtree(task_dir, ignore_errors=True)
            log.debug("wiped the files of task %s", task_id)
