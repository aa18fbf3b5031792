"""Secret and config endpoints: list (filters id, name, names, label), create, inspect, update (labels), delete.

A secret's data goes in and never comes out; a config's is shown (base64),
as Docker does. Update changes labels only: the Control API refuses other
data, and accepts the same data sent back (what `docker stack deploy` does).
"""

from __future__ import annotations

from aiohttp import web

from shoal import errors
from shoal.controller.dockerapi import context, filters, mapping, server

FILTERS = ("id", "name", "names", "label")


def add_routes(app: web.Application, ctx: context.Context) -> None:
    control = ctx.control
    for kind, writer in (("Secret", mapping.secret), ("Config", mapping.config)):
        _add(app, control, kind, writer)


def _add(app: web.Application, control, kind: str, writer) -> None:  # type: ignore[no-untyped-def]
    plural = f"/{kind.lower()}s"

    async def list_(request: web.Request) -> web.Response:
        f = filters.parse(request.query.get("filters"), FILTERS)
        found = getattr(await control.list_files(kind), f"{kind.lower()}s")
        out = [
            writer(o)
            for o in found
            if filters.prefix(f, "id", o.id)
            and filters.prefix(f, "name", o.spec.name)
            and filters.exact(f, "names", o.spec.name)
            and filters.labels(f, "label", o.spec.labels)
        ]
        return server.json_response(out)

    async def create(request: web.Request) -> web.Response:
        spec = mapping.file_spec(await server.body(request), kind)
        reply = await control.create_file(kind, spec)
        return server.json_response({"ID": getattr(reply, kind.lower()).id}, status=201)

    async def inspect(request: web.Request) -> web.Response:
        reply = await control.get_file(kind, request.match_info["id"])
        return server.json_response(writer(getattr(reply, kind.lower())))

    async def update(request: web.Request) -> web.Response:
        version = server.query_int(request, "version")
        if version is None:
            raise errors.InvalidArgument("the version parameter is required: send the Version.Index you read")
        spec = mapping.file_spec(await server.body(request), kind)
        await control.update_file(kind, request.match_info["id"], version, spec)
        return web.Response(status=200)

    async def delete(request: web.Request) -> web.Response:
        await control.remove_file(kind, request.match_info["id"])
        return web.Response(status=204)

    app.router.add_get(server.route(plural), list_)
    app.router.add_post(server.route(f"{plural}/create"), create)
    app.router.add_get(server.route(f"{plural}/{{id}}"), inspect)
    app.router.add_post(server.route(f"{plural}/{{id}}/update"), update)
    app.router.add_delete(server.route(f"{plural}/{{id}}"), delete)
