"""The task reaper's choice: removed tasks once stopped or their node is lost, history per slot."""

from __future__ import annotations

import random

import pytest
from controller_fakes import DOWN, DRAIN, NOW, make_node, make_service, make_task, nodes_by_id

from shoal import states
from shoal.controller import reaper
from shoal.v1 import objects_pb2

SVC = make_service()
NODES = nodes_by_id(make_node("n1"), make_node("down", state=DOWN), make_node("drained", availability=DRAIN))


def ids(tasks: list[objects_pb2.Task]) -> set[str]:
    return {t.id for t in tasks}


@pytest.mark.parametrize(
    ("state", "node", "reaped"),
    [
        (states.RUNNING, "n1", False),
        (states.PREPARING, "n1", False),
        (states.RUNNING, "drained", False),
        (states.SHUTDOWN, "n1", True),
        (states.FAILED, "n1", True),
        (states.COMPLETE, "n1", True),
        (states.RUNNING, "down", True),
        (states.RUNNING, "gone", True),
        (states.PENDING, "", True),
        (states.NEW, "", True),
    ],
)
def test_removed_tasks_go_once_they_cannot_run(state: int, node: str, reaped: bool) -> None:
    task = make_task(SVC, 1, node=node, state=state, desired=states.REMOVE)
    assert ids(reaper.reapable([task], NODES, history=5)) == ({task.id} if reaped else set())


def test_running_and_stopping_tasks_are_never_history() -> None:
    running = make_task(SVC, 1)
    stopping = make_task(SVC, 1, desired=states.SHUTDOWN, state=states.RUNNING)
    ready = make_task(SVC, 2, desired=states.READY, state=states.PREPARING)
    assert reaper.reapable([running, stopping, ready], NODES, history=0) == []


def test_history_keeps_the_newest_n_finished_tasks_per_slot() -> None:
    finished = [
        make_task(SVC, 1, state=states.FAILED, desired=states.SHUTDOWN, status_at=NOW - 10 * i) for i in range(5)
    ]
    current = make_task(SVC, 1)
    shuffled = [*finished, current]
    random.Random(4).shuffle(shuffled)
    out = reaper.reapable(shuffled, NODES, history=2)
    # finished[4] is the oldest: the three oldest go, oldest first.
    assert [t.id for t in out] == [finished[4].id, finished[3].id, finished[2].id]


def test_history_is_counted_per_slot() -> None:
    slot1 = [make_task(SVC, 1, state=states.SHUTDOWN, desired=states.SHUTDOWN, status_at=NOW - i) for i in range(2)]
    slot2 = [make_task(SVC, 2, state=states.SHUTDOWN, desired=states.SHUTDOWN, status_at=NOW - i) for i in range(3)]
    out = reaper.reapable([*slot1, *slot2], NODES, history=2)
    assert ids(out) == {slot2[2].id}


def test_zero_history_deletes_every_finished_task() -> None:
    done = [make_task(SVC, 1, state=states.COMPLETE, desired=states.SHUTDOWN, status_at=NOW - i) for i in range(3)]
    assert ids(reaper.reapable(done, NODES, history=0)) == ids(done)


def test_negative_history_keeps_everything() -> None:
    done = [make_task(SVC, 1, state=states.COMPLETE, desired=states.SHUTDOWN, status_at=NOW - i) for i in range(9)]
    assert reaper.reapable(done, NODES, history=-1) == []


def test_removed_tasks_are_reaped_whatever_the_history() -> None:
    gone = make_task(SVC, 1, state=states.SHUTDOWN, desired=states.REMOVE)
    assert ids(reaper.reapable([gone], NODES, history=-1)) == {gone.id}


@pytest.mark.parametrize(
    ("state", "desired", "expected"),
    [
        (states.COMPLETE, states.RUNNING, True),
        (states.RUNNING, states.SHUTDOWN, False),
        (states.PENDING, states.SHUTDOWN, True),
        (states.PENDING, states.RUNNING, False),
        (states.ASSIGNED, states.SHUTDOWN, False),
    ],
)
def test_finished(state: int, desired: int, expected: bool) -> None:
    assert reaper.finished(make_task(SVC, 1, state=state, desired=desired)) is expected
