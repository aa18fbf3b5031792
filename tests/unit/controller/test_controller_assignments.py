"""A node's assignment set and the stream that keeps an agent's copy current."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import prometheus_client
import pytest
from controller_fakes import make_service, make_task

from shoal import errors, states
from shoal.controller.dispatcher import assignments
from shoal.controller.settings import DispatcherSettings
from shoal.v1 import dispatcher_pb2, objects_pb2

NODE = "n1"
SVC = make_service()
SETTINGS = DispatcherSettings(assignments_debounce=0.001)
COMPLETE = dispatcher_pb2.AssignmentsMessage.COMPLETE
INCREMENTAL = dispatcher_pb2.AssignmentsMessage.INCREMENTAL
Message = dispatcher_pb2.AssignmentsMessage


def changed(task: objects_pb2.Task, **fields: object) -> objects_pb2.Task:
    new = objects_pb2.Task()
    new.CopyFrom(task)
    for name, value in fields.items():
        if name == "state":
            new.status.state = value  # type: ignore[assignment]
        else:
            setattr(new, name, value)
    return new


async def next_message(stream: AsyncIterator[Message]) -> Message:
    async with asyncio.timeout(5):
        return await anext(stream)


def actions(msg: Message) -> dict[str, int]:
    return {c.task.id: c.action for c in msg.changes}


@pytest.mark.parametrize(
    ("state", "node", "member"),
    [
        (states.PENDING, NODE, False),
        (states.ASSIGNED, NODE, True),
        (states.RUNNING, NODE, True),
        (states.FAILED, NODE, True),
        (states.REJECTED, NODE, True),
        (states.ORPHANED, NODE, False),
        (states.RUNNING, "n2", False),
    ],
)
def test_in_set(state: int, node: str, member: bool) -> None:
    assert assignments.in_set(make_task(SVC, 1, node=node, state=state), NODE) is member


def test_a_missing_task_is_not_in_any_set() -> None:
    assert not assignments.in_set(None, NODE)


def test_agent_visible_changes() -> None:
    t = make_task(SVC, 1, state=states.ASSIGNED)
    assert assignments.agent_visible_change(t, changed(t, desired_state=states.SHUTDOWN))
    assert assignments.agent_visible_change(t, changed(t, spec_version=9))
    assert assignments.agent_visible_change(t, changed(t, node_id="n2"))
    pending = make_task(SVC, 1, state=states.PENDING, node="")
    assert assignments.agent_visible_change(pending, changed(pending, node_id=NODE, state=states.ASSIGNED))
    assert not assignments.agent_visible_change(t, changed(t, state=states.RUNNING))
    assert not assignments.agent_visible_change(t, changed(t, state=states.FAILED))


async def test_the_first_message_is_the_complete_in_set_assignment() -> None:
    mine = make_task(SVC, 1, state=states.RUNNING)
    unassigned = make_task(SVC, 2, node="", state=states.PENDING)
    other = make_task(SVC, 3, node="n2")
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msg = await next_message(stream.messages([mine, unassigned, other]))
    assert msg.type == COMPLETE
    assert (msg.applies_to, msg.results_in) == (0, 1)
    assert actions(msg) == {mine.id: assignments.UPDATE}
    assert msg.changes[0].task == mine


async def test_changes_are_coalesced_into_one_incremental_message() -> None:
    a = make_task(SVC, 1, state=states.RUNNING)
    b = make_task(SVC, 2, state=states.RUNNING)
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([a, b])
    await next_message(msgs)
    new = make_task(SVC, 3, node="", state=states.PENDING)
    assigned = changed(new, node_id=NODE, state=states.ASSIGNED)
    stream.change(None, new)  # not in the set yet: nothing
    stream.change(new, assigned)
    stream.change(a, changed(a, desired_state=states.SHUTDOWN))
    stopping = changed(a, desired_state=states.REMOVE)
    stream.change(changed(a, desired_state=states.SHUTDOWN), stopping)  # latest wins
    stream.change(b, None)  # deleted by the reaper
    msg = await next_message(msgs)
    assert msg.type == INCREMENTAL
    assert (msg.applies_to, msg.results_in) == (1, 2)
    assert actions(msg) == {assigned.id: assignments.UPDATE, a.id: assignments.UPDATE, b.id: assignments.REMOVE}
    by_id = {c.task.id: c.task for c in msg.changes}
    assert by_id[a.id].desired_state == states.REMOVE


async def test_each_message_is_counted_with_its_number_of_changes() -> None:
    def sent() -> tuple[float, float]:
        registry = prometheus_client.REGISTRY
        name = "shoal_dispatcher_assignment_batch_size"
        return registry.get_sample_value(f"{name}_count") or 0, registry.get_sample_value(f"{name}_sum") or 0

    a, b = make_task(SVC, 1, state=states.RUNNING), make_task(SVC, 2, state=states.RUNNING)
    before = sent()
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([a])
    await next_message(msgs)
    stream.change(None, b)
    stream.change(a, changed(a, desired_state=states.SHUTDOWN))
    await next_message(msgs)
    count, total = sent()
    assert (count - before[0], total - before[1]) == (2, 3)


async def test_status_only_changes_are_not_sent_back() -> None:
    a = make_task(SVC, 1, state=states.ASSIGNED)
    b = make_task(SVC, 2, state=states.RUNNING)
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([a, b])
    await next_message(msgs)
    stream.change(a, changed(a, state=states.RUNNING))
    stream.change(b, changed(b, state=states.FAILED))
    stream.change(b, changed(b, desired_state=states.SHUTDOWN))
    msg = await next_message(msgs)
    assert actions(msg) == {b.id: assignments.UPDATE}
    stream.change(a, changed(a, node_id="n2"))  # moved away: leaves this node's set
    msg = await next_message(msgs)
    assert actions(msg) == {a.id: assignments.REMOVE}
    assert (msg.applies_to, msg.results_in) == (2, 3)


async def test_a_task_leaving_the_set_by_orphaning_is_removed() -> None:
    a = make_task(SVC, 1, state=states.RUNNING)
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([a])
    await next_message(msgs)
    stream.change(a, changed(a, state=states.ORPHANED))
    assert actions(await next_message(msgs)) == {a.id: assignments.REMOVE}


async def test_close_ends_the_stream_with_the_given_error() -> None:
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([])
    await next_message(msgs)
    stream.change(None, make_task(SVC, 1, state=states.ASSIGNED))
    stream.close(errors.NotLeader(leader="10.0.0.2:4240"))
    with pytest.raises(errors.NotLeader) as info:
        await next_message(msgs)
    assert info.value.leader == "10.0.0.2:4240"


async def test_close_wakes_a_stream_waiting_for_changes() -> None:
    stream = assignments.AssignmentStream(NODE, SETTINGS)
    msgs = stream.messages([])
    await next_message(msgs)
    waiting = asyncio.ensure_future(next_message(msgs))
    await asyncio.sleep(0)  # let it start waiting (no I/O involved: one step reaches the wait)
    assert not waiting.done()
    stream.close(errors.Unavailable("session replaced"))
    with pytest.raises(errors.Unavailable, match="session replaced"):
        await waiting
