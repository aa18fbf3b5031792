"""Which changes the replicated orchestrator must plan a service for, and which it may skip.

At a thousand tasks a service, planning it costs milliseconds of the event
loop; the status reports of its tasks and label-only updates, which no plan
reads, need not cost that each.
"""

from __future__ import annotations

from shoal import states
from shoal.controller import rollout
from shoal.v1 import objects_pb2, types_pb2

UpdateStatus = types_pb2.UpdateStatus


def _band(state: int) -> int:
    """States `plan` cannot tell apart: waiting for a node; assigned but not yet starting; any other on its own."""
    if state == states.PENDING:
        return -1
    if states.ASSIGNED <= state < states.STARTING:
        return -2
    return state


def status_progress(old: objects_pb2.Task | None, new: objects_pb2.Task | None) -> bool:
    """True for a change `plan` cannot see: an agent's report (or a scheduler's note) that moves the
    task within a band of states that every rule treats alike, with nothing else changed that it reads.

    Every rule of `plan` and of the rollout compares a task's state with PENDING, ASSIGNED, STARTING,
    RUNNING or a final state, never with the steps in between (ACCEPTED, PREPARING, READY), so at a
    thousand tasks a service, the reports of tasks on their way to STARTING need not re-plan it: the
    pass that the next real change (or a timer) brings reads them from the cache anyway.
    """
    if old is None or new is None:
        return False
    return (
        old.desired_state == new.desired_state
        and old.node_id == new.node_id
        and old.spec_version == new.spec_version
        and _band(old.status.state) == _band(new.status.state)
    )


def labels_only(old: objects_pb2.Service | None, new: objects_pb2.Service | None) -> bool:
    """True if `new` differs from `old` in the service's labels only, besides what every update
    writes (its version, and the spec it replaced kept for a rollback).

    No plan reads those while the service is steady, so such an update need
    not re-plan it (Kubernetes' controllers skip metadata-only changes the same
    way): at a thousand tasks a service, a plan costs milliseconds of the
    event loop for every `service update --label-add`.
    """
    if old is None or new is None:
        return False
    a, b = objects_pb2.Service(), objects_pb2.Service()
    a.CopyFrom(old)
    b.CopyFrom(new)
    for service in (a, b):
        service.ClearField("meta")
        service.spec.ClearField("labels")
        service.ClearField("previous_spec")
        service.ClearField("previous_spec_version")
    return a == b


def steady(service: objects_pb2.Service, cluster: objects_pb2.Cluster | None) -> bool:
    """True if a task's own changes concern only its slot: no rollout or rebalance under way, none automatic."""
    state = service.update_status.state
    return (
        service.spec.WhichOneof("mode") == "replicated"
        and state not in rollout.UPDATE_IN_PROGRESS
        and state != UpdateStatus.REBALANCE_STARTED
        and not (cluster is not None and cluster.auto_rebalance)
    )
