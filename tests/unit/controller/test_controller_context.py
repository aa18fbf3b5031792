"""The leadership term as the API servicers see it: published, withdrawn, and waited for while it starts."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from shoal import errors
from shoal.controller.context import Leadership, Term
from shoal.controller.leader import Election, LeaderInfo
from shoal.controller.settings import ControllerSettings


class FakeElection:
    def __init__(self, is_leader: bool) -> None:
        self.is_leader = is_leader
        self.leader: LeaderInfo | None = None


def leadership(is_leader: bool) -> Leadership:
    return Leadership(cast(Election, FakeElection(is_leader)), ControllerSettings(listen="127.0.0.1:4240"))


def term() -> Term:
    return Term(cache=cast(Any, object()), writer=cast(Any, object()))


async def test_a_follower_does_not_wait() -> None:
    lead = leadership(is_leader=False)
    start = time.monotonic()
    await lead.starting(timeout=5.0)
    assert time.monotonic() - start < 1.0
    with pytest.raises(errors.NotLeader):
        lead.require()


async def test_a_starting_leader_is_waited_for_until_its_term_is_published() -> None:
    lead = leadership(is_leader=True)
    waiter = asyncio.create_task(lead.starting(timeout=5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    published = term()
    lead.current = published
    await asyncio.wait_for(waiter, 1.0)
    assert lead.require() is published


async def test_a_term_that_does_not_start_in_time_is_refused_as_before() -> None:
    lead = leadership(is_leader=True)
    await asyncio.wait_for(lead.starting(timeout=0.05), 1.0)
    with pytest.raises(errors.NotLeader):
        lead.require()


async def test_a_withdrawn_term_is_waited_for_again() -> None:
    lead = leadership(is_leader=True)
    lead.current = term()
    lead.current = None
    waiter = asyncio.create_task(lead.starting(timeout=5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    lead.current = term()
    await asyncio.wait_for(waiter, 1.0)
