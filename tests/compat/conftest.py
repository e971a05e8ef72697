"""Fixtures and hooks of the differential suite.

Run it:
    .venv/bin/pytest tests/compat -p no:cacheprovider
        reference: a fresh `mlflow server` from scripts/mlflow-ref.sh (its own venv, a free port);
        target: `sluice_url` from tests/conftest.py (the Sluice stack).
    SLUICE_COMPAT_TARGET=http://127.0.0.1:5011 .venv/bin/pytest tests/compat ...
        target: any server at that URL instead, e.g. a second mlflow to validate the
        normalisation (`SLUICE_MLFLOW_REF_PORT=5011 scripts/mlflow-ref.sh start <dir>`).
    SLUICE_COMPAT_ALL=1 ...
        ignore implemented.txt and pending.py and collect every case.

Only cases whose endpoints are all listed in implemented.txt are collected; the terminal summary
and `<state>/compat-report.md` say how many exist, ran and passed. Nothing here is skipped: a
reference server that cannot start fails the session.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.compat import refserver
from tests.compat.deviations import FIELD_DEVIATIONS, active_deviations
from tests.compat.model import load_cases, read_gate
from tests.compat.pending import PENDING
from tests.compat.report import Tally, render
from tests.compat.runner import Server

TALLY = pytest.StashKey[Tally]()
CASE_FIXTURE = "compat_case"
REPORT_NAME = "compat-report.md"


def pytest_configure(config: pytest.Config) -> None:
    defined = load_cases()
    implemented = read_gate()
    bypass = os.environ.get("SLUICE_COMPAT_ALL") == "1"
    collected = (
        defined
        if bypass
        else [c for c in defined if c.endpoints <= implemented and c.id not in PENDING]
    )
    config.stash[TALLY] = Tally(defined, collected, implemented, gate_bypassed=bypass)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if CASE_FIXTURE in metafunc.fixturenames:
        cases = metafunc.config.stash[TALLY].collected
        metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.id for case in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # An empty parameter list would otherwise become one skipped test; "not collected" it is.
    empty = [item for item in items if _is_empty_compat_item(item)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


def _is_empty_compat_item(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    fixtures = getattr(item, "fixturenames", ())
    return CASE_FIXTURE in fixtures and (callspec is None or CASE_FIXTURE not in callspec.params)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    terminalreporter.write_line(config.stash[TALLY].summary_line())


def pytest_sessionfinish(session: pytest.Session) -> None:
    tally = session.config.stash[TALLY]
    if not tally.reference_url:
        return  # no case ran (e.g. only the harness tests): keep the last real report
    path = refserver.state_dir(os.environ) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(tally, active_deviations(os.environ), FIELD_DEVIATIONS, PENDING))


@pytest.fixture(scope="session")
def compat_tally(pytestconfig: pytest.Config) -> Tally:
    return pytestconfig.stash[TALLY]


@pytest.fixture(scope="package")
def reference_server(
    compat_tally: Tally, request: pytest.FixtureRequest, session_token: str
) -> Iterator[Server]:
    """A real `mlflow server` on a fresh database; stopped after the last compat case (package
    scope), not left idling through the rest of the suite.

    `SLUICE_COMPAT_REFERENCE=postgresql` backs it with a fresh PostgreSQL database instead of
    SQLite: in `SLUICE_COMPAT_REFERENCE_PG` (an admin DSN) or else in the test stack's server.
    """
    environ = dict(os.environ)
    database: refserver.PgDatabase | None = None
    if environ.get(refserver.KIND_VARIABLE, "sqlite") == "postgresql":
        admin = environ.get(refserver.PG_VARIABLE) or request.getfixturevalue("stack").admin_dsn
        database = refserver.PgDatabase.create(admin, f"mlflow_ref_{session_token}")
        environ[refserver.BACKEND_VARIABLE] = database.dsn
    reference = refserver.start(environ)
    compat_tally.reference_url = reference.url + (" (PostgreSQL)" if database else " (SQLite)")
    try:
        yield Server("reference", reference.url)
    finally:
        reference.stop()
        if database is not None:
            database.drop()


if os.environ.get("SLUICE_COMPAT_TARGET"):

    @pytest.fixture(scope="session")
    def sluice_url() -> str:
        """Overrides the Sluice stack: compare the reference with the server at this URL."""
        return os.environ["SLUICE_COMPAT_TARGET"].rstrip("/")


@pytest.fixture(scope="session")
def target_server(sluice_url: str, compat_tally: Tally) -> Server:
    compat_tally.target_url = sluice_url
    return Server("target", sluice_url)


@pytest.fixture(scope="session")
def session_token() -> str:
    """Makes names unique per session: the target's database may outlive sessions."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def session_start_ms() -> int:
    return time.time_ns() // 1_000_000
