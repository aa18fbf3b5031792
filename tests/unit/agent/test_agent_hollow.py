"""The hollow executor and `swarmd hollow`'s fleet: simulated containers under the production agent."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_dispatcher import FakeDispatcher, complete
from agent_fakes import NODE_ID, make_task, wait_until
from agent_tls import Cluster, Endpoints, FakeCA, serving_controller

from shoal import states
from shoal.agent import hollow as hollow_cmd
from shoal.agent.executor import base, hollow
from shoal.agent.settings import AgentSettings


def test_delays_parse_and_draw_within_their_bounds() -> None:
    rng = random.Random(1)
    assert hollow.Delay.parse("0").draw(rng) == 0
    assert hollow.Delay.parse("0.5").draw(rng) == 0.5
    assert all(0.3 <= hollow.Delay.parse("uniform:0.3,1.3").draw(rng) <= 1.3 for _ in range(100))
    assert all(hollow.Delay.parse("lognormal:0.5,0.4").draw(rng) > 0 for _ in range(100))
    assert str(hollow.Delay.parse("uniform:0.3,1.3")) == "uniform:0.3,1.3"
    for bad in ("-1", "uniform:2,1", "lognormal:0,1", "gamma:1,2", "uniform:1", "x"):
        with pytest.raises(ValueError):
            hollow.Delay.parse(bad)


async def test_a_hollow_container_lives_like_a_real_one() -> None:
    executor = hollow.HollowExecutor()
    description = await executor.describe()
    assert description.executor == "hollow" and description.engine.engine_version == "hollow"
    task = make_task()
    ctlr = executor.controller(task)
    assert await ctlr.inspect() is None
    container_id = await ctlr.prepare()
    assert await ctlr.prepare() == container_id  # idempotent: the same container
    await ctlr.start()
    await ctlr.start()
    state = await ctlr.inspect()
    assert state is not None and state.running and state.container_id == container_id
    (summary,) = await executor.list_containers(NODE_ID)
    assert (summary.task_id, summary.running) == (task.id, True)
    assert await executor.list_containers("another-node") == []
    waiting = asyncio.ensure_future(ctlr.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    await ctlr.shutdown()
    assert (await waiting).exit_code == 0
    await ctlr.remove()
    await ctlr.remove()
    assert await ctlr.inspect() is None and await executor.list_containers(NODE_ID) == []


async def test_a_failure_rate_of_one_fails_every_start() -> None:
    executor = hollow.HollowExecutor(hollow.HollowSettings(failure_rate=1.0))
    ctlr = executor.controller(make_task())
    await ctlr.prepare()
    with pytest.raises(base.PermanentError, match="simulated"):
        await ctlr.start()


@pytest.fixture
async def controller(cluster: Cluster) -> AsyncIterator[tuple[Endpoints, FakeDispatcher, FakeCA]]:
    dispatcher, ca = FakeDispatcher(), FakeCA(cluster)
    async with serving_controller(cluster.controller(), dispatcher=dispatcher, ca=ca) as endpoints:
        yield endpoints, dispatcher, ca


def base_settings(endpoints: Endpoints, ca: FakeCA, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        controllers=(endpoints.addr,), join_addr=endpoints.join_addr, join_token=ca.token, node_name="hollow",
        state_dir=tmp_path / "hollow", labels={"tier": "gold"}, log_level="warning",
    )


async def test_each_hollow_node_joins_with_its_own_certificate_and_serves_nothing(
    controller: tuple[Endpoints, FakeDispatcher, FakeCA], tmp_path: Path
) -> None:
    endpoints, dispatcher, ca = controller
    names = hollow_cmd.node_names("hollow", 1, 2)
    job = asyncio.create_task(hollow_cmd.serve(base_settings(endpoints, ca, tmp_path), hollow.HollowExecutor(), names))
    try:
        await wait_until(lambda: len({n for m, n in dispatcher.calls if m == "Session"}) == 2, what="two sessions")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert sorted(j.node_name for j in ca.joins) == names
    assert all(dict(j.labels) == {"tier": "gold"} for j in ca.joins)
    assert len(set(ca.issued)) == 2
    for request in dispatcher.session_requests:
        assert request.addr == "" and request.metrics_addr == ""  # no per-node servers
        assert request.description.executor == "hollow"
    for name in names:
        assert (tmp_path / "hollow" / name / "tls" / "cert.pem").exists()


async def test_a_hollow_node_runs_its_tasks_through_the_production_agent(
    controller: tuple[Endpoints, FakeDispatcher, FakeCA], tmp_path: Path
) -> None:
    endpoints, dispatcher, ca = controller
    task = make_task()
    dispatcher.assignment_scripts.append([complete(1, [task])])
    executor = hollow.HollowExecutor(hollow.HollowSettings(start_delay=hollow.Delay.parse("0.01")))
    job = asyncio.create_task(hollow_cmd.serve(base_settings(endpoints, ca, tmp_path), executor, ["hollow-1"]))
    try:
        await wait_until(lambda: states.RUNNING in dispatcher.states_of(task.id), what="RUNNING reported")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert dispatcher.states_of(task.id) == sorted(dispatcher.states_of(task.id))
    assert executor.containers[task.id].running
