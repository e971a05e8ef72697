"""Fault-suite selection: tests marked ``slow`` (the long variants of a fault whose short form
runs by default) are deselected unless a marker expression is given, e.g. ``pytest -m slow
tests/fault``. They are deselected, not skipped, so the default report stays honest."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from tests.stack import Ports, Stack, contiguous_free_ports


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


@pytest.fixture(scope="module")
def cluster3(stack: Stack) -> Iterator[Stack]:
    """A second stack on a 3-node KRaft cluster (RF 3, min.insync.replicas 2, unclean
    election off; the topic created by `sluice migrate`), sharing the session's PostgreSQL
    (own database) and state dir; its Kafka nodes are stopped at the end of the module."""
    base = contiguous_free_ports(6)
    ports = dataclasses.replace(
        Ports.free(), pg=stack.ports.pg, kafka=base, kafka_controller=base + 3
    )
    s = Stack(state_dir=stack.state_dir, ports=ports, brokers=3)
    try:
        s.ensure_server("kafka.sh")
        asyncio.run(s.create_database())
        s.run_cli(
            "migrate", SLUICE_KAFKA_REPLICATION_FACTOR="3", SLUICE_KAFKA_MIN_INSYNC_REPLICAS="2"
        )
        for service in ("writer", "api", "ingest"):
            s.start(service)
        yield s
    finally:
        s.stop_services()
        s.stop_servers()
