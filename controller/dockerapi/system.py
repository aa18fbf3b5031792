"""System endpoints: /_ping, /version, /info, /swarm, and /distribution.

These are what a Docker client asks first: the ping for the API version it
negotiates down to, /info for the Swarm section (`docker stack deploy` and
`docker node ls` need `ControlAvailable` and the cluster's counts), /version
for `docker version`.
"""

from __future__ import annotations

import os
import platform

from aiohttp import web

from shoal.controller.dockerapi import context, mapping, server

#: What `docker version` shows as the server's version: Shoal's own.
SHOAL_VERSION = "0.1.0"


def add_routes(app: web.Application, ctx: context.Context) -> None:
    async def ping(request: web.Request) -> web.Response:
        # The CLI reads the Swarm header (docker 23+) to know it talks to a manager.
        headers = {
            "Swarm": "active/manager",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
        }
        text = "" if request.method == "HEAD" else "OK"
        return web.Response(text=text, content_type="text/plain", headers=headers)

    async def version(request: web.Request) -> web.Response:
        details = {
            "ApiVersion": server.version_text(server.MAX_VERSION),
            "MinAPIVersion": server.version_text(server.MIN_VERSION),
            "Os": "linux",
            "Arch": _arch(),
        }
        return server.json_response(
            {
                "Platform": {"Name": "Shoal"},
                "Components": [{"Name": "Shoal controller", "Version": SHOAL_VERSION, "Details": details}],
                "Version": SHOAL_VERSION,
                "ApiVersion": details["ApiVersion"],
                "MinAPIVersion": details["MinAPIVersion"],
                "GitCommit": "",
                "GoVersion": f"python{platform.python_version()}",
                "Os": "linux",
                "Arch": details["Arch"],
                "KernelVersion": platform.release(),
            }
        )

    async def info(request: web.Request) -> web.Response:
        cluster = await ctx.control.get_cluster_info()
        nodes = (await ctx.control.list_nodes()).nodes
        leader = next((c for c in cluster.controllers if c.leader), None)
        swarm = {
            "NodeID": "",
            "NodeAddr": ctx.controller_addr,
            "LocalNodeState": "active",
            "ControlAvailable": True,
            "Error": "",
            "RemoteManagers": [{"NodeID": c.id, "Addr": c.addr} for c in cluster.controllers],
            "Nodes": len(nodes),
            "Managers": len(cluster.controllers),
            "Cluster": _cluster(cluster.cluster),
        }
        return server.json_response(
            {
                "ID": ctx.controller_id,
                "Name": ctx.controller_id,
                "ServerVersion": SHOAL_VERSION,
                "OperatingSystem": "Shoal",
                "OSType": "linux",
                "Architecture": _arch(),
                "KernelVersion": platform.release(),
                "NCPU": os.cpu_count() or 1,
                "MemTotal": _mem_total(),
                "Driver": "",
                "Containers": 0,
                "ContainersRunning": 0,
                "ContainersPaused": 0,
                "ContainersStopped": 0,
                "Images": 0,
                "Labels": [f"shoal.leader={leader.addr if leader else ''}"],
                "ExperimentalBuild": False,
                "Swarm": swarm,
                "Warnings": [],
            }
        )

    async def swarm(request: web.Request) -> web.Response:
        cluster = (await ctx.control.get_cluster_info()).cluster
        tokens = await ctx.control.get_join_tokens()
        return server.json_response(
            {
                **_cluster(cluster),
                "JoinTokens": {"Worker": tokens.worker, "Manager": tokens.controller},
                "RootRotationInProgress": False,
            }
        )

    async def distribution(request: web.Request) -> web.Response:
        # The CLI asks this to pin an image's digest; on an error it warns and creates the service with the
        # tag as given (its --resolve-image never path), which is what Shoal does.
        return server.error_response(
            501, f"Shoal does not resolve image digests: {request.match_info['name']} is used as given"
        )

    app.router.add_route("GET", server.route("/_ping"), ping)
    app.router.add_route("HEAD", server.route("/_ping"), ping)
    app.router.add_get(server.route("/version"), version)
    app.router.add_get(server.route("/info"), info)
    app.router.add_get(server.route("/swarm"), swarm)
    app.router.add_get(server.route("/distribution/{name:.+}/json"), distribution)


def _cluster(cluster: object) -> mapping.Json:
    from shoal.v1 import objects_pb2

    assert isinstance(cluster, objects_pb2.Cluster)
    history = cluster.task_history_limit
    return {
        "ID": cluster.id,
        "Version": {"Index": cluster.meta.version},
        "CreatedAt": mapping.timestamp(cluster.meta.created_at),
        "UpdatedAt": mapping.timestamp(cluster.meta.updated_at),
        "Spec": {
            "Name": "default",
            "Labels": {},
            "Orchestration": {"TaskHistoryRetentionLimit": history},
            "CAConfig": {"NodeCertExpiry": int(cluster.node_cert_validity.ToNanoseconds())},
        },
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "x86_64", "aarch64": "aarch64"}.get(machine, machine)


def _mem_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0
