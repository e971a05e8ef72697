"""`sluice import` of a database a real `mlflow server` 3.17.2 filled: every read through the
`mlflow` client answers the same from Sluice as from MLflow over the source; a second import
changes nothing; an import killed halfway and rerun ends with the same data, nothing twice;
conflicting rows are refused unless --overwrite."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.stack import Stack
from tests.transfer.conftest import Source, Target, start_reference
from tests.transfer.populate import populate
from tests.transfer.reads import differences, sluice_history, snapshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TABLES = (
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "datasets",
    "run_inputs",
    "input_tags",
    "run_model_inputs",
    "run_model_outputs",
    "logged_models",
    "logged_model_tags",
    "logged_model_params",
    "logged_model_metrics",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
    "trace_info",
    "trace_spans",
    "trace_assessments",
    "trace_run_links",
)


async def _counts(target: Target) -> dict[str, Any]:
    counts = {t: await target.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    counts["points"] = await target.fetchval("SELECT coalesce(sum(n), 0) FROM metric_chunks")
    counts["distinct points"] = await target.fetchval("SELECT count(*) FROM metrics")
    counts["latest"] = await target.fetchval("SELECT count(*) FROM latest_metrics")
    return counts


def test_every_read_matches_mlflow(
    source: Source, expected: dict[str, Any], imported: Target
) -> None:
    got = snapshot(imported.url)
    assert differences(expected, got) == []
    assert len(got["runs"]) == len(source.populated.runs)
    assert (
        sum(len(h) for r in got["runs"] for h in r["history"].values()) == source.populated.points
    )


def test_second_import_changes_nothing(source: Source, imported: Target) -> None:
    before = asyncio.run(_counts(imported))
    assert before["points"] == before["distinct points"] == source.populated.points
    result = imported.cli("import", source.uri)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 metric points in" in result.stdout
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1] in TABLES:
            assert cells[3] == "0", line  # written now
    assert asyncio.run(_counts(imported)) == before


def test_interrupted_import_resumes_without_duplicates(
    source: Source, expected: dict[str, Any], imported: Target, new_target: Callable[[], Target]
) -> None:
    target = new_target()
    process = target.popen("import", source.uri)
    try:
        _wait_for_copy(target, process)
        time.sleep(0.5)  # well inside the metric points: chunks are being copied
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    partial = asyncio.run(_counts(target))
    assert partial["points"] < source.populated.points, "the import finished before the kill"
    result = target.cli("import", source.uri)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    assert asyncio.run(_counts(target)) == asyncio.run(_counts(imported))
    # The big run's million points once more through the client would cost a minute; the
    # client read of them is test_every_read_matches_mlflow's.
    big = (source.populated.big_run, sluice_history(target.dsn))
    assert differences(expected, snapshot(target.url, big)) == []


def _wait_for_copy(target: Target, process: Any) -> None:
    deadline = time.monotonic() + 600
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'COPY%metric_chunks%'"
    )
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        if asyncio.run(target.fetchval(query)):
            return
        time.sleep(0.05)
    raise AssertionError("the import never reached the metric points")


def test_postgresql_source(stack: Stack, new_target: Callable[[], Target]) -> None:
    """The same data in a PostgreSQL database that MLflow filled (a smaller big run: the 1M
    points case is the SQLite one, and the reading code is shared)."""
    database = f"mlflow_source_{uuid.uuid4().hex[:8]}"
    asyncio.run(stack.create_database(database))
    # MLflow's own URI form (SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://);
    # the import drops the driver part.
    uri = f"postgresql+psycopg2://postgres@127.0.0.1:{stack.ports.pg}/{database}"
    ref = start_reference(SLUICE_MLFLOW_REF_BACKEND_URI=uri)
    try:
        populated = populate(ref.url, 20_000)
        expected = snapshot(ref.url)
        target = new_target()
        result = target.cli("import", uri)
        assert result.returncode == 0, result.stderr[-3000:] + result.stdout
        assert differences(expected, snapshot(target.url)) == []
        assert asyncio.run(target.fetchval("SELECT sum(n) FROM metric_chunks")) == populated.points
    finally:
        ref.stop()


def test_conflicting_rows_are_refused_unless_overwrite(source: Source, imported: Target) -> None:
    """On the shared import (a full second one would cost a million points): one param is
    changed in Sluice, refused, then put back by --overwrite."""
    run = source.populated.runs[0]
    asyncio.run(
        imported.fetchval(
            f"UPDATE params SET value = 'changed' WHERE run_uuid = '{run}' AND key = 'lr'"
        )
    )
    refused = imported.cli("import", source.uri)
    assert refused.returncode == 2
    assert "params: 1 row(s) already in Sluice with other values" in refused.stderr
    assert run in refused.stderr
    replaced = imported.cli("import", source.uri, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert "1 replaced" in replaced.stdout
    value = asyncio.run(
        imported.fetchval(f"SELECT value FROM params WHERE run_uuid = '{run}' AND key = 'lr'")
    )
    assert value == "0.01"
