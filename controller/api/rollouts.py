"""Control API: rollouts that are not spec changes: rolling back to the previous spec, and rebalancing.

Each only writes the service with its new update status (and, for a
rollback, the restored spec); the orchestrator sees the write and replaces or
moves the tasks, a few at a time, with the service's settings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from shoal import errors
from shoal.controller import rollout
from shoal.controller.api import refs
from shoal.controller.api.base import Handlers, check_version
from shoal.controller.rpcerrors import handle
from shoal.controller.store import writer as w
from shoal.v1 import control_pb2, objects_pb2, types_pb2

log = logging.getLogger(__name__)

UpdateStatus = types_pb2.UpdateStatus


class RolloutHandlers(Handlers):
    """RollbackService, RebalanceService."""

    @handle
    async def RollbackService(  # noqa: N802
        self, request: control_pb2.RollbackServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.UpdateServiceResponse:
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        name = service.spec.name
        if request.version:
            check_version("service", name, request.version, service.meta.version)
        if service.spec.WhichOneof("mode") not in rollout.ROLLING_MODES:
            raise errors.FailedPrecondition(f'service "{name}" is a job: run it again with `service update --force`')
        if not service.HasField("previous_spec"):
            raise errors.FailedPrecondition(f'service "{name}" has no previous spec to roll back to')
        new = rollout.rolled_back(service, now=time.time(), message="rollback requested")
        await _write(term, new, name)
        log.info("service %s (%s): rollback to spec version %d requested", name, service.id, new.spec_version)
        return control_pb2.UpdateServiceResponse(service=term.cache.services[service.id])

    @handle
    async def RebalanceService(  # noqa: N802
        self, request: control_pb2.RebalanceServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.UpdateServiceResponse:
        term = self._leadership.require()
        service = refs.resolve("service", request.ref, term.cache.services, term.cache.service_by_name)
        name = service.spec.name
        if service.spec.WhichOneof("mode") != "replicated":
            raise errors.FailedPrecondition(f'service "{name}": only replicated services are rebalanced')
        state = service.update_status.state
        if state in rollout.UPDATE_IN_PROGRESS or state in rollout.UPDATE_PAUSED:
            word = "in progress" if state in rollout.UPDATE_IN_PROGRESS else "paused"
            raise errors.FailedPrecondition(
                f'service "{name}": cannot rebalance while an update is {word}; it must complete first '
                "(`service update` resumes a paused one, `service rollback` undoes it)"
            )
        new = started_rebalance(service, time.time(), "rebalance requested")
        await _write(term, new, name)
        log.info("service %s (%s): rebalance requested", name, service.id)
        return control_pb2.UpdateServiceResponse(service=term.cache.services[service.id])


def started_rebalance(service: objects_pb2.Service, now: float, message: str) -> objects_pb2.Service:
    """A copy of `service` whose rebalance starts now."""
    new = objects_pb2.Service()
    new.CopyFrom(service)
    new.update_status.CopyFrom(rollout.status(UpdateStatus.REBALANCE_STARTED, now, message))
    new.rebalanced_at.CopyFrom(new.update_status.started_at)
    return new


async def _write(term, service: objects_pb2.Service, name: str) -> None:  # type: ignore[no-untyped-def]
    try:
        await term.writer.commit([w.put(service)])
    except errors.Conflict:
        raise errors.Conflict(f'service "{name}" changed meanwhile; try again') from None
