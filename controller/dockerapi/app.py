"""Putting the Docker API together: the routes on one app, served on the listeners given.

controller/main.py calls `run` with the controller's own certificate (to call
the Control API as a client, like any other) and an issuer for the TCP
listeners' server certificate; nothing else of the controller is needed.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from shoal import control_client, remotes, tls
from shoal.controller.dockerapi import context, files, nodes, server, services, streams, system, tasks

#: Deadline of each Control API call the Docker API makes (streams have none).
CALL_TIMEOUT = 30.0


def build(ctx: context.Context, cluster_id: Callable[[], str]) -> web.Application:
    """The app with every route."""

    def routes(app: web.Application) -> None:
        for module in (system, services, tasks, nodes, files, streams):
            module.add_routes(app, ctx)

    return server.make_app(routes, cluster_id)


@contextlib.asynccontextmanager
async def run(
    listen: Sequence[str],
    *,
    controller_addr: str,
    controller_id: str,
    cluster_id: str,
    client_bundle: tls.Bundle,
    server_bundle: Callable[[str], tls.Bundle],
    tls_dir: pathlib.Path,
) -> AsyncIterator[control_client.ControlClient]:
    """Serve the Docker API on `listen` until the context exits; yields its Control API client."""
    client = control_client.ControlClient(
        remotes.Remotes([controller_addr]), timeout=CALL_TIMEOUT, bundle=client_bundle
    )
    async with client:
        ctx = context.Context(control=client, controller_id=controller_id, controller_addr=controller_addr)
        app = build(ctx, lambda: cluster_id)
        async with server.serve(app, listen, server_bundle=server_bundle, tls_dir=tls_dir):
            yield client
