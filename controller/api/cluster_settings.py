"""Control API: the cluster's settings (task history, automatic rebalancing).

A read-modify-write like a service update: the caller sends every setting
back with the version of the cluster object it read, so two administrators
cannot silently undo each other's change. The reaper and the orchestrator
read the settings from the cluster object in the store.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from shoal import errors
from shoal.controller.api.base import Handlers, check_version
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.v1 import control_pb2, objects_pb2

log = logging.getLogger(__name__)

#: Finished tasks kept per slot, at most: more would only slow every pass over a service's tasks.
MAX_TASK_HISTORY = 1000


class ClusterSettingsHandlers(Handlers):
    """UpdateCluster."""

    @handle
    async def UpdateCluster(  # noqa: N802
        self, request: control_pb2.UpdateClusterRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.UpdateClusterResponse:
        if request.task_history_limit > MAX_TASK_HISTORY:
            raise errors.InvalidArgument(f"task history must be <= {MAX_TASK_HISTORY} (negative keeps every task)")
        term = self._leadership.require()
        cluster = term.cache.cluster
        if cluster is None:
            raise errors.Unavailable("the cluster object is not loaded yet")
        check_version("cluster", cluster.id, request.version, cluster.meta.version)
        new = objects_pb2.Cluster()
        new.CopyFrom(cluster)
        new.task_history_limit = request.task_history_limit
        new.auto_rebalance = request.auto_rebalance
        try:
            await term.writer.commit([w.put(new)])
        except errors.Conflict:
            raise errors.Conflict("the cluster settings changed meanwhile; read them again") from None
        log.info(
            "cluster settings: task history %d, auto-rebalance %s",
            new.task_history_limit,
            "on" if new.auto_rebalance else "off",
        )
        return control_pb2.UpdateClusterResponse(cluster=term.cache.cluster)
