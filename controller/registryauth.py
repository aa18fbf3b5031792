"""Registry credentials of services: sealed in etcd, named by the spec, opened only to be used.

A CreateService or UpdateService request may carry credentials (swarmctl's
`--with-registry-auth`). They become a `RegistryCredential` object of their
own, sealed like a secret's data (secrets.Sealer, bound to the object's ID),
and the spec names it by ID (`ContainerSpec.registry_auth_id`): the spec, and
so every API answer and event, holds no credential. New credentials are a new
object and so a new spec (Docker redeploys too); the same credentials sent
again keep the spec as it is. A service keeps the credentials its spec and
previous spec name (a rollback needs the latter) and loses the others in the
same write; removing the service removes them all.

They are opened in two places only: to resolve the image's tag at create and
update (api/images.py), and by the dispatcher for the assignment set of a node
that runs a task whose spec names them (`deliverable`).
"""

from __future__ import annotations

from shoal import errors, ids, imageref
from shoal.controller.secrets import Sealer
from shoal.controller.store import writer as w
from shoal.controller.store.cache import Cache
from shoal.v1 import dispatcher_pb2, objects_pb2, types_pb2


def open_auth(sealer: Sealer, credential: objects_pb2.RegistryCredential) -> types_pb2.RegistryAuth:
    """The plaintext credentials of a stored object."""
    return types_pb2.RegistryAuth.FromString(sealer.open(credential.sealed, credential.id))


def deliverable(cache: Cache, sealer: Sealer, credential_id: str) -> dispatcher_pb2.AssignedRegistryAuth | None:
    """The credentials as a node that needs them receives them; None if they are gone."""
    credential = cache.registry_credentials.get(credential_id)
    if credential is None:
        return None
    return dispatcher_pb2.AssignedRegistryAuth(id=credential_id, auth=open_auth(sealer, credential))


def stored_auth(cache: Cache, sealer: Sealer, credential_id: str) -> types_pb2.RegistryAuth | None:
    """The credentials a spec names, to resolve its image with; None if it names none."""
    credential = cache.registry_credentials.get(credential_id) if credential_id else None
    return open_auth(sealer, credential) if credential is not None else None


def _same(a: types_pb2.RegistryAuth, b: types_pb2.RegistryAuth) -> bool:
    return (a.username, a.password, a.identity_token) == (b.username, b.password, b.identity_token)


def check_auth(what: str, auth: types_pb2.RegistryAuth) -> None:
    """Credentials are bounded and carry something to authenticate with."""
    if not (auth.username or auth.password or auth.identity_token):
        raise errors.InvalidArgument(f"{what}: registry credentials need a username and password or a token")
    if auth.ByteSize() > 64 * 1024:
        raise errors.InvalidArgument(f"{what}: registry credentials are larger than 64 KiB")


def attach(
    cache: Cache,
    sealer: Sealer,
    service: objects_pb2.Service,
    spec: types_pb2.ServiceSpec,
    auth: types_pb2.RegistryAuth | None,
) -> list[w.Op]:
    """Name the right credentials in `spec` (the service's new spec); the writes that go with it.

    `service` is the service as stored (for a create: the new object, its spec
    still unwritten). Given credentials become a new object unless they equal
    the ones the current spec names; otherwise the spec may only keep one of
    this service's own.
    """
    what = f'service "{spec.name}"'
    container = spec.task.container
    current_id = service.spec.task.container.registry_auth_id if service.meta.version else ""
    ops: list[w.Op] = []
    if auth is not None and auth.ByteSize():
        check_auth(what, auth)
        current = stored_auth(cache, sealer, current_id)
        if current is not None and _same(current, auth):
            container.registry_auth_id = current_id
        else:
            credential = objects_pb2.RegistryCredential(id=ids.new_id(), service_id=service.id)
            try:
                credential.registry = imageref.parse(container.image).domain
            except ValueError:
                credential.registry = auth.server_address
            credential.sealed = sealer.seal(auth.SerializeToString(), credential.id)
            container.registry_auth_id = credential.id
            ops.append(w.create(credential))
    elif container.registry_auth_id:
        found = cache.registry_credentials.get(container.registry_auth_id)
        if found is None or found.service_id != service.id or not service.meta.version:
            raise errors.InvalidArgument(
                f"{what}: registry_auth_id names no credentials of this service (send the credentials instead)"
            )
    keep = {container.registry_auth_id, current_id} if service.meta.version else set()
    ops += [w.delete(c) for c in of_service(cache, service.id) if c.id not in keep]
    return ops


def of_service(cache: Cache, service_id: str) -> list[objects_pb2.RegistryCredential]:
    """Every stored credential object of a service (a handful at most)."""
    return [c for c in cache.registry_credentials.values() if c.service_id == service_id]


def removals(cache: Cache, service_id: str) -> list[w.Op]:
    """The deletes that go with removing the service."""
    return [w.delete(c) for c in of_service(cache, service_id)]
