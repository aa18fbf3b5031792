"""Control API: UpdateSecret and UpdateConfig, which change labels only.

As in Docker Swarm, a secret's or config's name and data never change once
it exists (services hold it by ID and nodes have it on disk); only its labels
do. The same data may come back with the update, which is what `docker stack
deploy` sends for a secret it finds already there; other data is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import grpc

from shoal import errors
from shoal.controller import validation
from shoal.controller.api import files, refs
from shoal.controller.api.base import Handlers, check_version
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)


def _check_unchanged(kind: str, current: types_pb2.FileSpec, new: types_pb2.FileSpec, same_data: bool) -> None:
    what = f'{kind} "{current.name}"'
    if new.name and new.name != current.name:
        raise errors.InvalidArgument(f"{what}: only its labels can be updated, not its name")
    if new.data and not same_data:
        raise errors.InvalidArgument(f"{what}: only its labels can be updated, not its data")
    validation.check_labels(what, new.labels)


class FileUpdateHandlers(Handlers):
    """UpdateSecret, UpdateConfig."""

    async def _commit(self, kind: str, obj: objects_pb2.Secret | objects_pb2.Config, version: int) -> None:
        term = self._leadership.require()
        try:
            await term.writer.commit([w.Put(obj, version)])
        except errors.Conflict:
            raise errors.Conflict(f'{kind} "{obj.spec.name}" changed since it was read; read it again') from None
        log.info("%s %s (%s) labels updated", kind, obj.spec.name, obj.id)

    @handle
    async def UpdateSecret(  # noqa: N802
        self, request: control_pb2.UpdateFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.SecretResponse:
        cache = self._leadership.require().cache
        secret = refs.resolve("secret", request.ref, cache.secrets, cache.secret_by_name)
        digest = hashlib.sha256(request.spec.data).hexdigest()
        _check_unchanged("secret", secret.spec, request.spec, hmac.compare_digest(digest, secret.digest))
        check_version("secret", secret.spec.name, request.version, secret.meta.version)
        new = objects_pb2.Secret()
        new.CopyFrom(secret)
        new.spec.labels.clear()
        new.spec.labels.update(request.spec.labels)
        await self._commit("secret", new, request.version)
        return control_pb2.SecretResponse(secret=files._public(cache.secrets[secret.id]))

    @handle
    async def UpdateConfig(  # noqa: N802
        self, request: control_pb2.UpdateFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ConfigResponse:
        cache = self._leadership.require().cache
        config = refs.resolve("config", request.ref, cache.configs, cache.config_by_name)
        _check_unchanged("config", config.spec, request.spec, request.spec.data == config.spec.data)
        check_version("config", config.spec.name, request.version, config.meta.version)
        new = objects_pb2.Config()
        new.CopyFrom(config)
        new.spec.labels.clear()
        new.spec.labels.update(request.spec.labels)
        await self._commit("config", new, request.version)
        return control_pb2.ConfigResponse(config=cache.configs[config.id])
