"""Session-wide real services. Unit tests (tests/unit) never touch them; every other test
module gets the stack through fixtures. A service that cannot start fails the run loudly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import REPO, Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    state = REPO / ".state" / "test"
    state.mkdir(parents=True, exist_ok=True)
    s = Stack(state_dir=Path(state))
    try:
        s.ensure_server("pg.sh")
        s.ensure_server("kafka.sh")
        asyncio.run(s.create_database())
        s.run_cli("migrate")
        for service in ("writer", "api", "ingest", "front"):
            s.start(service)
        yield s
    finally:
        s.stop_services()
        s.stop_servers()


@pytest.fixture(scope="session")
def sluice_url(stack: Stack) -> str:
    """The single MLflow endpoint (front), as a user's MLFLOW_TRACKING_URI."""
    return stack.url("front")
