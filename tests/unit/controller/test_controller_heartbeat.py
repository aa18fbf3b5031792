"""Heartbeat deadlines: expiry, forgetting, jittered periods."""

from __future__ import annotations

from shoal.controller.dispatcher import heartbeat


def test_a_node_past_its_deadline_expires_once() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    hb.beat("late", grace=-1.0)  # a deadline already in the past
    hb.beat("alive")
    assert hb.expired() == ["late"]
    assert not hb.watched("late")
    assert hb.watched("alive")
    assert hb.expired() == []


def test_a_beat_moves_the_deadline_forward() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    hb.beat("n1", grace=-1.0)
    hb.beat("n1")
    assert hb.expired() == []
    assert hb.watched("n1")


def test_a_forgotten_node_never_expires() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    hb.beat("n1", grace=-1.0)
    hb.forget("n1")
    hb.forget("never-seen")
    assert hb.expired() == []
    assert not hb.watched("n1")


def test_the_period_is_jittered_within_ten_percent() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    periods = [hb.next_period() for _ in range(2000)]
    assert all(4.5 <= p <= 5.5 for p in periods)
    assert len(set(periods)) > 1
