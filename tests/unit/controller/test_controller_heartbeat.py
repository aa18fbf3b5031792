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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fleet(monkeypatch, nodes: int) -> tuple[heartbeat.Heartbeats, Clock]:  # type: ignore[no-untyped-def]
    clock = Clock()
    monkeypatch.setattr(heartbeat.time, "monotonic", clock)
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0)
    for i in range(nodes):
        hb.beat(f"n{i}", grace=15.0)  # as at the start of a term: not an arrival
    return hb, clock


def beat_for(hb: heartbeat.Heartbeats, clock: Clock, node_ids: list[str], seconds: float) -> None:
    """Every node in `node_ids` beats each period for `seconds`."""
    for _ in range(int(seconds / hb.period)):
        clock.now += hb.period
        for n in node_ids:
            hb.beat(n)


def test_heartbeats_arrive_from_most_of_the_fleet(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hb, clock = fleet(monkeypatch, 20)
    beat_for(hb, clock, [f"n{i}" for i in range(18)], 20.0)  # two nodes died
    assert hb.arriving()


def test_too_few_heartbeats_arriving_is_the_controllers_fault(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hb, clock = fleet(monkeypatch, 20)
    beat_for(hb, clock, [f"n{i}" for i in range(20)], 15.0)
    assert hb.arriving()
    beat_for(hb, clock, [f"n{i}" for i in range(6)], 20.0)  # 70% silent at once: more likely us
    assert not hb.arriving()


def test_a_small_cluster_or_a_young_term_always_counts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hb, clock = fleet(monkeypatch, 3)
    clock.now += 30
    assert hb.arriving()  # three silent nodes: they are down, whatever the share
    hb, clock = fleet(monkeypatch, 20)
    clock.now += 5
    assert hb.arriving()  # not yet a grace since the term began: nothing to compare


def test_a_big_fleet_is_asked_for_no_more_than_the_rate() -> None:
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0, max_rate=250.0)
    hb.watch([f"n{i}" for i in range(1000)], 1.0)
    assert (hb.period, hb.grace) == (5.0, 15.0)  # 200/s: within the rate
    hb.watch([f"m{i}" for i in range(4000)], 1.0)
    assert (hb.period, hb.grace) == (20.0, 60.0)  # 5,000 nodes at 250/s
    assert all(18.0 <= hb.next_period() <= 22.0 for _ in range(100))
    hb.beat("n1")
    assert hb.watched("n1")


def test_a_new_term_gives_every_node_the_failover_grace_at_the_fleets_period(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    monkeypatch.setattr(heartbeat.time, "monotonic", clock)
    hb = heartbeat.Heartbeats(period=5.0, grace=15.0, max_rate=100.0)
    hb.watch([f"n{i}" for i in range(1000)], 2.0)  # period 10 s, grace 30 s, twice that
    clock.now += 59
    assert hb.expired() == []
    clock.now += 2
    assert len(hb.expired()) == 1000
