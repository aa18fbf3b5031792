"""Metrics counted where things happen: heartbeat lateness, unschedulable reasons, etcd revisions."""

from __future__ import annotations

import prometheus_client
from controller_fakes import DOWN, make_node, make_service

from shoal.controller import metrics
from shoal.controller.dispatcher import heartbeat
from shoal.controller.scheduler.filters import Pipeline
from shoal.controller.scheduler.nodeinfo import NodeInfo


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def test_a_heartbeat_after_its_period_is_observed_as_late_and_one_on_time_as_zero() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    before = sample("shoal_dispatcher_heartbeat_lateness_seconds_count")
    late_before = sample("shoal_dispatcher_heartbeat_lateness_seconds_bucket", {"le": "0.0"})
    hb.next_period("n1")  # due in about 5 s: arriving now is early, so 0 late
    hb.beat("n1")
    assert sample("shoal_dispatcher_heartbeat_lateness_seconds_count") == before + 1
    assert sample("shoal_dispatcher_heartbeat_lateness_seconds_bucket", {"le": "0.0"}) == late_before + 1
    # A grace we set ourselves (failover) is not an arrival.
    hb.next_period("n1")
    hb.beat("n1", grace=30.0)
    assert sample("shoal_dispatcher_heartbeat_lateness_seconds_count") == before + 1


def test_unschedulable_reasons_are_one_word() -> None:
    spec = make_service(constraints=["node.labels.zone==east"]).spec.task
    nodes = [NodeInfo(make_node("n1")), NodeInfo(make_node("n2")), NodeInfo(make_node("n3", state=DOWN))]
    pipeline = Pipeline(spec)
    assert pipeline.eligible(nodes) == []
    assert pipeline.reason(len(nodes)) == "constraint"
    assert pipeline.reason(0) == "no_nodes"
    metrics.set_unschedulable({"constraint": 2})
    assert sample("shoal_scheduler_unschedulable_tasks", {"reason": "constraint"}) == 2
    assert sample("shoal_scheduler_unschedulable_tasks", {"reason": "memory"}) == 0
    metrics.set_unschedulable({})
    assert sample("shoal_scheduler_unschedulable_tasks", {"reason": "constraint"}) == 0


def test_the_etcd_revision_only_moves_forward() -> None:
    metrics.observe_revision(10**9)
    metrics.observe_revision(5)
    assert metrics.etcd_revision() == 10**9
