"""Fixtures of the fault suite: a fresh lab of real hosts per scenario, always taken down."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.fault.faultlab import FaultLab, make_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/fault/" in str(item.fspath):
            item.add_marker(pytest.mark.fault)


@pytest.fixture
def flab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[FaultLab]:
    root = pathlib.Path(tmp_path_factory.mktemp("lab"))
    lab = make_lab(root)
    try:
        lab.up()
        yield FaultLab(lab)
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for log in sorted((root / "logs").glob("*.log")):
                print(f"===== {log.name} =====\n{log.read_text(errors='replace')[-4000:]}")
        lab.down()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
