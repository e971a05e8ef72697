"""Session-wide real services. Unit tests (tests/unit) never touch them; every other test
module gets the stack through fixtures. A service that cannot start fails the run loudly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Generator, Iterator

import pytest

from tests.stack import REPO, Ports, Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    ports = Ports.free()
    state = REPO / ".state" / "test" / f"session-{ports.pg}"
    state.mkdir(parents=True, exist_ok=True)
    s = Stack(state_dir=state, ports=ports)
    failed = True
    try:
        s.ensure_server("pg.sh")
        s.ensure_server("kafka.sh")
        asyncio.run(s.create_database())
        s.run_cli("migrate")
        for service in ("writer", "api", "ingest", "front"):
            s.start(service)
        yield s
        failed = False
    finally:
        s.stop_services()
        s.stop_servers()
        if not failed and os.environ.get("SLUICE_KEEP_TEST_STATE") != "1":
            s.remove_state()


@pytest.fixture(scope="session")
def sluice_url(stack: Stack) -> str:
    """The single MLflow endpoint (front), as a user's MLFLOW_TRACKING_URI."""
    return stack.url("front")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true a skipped test is a failure: a test that cannot run must say so loudly."""
    report: pytest.TestReport = yield
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (not allowed): {report.longrepr!r}"
    return report
