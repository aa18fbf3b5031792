"""Facts about a service's mode that every layer needs: its name, a job's iteration, the replica counts.

The orchestrators act on them; the API (`service ls`) and the metrics show
them. Kept here, below all of those, so that they agree without importing
each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from shoal import states
from shoal.v1 import objects_pb2

JOB_MODES = ("replicated_job", "global_job")


def mode_of(service: objects_pb2.Service) -> str:
    """The spec's mode field: "replicated" (also when unset), "global", "replicated_job" or "global_job"."""
    return service.spec.WhichOneof("mode") or "replicated"


def iteration(service: objects_pb2.Service) -> int:
    """A job's current iteration: its spec version, which a forced update (or a new task spec) moves on."""
    return service.spec_version


def job_progress(service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task]) -> tuple[int, int]:
    """(completed, wanted) in the current iteration: slots for a replicated job, nodes for a global one."""
    current = [t for t in tasks if t.spec_version == iteration(service) and t.desired_state < states.REMOVE]
    if mode_of(service) == "replicated_job":
        total = int(service.spec.replicated_job.total_completions)
        done = {t.slot for t in current if t.status.state == states.COMPLETE and 1 <= t.slot <= total}
        return len(done), total
    done_nodes = {t.node_id for t in current if t.status.state == states.COMPLETE}
    wanted = {t.node_id for t in current if t.desired_state <= states.RUNNING}
    return len(done_nodes), len(wanted | done_nodes)


@dataclasses.dataclass(frozen=True)
class Counts:
    """What `service ls` shows: running / desired, and for jobs completed / completions."""

    running: int
    desired: int
    completed: int = 0
    completions: int = 0


def counts(service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task]) -> Counts:
    """Running and desired tasks of a service in any mode, and a job's completions.

    Desired is the replica count for a replicated service; for a global service
    the tasks meant to run; for a job the tasks of its current iteration meant
    to run that have not finished, so a job that completed shows 0/0 rather
    than looking short of replicas.
    """
    tasks = list(tasks)
    running = sum(1 for t in tasks if t.status.state == states.RUNNING and t.desired_state == states.RUNNING)
    mode = mode_of(service)
    if mode == "replicated":
        return Counts(running, max(0, service.spec.replicated.replicas))
    if mode == "global":
        return Counts(running, sum(1 for t in tasks if t.desired_state <= states.RUNNING))
    desired = sum(
        1
        for t in tasks
        if t.spec_version == iteration(service)
        and t.desired_state <= states.RUNNING
        and t.status.state < states.COMPLETE
    )
    completed, wanted = job_progress(service, tasks)
    return Counts(running, desired, completed, wanted)
