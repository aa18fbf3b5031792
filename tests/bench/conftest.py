"""Smoke runs of the control-plane benchmarks: each bench/ script at a size that takes seconds.

They start real processes (etcd, a controller, hollow agents), so they count as
integration tests; they check that each harness runs to the end and writes the
figures it promises, never the figures themselves (timing goals are for full runs).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/bench" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.bench)
