"""Fault-suite fixtures: the 3-broker cluster and the fault proxy stacks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from tests.stack import Ports, Stack, contiguous_free_ports


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
