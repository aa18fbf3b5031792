"""Test-wide options: integration tests need real etcd, dockerd and a registry.

`pytest` runs everything; `pytest -m "not integration"` runs the unit tests
alone. Integration tests never skip themselves when a dependency is missing:
a missing etcd or dockerd is a failure with a message that says what to install.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Slow, real-process tests run after the unit tests.
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)
