"""Choosing among the nodes that fit: spread by the service's tasks, by load, and by placement preferences.

Without preferences, a task goes to the node with the fewest tasks of its
service, then the fewest tasks overall (a heap: one pass places a thousand
tasks cheaply). With `--placement-pref spread=node.labels.zone`, the nodes
are first grouped by the label's value and the task goes to the group that
holds the fewest tasks of the service (counted on every node with that value,
not only those that fit now), then to the best node in it; several
preferences nest (zone, then rack within the zone). Nodes without the label
take tasks only when no labelled node can: SwarmKit treats them as one more
group, which users report as tasks landing on unlabelled nodes
(moby/moby#35433).
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable, Sequence

from shoal.controller import constraint
from shoal.controller.scheduler.nodeinfo import NodeInfo


class Chooser:
    """Hands out nodes for the tasks of one (service, spec) group, one at a time."""

    def __init__(self, service_id: str, candidates: Sequence[NodeInfo]) -> None:
        self.service_id = service_id

    def next(self) -> NodeInfo | None:
        """The node for the next task, or None if no node takes it."""
        raise NotImplementedError

    def placed(self, info: NodeInfo, still_fits: bool) -> None:
        """Record a task placed on `info` (already counted on it); `still_fits` says if it takes another."""
        raise NotImplementedError


#: A group of few tasks looks at a sample of the candidates when there are more than this many
#: (kube-scheduler's percentageOfNodesToScore does the same): a heap of 5,000 nodes cost about 3 ms
#: a group, so a burst of one-task services at 5,000 nodes held the controller's loop for seconds.
SAMPLE_ABOVE = 1000
#: Sampled nodes per task of the group, and at least this many.
SAMPLE_PER_TASK = 4
SAMPLE_MIN = 100


def sample_size(wanted: int) -> int:
    """How many candidates a group of `wanted` tasks weighs when it samples."""
    return max(SAMPLE_MIN, SAMPLE_PER_TASK * wanted)


class LeastLoaded(Chooser):
    """Fewest tasks of the service, then fewest tasks, then node ID.

    With many candidates and a small group, the tasks go to the best nodes of
    a sample of them (`start` rotates it over the cluster from pass to pass).
    Spreading by service stays exact: when the sample has no node left
    without a task of the service (or no node left at all), every candidate
    is considered. Only the second rule, the fewest tasks overall, is judged
    within the sample.
    """

    def __init__(self, service_id: str, candidates: Sequence[NodeInfo], wanted: int = 0, start: int = 0) -> None:
        super().__init__(service_id, candidates)
        size = sample_size(wanted)
        #: The candidates left out of the sample, as (all candidates, sample start, sample size).
        self._unsampled: tuple[Sequence[NodeInfo], int, int] | None = None
        n = len(candidates)
        if wanted and n > SAMPLE_ABOVE and 2 * size <= n:
            start %= n
            self._unsampled = (candidates, start, size)
            # Slices, not a rotated copy: copying 5,000 references cost as much as the sample's keys.
            sample = candidates[start : start + size]
            candidates = [*sample, *candidates[: size - len(sample)]] if len(sample) < size else sample
        self._heap = [self._key(n) for n in candidates]
        heapq.heapify(self._heap)

    def _key(self, n: NodeInfo) -> tuple[int, int, str, NodeInfo]:
        return (n.by_service.get(self.service_id, 0), n.tasks, n.id, n)

    def next(self) -> NodeInfo | None:
        if self._unsampled is not None and (not self._heap or self._heap[0][0] > 0):
            candidates, start, size = self._unsampled
            self._unsampled = None
            end = start + size
            wrapped = end - len(candidates)  # sampled from the front too, when the sample went round
            rest = [*candidates[:start], *candidates[end:]] if wrapped <= 0 else candidates[wrapped:start]
            self._heap.extend(self._key(n) for n in rest)
            heapq.heapify(self._heap)
        return heapq.heappop(self._heap)[3] if self._heap else None

    def placed(self, info: NodeInfo, still_fits: bool) -> None:
        if still_fits:
            heapq.heappush(self._heap, self._key(info))


class Preferred(Chooser):
    """Spread over the values of node labels, level by level, then the least loaded node."""

    def __init__(
        self, service_id: str, candidates: Sequence[NodeInfo], labels: Sequence[str], everyone: Iterable[NodeInfo]
    ) -> None:
        super().__init__(service_id, candidates)
        self._labels = list(labels)
        self._candidates = {n.id: n for n in candidates}
        self._everyone = list(everyone)

    def _path(self, info: NodeInfo) -> tuple[str | None, ...]:
        return tuple(constraint.label(info.node, key) for key in self._labels)

    def next(self) -> NodeInfo | None:
        pool = list(self._candidates.values())
        if not pool:
            return None
        # Tasks of the service per label path prefix, over every node known, fitting or not.
        counts: collections.Counter[tuple[str | None, ...]] = collections.Counter()
        for info in self._everyone:
            mine = info.by_service.get(self.service_id, 0)
            if mine:
                path = self._path(info)
                for depth in range(1, len(path) + 1):
                    counts[path[:depth]] += mine
        prefix: tuple[str | None, ...] = ()
        for depth in range(len(self._labels)):
            values = {self._path(n)[depth] for n in pool}
            labelled = sorted(v for v in values if v is not None)
            if labelled:
                best = min(labelled, key=lambda v: (counts[(*prefix, v)], v))
            else:
                best = None
            prefix = (*prefix, best)
            pool = [n for n in pool if self._path(n)[depth] == best]
        return min(pool, key=lambda n: (n.by_service.get(self.service_id, 0), n.tasks, n.id))

    def placed(self, info: NodeInfo, still_fits: bool) -> None:
        if not still_fits:
            self._candidates.pop(info.id, None)


def chooser(
    service_id: str,
    candidates: Sequence[NodeInfo],
    labels: Sequence[str],
    everyone: Iterable[NodeInfo],
    wanted: int = 0,
    start: int = 0,
) -> Chooser:
    """The chooser for a group of `wanted` tasks: by preferences when the spec has any."""
    if labels:
        return Preferred(service_id, candidates, labels, everyone)
    return LeastLoaded(service_id, candidates, wanted, start)


def preference_labels(descriptors: Iterable[str]) -> list[str]:
    """The label keys of a spec's spread preferences (validated when the spec was written)."""
    return [constraint.parse_spread(d) for d in descriptors]
