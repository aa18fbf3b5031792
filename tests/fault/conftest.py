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
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    # A short root: the lab's paths end up in socket paths.
    root = pathlib.Path(tmp_path_factory.mktemp("lab"))
    lab = make_lab(root)
    try:
        lab.up()
        yield FaultLab(lab)
    finally:
        lab.down()
