"""Node endpoints: list (filters id, name, role, membership, label, node.label), inspect, update, delete.

Every Shoal node is a worker: controllers are separate processes and not
nodes, so `role=manager` lists nothing and an update that asks for another
role is refused (mapping.node_spec). Removing a READY node needs `force`,
as `docker node rm` asks.
"""

from __future__ import annotations

from aiohttp import web

from shoal import errors
from shoal.controller.dockerapi import context, filters, mapping, server
from shoal.v1 import objects_pb2

FILTERS = ("id", "name", "role", "membership", "label", "node.label")


def matches(n: objects_pb2.Node, f: filters.Filters) -> bool:
    return (
        filters.prefix(f, "id", n.id)
        and filters.prefix(f, "name", n.name)
        and filters.exact(f, "role", "worker")
        and filters.exact(f, "membership", "accepted")
        and filters.labels(f, "label", n.description.engine.labels)
        and filters.labels(f, "node.label", n.spec.labels)
    )


def add_routes(app: web.Application, ctx: context.Context) -> None:
    control = ctx.control

    async def list_(request: web.Request) -> web.Response:
        f = filters.parse(request.query.get("filters"), FILTERS)
        for role in f.get("role", ()):
            if role not in ("worker", "manager"):
                raise errors.InvalidArgument(f"Invalid role filter: {role!r}")
        nodes = (await control.list_nodes()).nodes
        return server.json_response([mapping.node(n) for n in nodes if matches(n, f)])

    async def inspect(request: web.Request) -> web.Response:
        return server.json_response(mapping.node((await control.get_node(request.match_info["id"])).node))

    async def update(request: web.Request) -> web.Response:
        version = server.query_int(request, "version")
        if version is None:
            raise errors.InvalidArgument("the version parameter is required: send the Version.Index you read")
        current = (await control.get_node(request.match_info["id"])).node
        spec = mapping.node_spec(await server.body(request), current)
        await control.update_node(current.id, version, spec)
        return web.Response(status=200)

    async def delete(request: web.Request) -> web.Response:
        await control.remove_node(request.match_info["id"], force=server.query_bool(request, "force"))
        return web.Response(status=200)

    app.router.add_get(server.route("/nodes"), list_)
    app.router.add_get(server.route("/nodes/{id}"), inspect)
    app.router.add_post(server.route("/nodes/{id}/update"), update)
    app.router.add_delete(server.route("/nodes/{id}"), delete)
