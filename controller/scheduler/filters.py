"""The filter pipeline: which nodes can take a task, and why the others cannot.

Filters run in order; the first that refuses a node is the one blamed for it,
so the explanation names each filter and how many nodes it excluded, e.g.
"no suitable node (1 node not ready; 2 nodes insufficient memory)". A task
made for one node (a global service's) is checked against that node only,
and `refusal` says what that node lacks.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable

from shoal import units
from shoal.controller import constraint
from shoal.controller.scheduler.nodeinfo import NodeInfo, published
from shoal.v1 import types_pb2


@dataclasses.dataclass(frozen=True)
class Filter:
    """A named node check, with the phrase that explains a refusal."""

    name: str
    explain: str
    check: Callable[[NodeInfo], bool]
    #: True if placing a task on a node can change the answer (resources, ports, tasks per node).
    dynamic: bool = False


def pipeline(spec: types_pb2.TaskSpec, service_id: str = "") -> list[Filter]:
    """The filters for one task spec of a service, cheapest first."""
    res = spec.resources.reservations
    filters = [
        Filter("ready", "not ready", lambda n: n.ready),
        Filter("availability", "not available for new tasks (paused or drained)", lambda n: n.active),
    ]
    if res.nano_cpus:
        filters.append(Filter("cpu", "insufficient CPU", lambda n: n.free_cpu >= res.nano_cpus, True))
    if res.memory_bytes:
        filters.append(Filter("memory", "insufficient memory", lambda n: n.free_memory >= res.memory_bytes, True))
    ports = published(spec)
    if ports:
        names = ", ".join(f"{p}/{proto}" for p, proto in ports)
        filters.append(
            Filter("ports", f"host port {names} already in use", lambda n: not any(p in n.ports for p in ports), True)
        )
    for c in constraint.parse_all(list(spec.placement.constraints)):
        filters.append(Filter("constraint", f"constraint {c} not met", _meets(c)))
    limit = spec.placement.max_replicas
    if limit:
        filters.append(
            Filter(
                "max_replicas",
                f"already running the maximum of {limit} task{'s' if limit != 1 else ''} of the service per node",
                lambda n: n.by_service[service_id] < limit,
                True,
            )
        )
    return filters


class Pipeline:
    """The filters for one task spec, with a tally of refusals for the explanation."""

    def __init__(self, spec: types_pb2.TaskSpec, service_id: str = "") -> None:
        self.filters = pipeline(spec, service_id)
        self._static = [f for f in self.filters if not f.dynamic]
        self._dynamic = [f for f in self.filters if f.dynamic]
        self.refused: collections.Counter[str] = collections.Counter()
        #: The same tally by filter name: a bounded value for metrics.
        self.refused_by: collections.Counter[str] = collections.Counter()
        self._spec = spec

    def accepts(self, info: NodeInfo) -> bool:
        """True if every filter accepts the node; otherwise tally the first refusal."""
        for f in self.filters:
            if not f.check(info):
                self.refused[f.explain] += 1
                self.refused_by[f.name] += 1
                return False
        return True

    def still_fits(self, info: NodeInfo) -> bool:
        """After a placement on a node that passed every filter: does it take another task of the spec?

        Only the filters that a placement can change are asked again; the others answered this pass already.
        """
        return all(f.check(info) for f in self._dynamic)

    def refusal(self, info: NodeInfo) -> Filter | None:
        """The first filter that refuses the node, or None if it fits (nothing is tallied)."""
        return next((f for f in self.filters if not f.check(info)), None)

    def explain_node(self, info: NodeInfo, refused: Filter) -> str:
        """Why a task made for this node (a global service's) cannot run there."""
        return f"node {info.node.name or info.node.id} cannot take the task: {refused.explain}{self._wants()}"

    def eligible(self, nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
        """The nodes that pass every filter (the tally is reset first)."""
        self.refused.clear()
        self.refused_by.clear()
        return [n for n in nodes if self.accepts(n)]

    def static_key(self) -> tuple[str, ...]:
        """What the filters a placement cannot change depend on: specs with equal keys accept the same nodes."""
        return tuple(self._spec.placement.constraints)

    def statically_eligible(self, nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
        """The nodes that pass the filters a placement cannot change (nothing is tallied)."""
        static = self._static
        return [n for n in nodes if all(f.check(n) for f in static)]

    def fits_now(self, candidates: list[NodeInfo]) -> list[NodeInfo]:
        """Of statically eligible nodes, those the filters a placement changes accept too (nothing is tallied)."""
        dynamic = self._dynamic
        return [n for n in candidates if all(f.check(n) for f in dynamic)] if dynamic else candidates

    def reason(self, total: int) -> str:
        """Why no node fits, as one word: no_nodes, the filter that excluded the most nodes, or full."""
        if total == 0:
            return "no_nodes"
        most = self.refused_by.most_common(1)
        return most[0][0] if most else "full"

    def explain(self, total: int) -> str:
        """Why no node fits, naming each filter and the number of nodes it excluded."""
        if total == 0:
            return "no suitable node (the cluster has no nodes)"
        parts = [f"{n} node{'s' if n != 1 else ''} {reason}" for reason, n in self.refused.most_common()]
        return f"no suitable node ({'; '.join(parts) or 'every node is full'}{self._wants()})"

    def _wants(self) -> str:
        res = self._spec.resources.reservations
        detail = []
        if res.nano_cpus:
            detail.append(f"{res.nano_cpus / 1e9:g} CPU")
        if res.memory_bytes:
            detail.append(units.format_size(res.memory_bytes))
        return f"; the task reserves {' and '.join(detail)}" if detail else ""


def _meets(c: constraint.Constraint) -> Callable[[NodeInfo], bool]:
    """The filter's test for one placement constraint."""
    return lambda n: c.matches(n.node)
