"""Fixtures for integration tests: etcd, dockerd and the registry once per session; a cluster per test."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.integration import harness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with harness.etcd_server(tmp_path_factory.mktemp("etcd")) as url:
        yield url


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    harness.check_docker()
    with harness.registry_with_image(tmp_path_factory.mktemp("registry")) as ref:
        yield ref


@pytest.fixture
def cluster(tmp_path: pathlib.Path, etcd_url: str, request: pytest.FixtureRequest) -> Iterator[harness.Cluster]:
    """A controller with three agents (n1..n3), all READY."""
    c = harness.Cluster(tmp_path, etcd_url)
    try:
        c.start_controller()
        for name in ("n1", "n2", "n3"):
            c.start_agent(name)
        c.wait_ready("n1", "n2", "n3")
        yield c
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(c.dump_logs())
        c.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
