"""Control API: secrets and configs.

Secret data is sealed before it is written and never comes back out of this
API (not even as ciphertext); it reaches a node only in the assignment set of
a node that runs a task using it. Config data is not confidential and is
returned as written. Neither can be removed while a service uses it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import grpc

from shoal import errors, ids
from shoal.controller import validation
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.controller.store.keys import Kind
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)

#: Docker's limit: a secret or config is at most 500 KB.
MAX_DATA = 500 * 1024
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")


def check_file_spec(kind: str, spec: types_pb2.FileSpec) -> None:
    """Names of at most 64 characters of [A-Za-z0-9._-], alphanumeric at both ends; data ≤ 500 KB."""
    if not _NAME.fullmatch(spec.name):
        raise errors.InvalidArgument(
            f"{kind} name {spec.name[:80]!r} is invalid: use at most 64 letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit"
        )
    if not spec.data:
        raise errors.InvalidArgument(f'{kind} "{spec.name}": data must not be empty')
    if len(spec.data) > MAX_DATA:
        raise errors.InvalidArgument(f'{kind} "{spec.name}": data is larger than {MAX_DATA // 1024} KB')
    validation.check_labels(f'{kind} "{spec.name}"', spec.labels)


def _users(cache, kind: Kind, file_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the services whose spec mounts the file."""
    field = "secrets" if kind is Kind.SECRET else "configs"
    return sorted(
        s.spec.name
        for s in cache.services.values()
        if any(ref.id == file_id for ref in getattr(s.spec.task.container, field))
    )


def _public(secret: objects_pb2.Secret) -> objects_pb2.Secret:
    """A secret as the API shows it: everything but its (sealed) data."""
    out = objects_pb2.Secret()
    out.CopyFrom(secret)
    out.ClearField("sealed")
    out.spec.ClearField("data")
    return out


class FileHandlers(Handlers):
    """CreateSecret, GetSecret, ListSecrets, RemoveSecret, and the same for configs."""

    async def _create(self, kind: Kind, obj: objects_pb2.Secret | objects_pb2.Config) -> None:
        term = self._leadership.require()
        ops: list[w.Op] = [w.create(obj), w.Claim(self._keys.name(kind, obj.spec.name), obj.id.encode())]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.AlreadyExists(f'{kind.name.lower()} "{obj.spec.name}" already exists') from None
        log.info("%s %s (%s) created", kind.name.lower(), obj.spec.name, obj.id)

    async def _remove(self, kind: Kind, obj: objects_pb2.Secret | objects_pb2.Config) -> None:
        term = self._leadership.require()
        users = _users(term.cache, kind, obj.id)
        what = f'{kind.name.lower()} "{obj.spec.name}"'
        if users:
            raise errors.FailedPrecondition(f"{what} is in use by service(s) {', '.join(users)}")
        ops: list[w.Op] = [w.delete(obj), w.Claim(self._keys.name(kind, obj.spec.name), None, None)]
        try:
            await term.writer.commit(ops)
        except errors.Conflict:
            raise errors.Conflict(f"{what} changed while being removed; try again") from None
        log.info("%s %s (%s) removed", kind.name.lower(), obj.spec.name, obj.id)

    @handle
    async def CreateSecret(  # noqa: N802
        self, request: control_pb2.CreateFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.SecretResponse:
        check_file_spec("secret", request.spec)
        cache = self._leadership.require().cache
        if request.spec.name in cache.secret_by_name:
            raise errors.AlreadyExists(f'secret "{request.spec.name}" already exists')
        secret = objects_pb2.Secret(id=ids.new_id(), digest=hashlib.sha256(request.spec.data).hexdigest())
        secret.spec.CopyFrom(request.spec)
        secret.sealed = self._sealer.seal(request.spec.data, secret.id)
        secret.spec.ClearField("data")
        await self._create(Kind.SECRET, secret)
        return control_pb2.SecretResponse(secret=_public(cache.secrets[secret.id]))

    @handle
    async def GetSecret(  # noqa: N802
        self, request: control_pb2.GetFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.SecretResponse:
        cache = self._leadership.require().cache
        secret = refs.resolve("secret", request.ref, cache.secrets, cache.secret_by_name)
        return control_pb2.SecretResponse(secret=_public(secret))

    @handle
    async def ListSecrets(  # noqa: N802
        self, request: control_pb2.ListFilesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListSecretsResponse:
        cache = self._leadership.require().cache
        secrets = sorted(cache.secrets.values(), key=lambda s: s.spec.name)
        return control_pb2.ListSecretsResponse(secrets=[_public(s) for s in secrets])

    @handle
    async def RemoveSecret(  # noqa: N802
        self, request: control_pb2.GetFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveFileResponse:
        cache = self._leadership.require().cache
        await self._remove(Kind.SECRET, refs.resolve("secret", request.ref, cache.secrets, cache.secret_by_name))
        return control_pb2.RemoveFileResponse()

    @handle
    async def CreateConfig(  # noqa: N802
        self, request: control_pb2.CreateFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ConfigResponse:
        check_file_spec("config", request.spec)
        cache = self._leadership.require().cache
        if request.spec.name in cache.config_by_name:
            raise errors.AlreadyExists(f'config "{request.spec.name}" already exists')
        config = objects_pb2.Config(id=ids.new_id(), spec=request.spec)
        await self._create(Kind.CONFIG, config)
        return control_pb2.ConfigResponse(config=cache.configs[config.id])

    @handle
    async def GetConfig(  # noqa: N802
        self, request: control_pb2.GetFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ConfigResponse:
        cache = self._leadership.require().cache
        return control_pb2.ConfigResponse(
            config=refs.resolve("config", request.ref, cache.configs, cache.config_by_name)
        )

    @handle
    async def ListConfigs(  # noqa: N802
        self, request: control_pb2.ListFilesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListConfigsResponse:
        cache = self._leadership.require().cache
        return control_pb2.ListConfigsResponse(configs=sorted(cache.configs.values(), key=lambda c: c.spec.name))

    @handle
    async def RemoveConfig(  # noqa: N802
        self, request: control_pb2.GetFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.RemoveFileResponse:
        cache = self._leadership.require().cache
        await self._remove(Kind.CONFIG, refs.resolve("config", request.ref, cache.configs, cache.config_by_name))
        return control_pb2.RemoveFileResponse()


_TARGET = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


def resolve_file_refs(cache, spec: types_pb2.ServiceSpec) -> None:  # type: ignore[no-untyped-def]
    """Fill in the IDs, default targets and modes of the secrets and configs a spec names."""
    what = f'service "{spec.name}"'
    container = spec.task.container
    for field, table, by_name, kind in (
        ("secrets", cache.secrets, cache.secret_by_name, "secret"),
        ("configs", cache.configs, cache.config_by_name, "config"),
    ):
        targets: set[str] = set()
        for ref in getattr(container, field):
            obj = table.get(ref.id) or table.get(by_name.get(ref.name, ""))
            if obj is None:
                raise errors.InvalidArgument(f"{what}: {kind} {ref.name or ref.id!r} not found")
            ref.id, ref.name = obj.id, obj.spec.name
            if kind == "secret":
                ref.target = ref.target or ref.name
                if not _TARGET.fullmatch(ref.target) or ref.target in (".", ".."):
                    raise errors.InvalidArgument(f"{what}: secret target {ref.target!r} must be a file name")
            else:
                ref.target = ref.target or f"/{ref.name}"
                if not ref.target.startswith("/") or ".." in ref.target.split("/") or "\x00" in ref.target:
                    raise errors.InvalidArgument(f"{what}: config target {ref.target!r} must be an absolute path")
            if ref.mode > 0o777:
                raise errors.InvalidArgument(f"{what}: {kind} {ref.name} mode {oct(ref.mode)} is not a file mode")
            ref.mode = ref.mode or 0o444
            if ref.target in targets:
                raise errors.InvalidArgument(f"{what}: two {field} use the target {ref.target!r}")
            targets.add(ref.target)
