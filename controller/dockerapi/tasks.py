"""Task endpoints: list (filters id, name, service, node, desired-state, label, _up-to-date) and inspect.

`service` and `node` filters take IDs, names or ID prefixes, resolved through
the Control API; `label` matches the labels of the task's service (as dockerd
matches a task's service annotations, which is what `docker stack ps` asks);
`name` matches `<service>.<slot>`; `_up-to-date`, which `docker service
create/update` ask while they follow a service, keeps the tasks of the
service's current spec.
"""

from __future__ import annotations

from aiohttp import web

from shoal import errors
from shoal.controller.dockerapi import context, filters, mapping, server
from shoal.v1 import objects_pb2, types_pb2

#: Docker's desired-state filter values and the Shoal states each stands for.
DESIRED = {
    "running": (types_pb2.RUNNING, types_pb2.READY),
    "shutdown": (types_pb2.SHUTDOWN, types_pb2.COMPLETE, types_pb2.REMOVE),
    "accepted": (types_pb2.ACCEPTED,),
}
FILTERS = ("id", "name", "service", "node", "desired-state", "label", "_up-to-date")


def task_name(t: objects_pb2.Task) -> str:
    """`<service>.<slot>`, or `<service>.<node ID>` for a global service's task, as Docker names tasks."""
    return f"{t.service_name}.{t.slot or t.node_id}"


async def _resolve(ctx: context.Context, kind: str, refs: list[str]) -> list[objects_pb2.Service | objects_pb2.Node]:
    """The objects named by a filter's values; a value that names nothing matches nothing."""
    found: list[objects_pb2.Service | objects_pb2.Node] = []
    for ref in refs:
        try:
            if kind == "service":
                found.append((await ctx.control.get_service(ref)).service)
            else:
                found.append((await ctx.control.get_node(ref)).node)
        except errors.NotFound:
            continue
    return found


async def list_tasks(ctx: context.Context, f: filters.Filters) -> list[objects_pb2.Task]:
    """The tasks that match Docker's filters."""
    desired: list[int] = []
    for value in f.get("desired-state", ()):
        if value not in DESIRED:
            raise errors.InvalidArgument(f"Invalid task desired state filter: {value!r}")
        desired.extend(DESIRED[value])
    services: dict[str, objects_pb2.Service] | None = None
    if "service" in f:
        services = {s.id: s for s in await _resolve(ctx, "service", f["service"])}  # type: ignore[misc]
        if not services:
            return []
    elif {"label", "_up-to-date"} & f.keys():
        services = {s.id: s for s in (await ctx.control.list_services()).services}
    node_ids: list[str] = []
    if "node" in f:
        node_ids = [n.id for n in await _resolve(ctx, "node", f["node"])]
        if not node_ids:
            return []
    reply = await ctx.control.list_tasks(
        service_ids=list(services) if "service" in f and services else (),
        node_ids=node_ids,
        desired_states=desired,  # type: ignore[arg-type]
    )
    up_to_date = f.get("_up-to-date", ["false"])[-1].lower() in ("1", "true")
    out = []
    for t in reply.tasks:
        svc = services.get(t.service_id) if services is not None else None
        if services is not None and svc is None:
            continue
        if svc is not None and not filters.labels(f, "label", svc.spec.labels):
            continue
        if up_to_date and svc is not None and t.spec_version != svc.spec_version:
            continue
        if filters.prefix(f, "id", t.id) and filters.prefix(f, "name", task_name(t)):
            out.append(t)
    return out


def add_routes(app: web.Application, ctx: context.Context) -> None:
    async def list_(request: web.Request) -> web.Response:
        f = filters.parse(request.query.get("filters"), FILTERS)
        body = mapping.tasks_json(await list_tasks(ctx, f))
        return web.Response(body=body, content_type="application/json")

    async def inspect(request: web.Request) -> web.Response:
        return server.json_response(mapping.task((await ctx.control.get_task(request.match_info["id"])).task))

    app.router.add_get(server.route("/tasks"), list_)
    app.router.add_get(server.route("/tasks/{id}"), inspect)
