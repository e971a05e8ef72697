"""Fault-suite selection: tests marked ``slow`` (the long variants of a fault whose short form
runs by default) are deselected unless a marker expression is given, e.g. ``pytest -m slow
tests/fault``. They are deselected, not skipped, so the default report stays honest."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]
