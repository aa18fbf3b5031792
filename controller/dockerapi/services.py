"""Service endpoints: list (filters id, name, label, mode), create, inspect, update, rollback, delete.

Updates carry Docker's `version` (the service's Version.Index, its etcd
revision): the Control API refuses a stale one with ABORTED, a 409 here, as
dockerd answers "update out of sequence". `rollback=previous` is Shoal's
RollbackService. Registry credentials are not part of Shoal's services yet:
an X-Registry-Auth header that carries any is refused rather than ignored.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from shoal import errors, ids
from shoal.controller.dockerapi import context, filters, mapping, server
from shoal.v1 import control_pb2, objects_pb2

_MODES = {
    "replicated": "replicated",
    "global": "global",
    "replicated-job": "replicated_job",
    "global-job": "global_job",
}


def check_registry_auth(request: web.Request) -> None:
    """Refuse credentials Shoal would not use; an empty header (or `{}`) is what the CLI sends without them."""
    raw = request.headers.get("X-Registry-Auth", "")
    if not raw:
        return
    try:
        padded = raw + "=" * (-len(raw) % 4)
        auth = json.loads(base64.urlsafe_b64decode(padded) or b"{}")
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument("X-Registry-Auth: not base64-encoded JSON") from None
    if isinstance(auth, dict) and any(v for k, v in auth.items() if k != "serveraddress"):
        raise errors.InvalidArgument(
            "X-Registry-Auth: registry credentials are not supported by Shoal yet; use a registry the nodes can "
            "pull from without them"
        )


def _status(replicas: control_pb2.ServiceReplicas | None) -> mapping.Json:
    if replicas is None:
        return {"RunningTasks": 0, "DesiredTasks": 0, "CompletedTasks": 0}
    return {
        "RunningTasks": replicas.running,
        "DesiredTasks": replicas.desired,
        "CompletedTasks": replicas.completed,
    }


def matches(svc: objects_pb2.Service, f: filters.Filters) -> bool:
    """Docker's service filters: id and name by prefix, label, mode."""
    mode = svc.spec.WhichOneof("mode") or "replicated"
    return (
        filters.prefix(f, "id", svc.id)
        and filters.prefix(f, "name", svc.spec.name)
        and filters.labels(f, "label", svc.spec.labels)
        and (not f.get("mode") or mode in {_MODES.get(m, m) for m in f["mode"]})
    )


def add_routes(app: web.Application, ctx: context.Context) -> None:
    control = ctx.control

    async def list_(request: web.Request) -> web.Response:
        f = filters.parse(request.query.get("filters"), ("id", "name", "label", "mode", "runtime"))
        for mode in f.get("mode", ()):
            if mode not in _MODES:
                raise errors.InvalidArgument(f"invalid filter 'mode={mode}'")
        reply = await control.list_services()
        counts = {r.service_id: r for r in reply.replicas}
        with_status = server.query_bool(request, "status")
        out = [
            mapping.service(s, _status(counts.get(s.id)) if with_status else None)
            for s in reply.services
            if matches(s, f) and filters.exact(f, "runtime", "container")
        ]
        return server.json_response(out)

    async def create(request: web.Request) -> web.Response:
        check_registry_auth(request)
        spec = mapping.service_spec(await server.body(request))
        reply = await control.create_service(spec, ids.new_id())
        return server.json_response({"ID": reply.service.id, "Warnings": None}, status=201)

    async def inspect(request: web.Request) -> web.Response:
        svc = (await control.get_service(request.match_info["id"])).service
        return server.json_response(mapping.service(svc))

    async def update(request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        version = server.query_int(request, "version")
        if version is None:
            raise errors.InvalidArgument("the version parameter is required: send the Version.Index you read")
        check_registry_auth(request)
        source = request.query.get("registryAuthFrom", "")
        if source not in ("", "spec", "previous-spec"):
            raise errors.InvalidArgument(f"invalid registryAuthFrom {source!r}: expected spec or previous-spec")
        rollback = request.query.get("rollback", "")
        if rollback not in ("", "previous"):
            raise errors.InvalidArgument(f"invalid rollback {rollback!r}: expected previous")
        if rollback:
            await control.rollback_service(ref, version)
        else:
            spec = mapping.service_spec(await server.body(request))
            await control.update_service(ref, version, spec)
        return server.json_response({"Warnings": None})

    async def delete(request: web.Request) -> web.Response:
        await control.remove_service(request.match_info["id"])
        return web.Response(status=200)

    app.router.add_get(server.route("/services"), list_)
    app.router.add_post(server.route("/services/create"), create)
    app.router.add_get(server.route("/services/{id}"), inspect)
    app.router.add_post(server.route("/services/{id}/update"), update)
    app.router.add_delete(server.route("/services/{id}"), delete)
