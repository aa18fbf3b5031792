"""Control API: tasks, read-only (tasks are written by the control loops and the dispatcher)."""

from __future__ import annotations

from typing import Any

import grpc

from shoal.controller.api import refs
from shoal.controller.api.base import Handlers
from shoal.controller.rpcerrors import handle
from shoal.v1 import control_pb2, objects_pb2


class TaskHandlers(Handlers):
    """GetTask, ListTasks."""

    @handle
    async def GetTask(  # noqa: N802
        self, request: control_pb2.GetTaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.GetTaskResponse:
        cache = self._leadership.require().cache
        return control_pb2.GetTaskResponse(task=refs.resolve("task", request.ref, cache.tasks))

    @handle
    async def ListTasks(  # noqa: N802
        self, request: control_pb2.ListTasksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ListTasksResponse:
        cache = self._leadership.require().cache
        if request.service_ids:
            candidates = [t for sid in request.service_ids for t in cache.tasks_of_service(sid)]
        elif request.node_ids:
            candidates = [t for nid in request.node_ids for t in cache.tasks_of_node(nid)]
        else:
            candidates = list(cache.tasks.values())
        nodes = set(request.node_ids)
        desired = set(request.desired_states)
        tasks = [
            t for t in candidates if (not nodes or t.node_id in nodes) and (not desired or t.desired_state in desired)
        ]
        tasks.sort(key=_listing_order)
        return control_pb2.ListTasksResponse(tasks=tasks)


def _listing_order(task: objects_pb2.Task) -> tuple[str, int, int, int]:
    """By service, slot, newest first (the timestamp's fields, not ToNanoseconds: 50,000 Python calls fewer)."""
    stamp = task.status.timestamp
    return (task.service_name, task.slot, -stamp.seconds, -stamp.nanos)
