"""Control API: images. Pinning a spec's tag to its digest at create and update, and ResolveImage.

`prepare` runs in CreateService and UpdateService after validation, before
the write: it names the request's registry credentials in the spec
(registryauth.attach) and, unless the request says `no_resolve_image`, asks
the registry for the digest of an image given by tag and pins the spec to
`image:tag@sha256:...`, so that every node runs the same bytes however often
the tag is pushed again. An image the spec already had is left as it is (give
`--image` again to follow the tag). A registry that cannot be asked leaves
the tag unpinned with a warning in the answer, never a failure.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import grpc

from shoal import errors, imageref
from shoal.controller import imageresolve, registryauth
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.controller.secrets import Sealer
from shoal.controller.settings import RegistrySettings
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)


def _needs_pin(image: str, previous: str) -> bool:
    try:
        ref = imageref.parse(image)
    except ValueError:
        return False  # validation let it through; the pull will say what is wrong with it
    return not ref.digest and image != previous


async def prepare(
    resolver: imageresolve.Resolver,
    cache: Cache,
    sealer: Sealer,
    service: objects_pb2.Service,
    spec: types_pb2.ServiceSpec,
    request: control_pb2.CreateServiceRequest | control_pb2.UpdateServiceRequest,
) -> tuple[list[w.Op], list[str]]:
    """Credentials named and the image pinned in `spec`; the writes to make with it, and the warnings."""
    auth = request.registry_auth if request.HasField("registry_auth") else None
    ops = registryauth.attach(cache, sealer, service, spec, auth)
    container = spec.task.container
    previous = service.spec.task.container.image if service.meta.version else ""
    if request.no_resolve_image or not _needs_pin(container.image, previous):
        return ops, []
    if auth is None:
        auth = registryauth.stored_auth(cache, sealer, container.registry_auth_id)
    try:
        resolved = await resolver.resolve(container.image, auth)
    except errors.ShoalError as exc:
        # As Docker: the service is made anyway, and each node pulls the tag on its own.
        warning = (
            f"image {container.image} could not be pinned to a digest ({exc}); each node pulls the tag itself, "
            "so nodes may run different images if it moves"
        )
        log.warning('service "%s": %s', spec.name, warning)
        return ops, [warning]
    log.info('service "%s": image %s pinned to %s', spec.name, container.image, resolved.digest)
    container.image = resolved.pinned
    return ops, []


@functools.cache
def resolver(settings: RegistrySettings) -> imageresolve.Resolver:
    """The registry client for the controller's registry settings (one per process)."""
    return imageresolve.Resolver(settings)


class ImageHandlers(Handlers):
    """ResolveImage."""

    @handle
    async def ResolveImage(  # noqa: N802
        self, request: control_pb2.ResolveImageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ResolveImageResponse:
        if not request.image:
            raise errors.InvalidArgument("resolve image: an image reference is required")
        auth = request.registry_auth if request.HasField("registry_auth") else None
        resolved = await resolver(self._leadership.settings.registry).resolve(request.image, auth)
        return control_pb2.ResolveImageResponse(
            digest=resolved.digest, pinned=resolved.pinned, media_type=resolved.media_type
        )
