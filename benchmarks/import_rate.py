"""`sluice import` rate on a large MLflow database (issue 18): points/s for 10M points.

    .venv/bin/python -m benchmarks.import_rate [--points 10000000] [--runs 100] [--keys 4]

Builds an MLflow 3.17.2 SQLite database (schema from the reference venv's mlflow, rows written
with plain SQL: an MLflow server would need an hour to log 10M points), starts PostgreSQL from
scripts/pg.sh on a free port under .state/bench-import-<port>, applies Sluice's migrations and
times `sluice import` (the CLI, as an operator runs it). Prints the import's own summary and
the rate; everything is stopped and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from sluice.commands.migrate import migrate_pg
from sluice.config import PgConfig
from tests.stack import REPO, Ports, Stack

REF_VENV = Path(os.environ.get("SLUICE_MLFLOW_REF_VENV", REPO / ".state" / "mlflow-ref-venv"))
BASE_TS = 1_700_000_000_000


def create_schema(path: Path) -> None:
    """An empty MLflow 3.17.2 database, made by mlflow itself (its alembic migrations)."""
    subprocess.run([str(REPO / "scripts" / "mlflow-ref.sh"), "install"], check=True)
    code = (
        "import sys; from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore;"
        " SqlAlchemyStore(sys.argv[1], sys.argv[2])"
    )
    subprocess.run(
        [str(REF_VENV / "bin" / "python"), "-c", code, f"sqlite:///{path}", str(path.parent)],
        check=True,
    )


def fill(path: Path, points: int, runs: int, keys: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
        " creation_time, last_update_time) VALUES (1, 'bench', '/tmp/a/1', 'active', ?, ?)",
        (BASE_TS, BASE_TS),
    )
    per_series = points // (runs * keys)
    for r in range(runs):
        run = f"{r:032x}"
        db.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,"
            " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
            " artifact_uri, experiment_id) VALUES (?, ?, 'UNKNOWN', '', '', 'u', 'FINISHED',"
            " ?, ?, '', 'active', ?, 1)",
            (run, f"run-{r}", BASE_TS, BASE_TS + per_series, f"/tmp/a/1/{run}/artifacts"),
        )
        for k in range(keys):
            key = f"metric_{k}"
            db.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                ((key, s * 0.001 + k, BASE_TS + s, run, s) for s in range(per_series)),
            )
            last = per_series - 1
            db.execute(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                " VALUES (?, ?, ?, ?, 0, ?)",
                (key, last * 0.001 + k, BASE_TS + last, last, run),
            )
        db.commit()
    db.close()


async def prepare_target(dsn: str, admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    await migrate_pg(PgConfig(dsn=dsn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--keys", type=int, default=4)
    args = parser.parse_args()
    ports = Ports.free()
    state = REPO / ".state" / f"bench-import-{ports.pg}"
    state.mkdir(parents=True)
    stack = Stack(state_dir=state, ports=ports)
    try:
        source = state / "mlflow.db"
        started = time.monotonic()
        create_schema(source)
        fill(source, args.points, args.runs, args.keys)
        print(f"source: {args.points:,} points in {time.monotonic() - started:.0f} s", flush=True)
        stack.ensure_server("pg.sh")
        asyncio.run(prepare_target(stack.dsn, stack.admin_dsn, stack.database))
        env = stack.service_env(SLUICE_LOG_LEVEL="WARNING")
        load_before = os.getloadavg()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "sluice.cli", "import", f"sqlite:///{source}"],
            env=env,
            check=True,
        )
        took = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - cpu_before.ru_utime + after.ru_stime - cpu_before.ru_stime
        print(
            f"sluice import: {args.points:,} points in {took:.1f} s wall clock ="
            f" {args.points / took:,.0f} points/s (CLI start to exit); the importer process"
            f" used {cpu:.1f} CPU s ({args.points / cpu:,.0f} points per CPU second);"
            f" load average before/after: {load_before} / {os.getloadavg()}"
        )
    finally:
        stack.stop_servers()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
