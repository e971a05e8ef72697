"""Fixtures of the import/export tests: a reference `mlflow server` 3.17.2 filled with diverse
data, and fresh Sluice targets (own database, own topic, own api) on the session's servers.

The fixtures are package-scoped: the reference server and the targets' api processes stop
after the last test here instead of idling beside the rest of the suite.

Each target is a separate database so imported experiment ids never meet the ids other test
modules create in the shared one; its topic is new and empty, so the api's read fence passes
at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.compat import refserver
from tests.stack import Stack
from tests.transfer.populate import Populated, populate
from tests.transfer.reads import snapshot, sqlite_history

# 1M points in the source, as the acceptance asks; the big run holds most of them, written with
# SQL into the server's database (tests/transfer/populate.py). TRANSFER_BIG_POINTS=20000 makes
# a quick local iteration.
BIG_POINTS = int(os.environ.get("TRANSFER_BIG_POINTS", "999000"))


@dataclass(frozen=True, slots=True)
class Source:
    url: str  # the reference server over the source database
    db_path: Path
    populated: Populated

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db_path}"


@dataclass(frozen=True, slots=True)
class Target:
    stack: Stack
    database: str
    topic: str
    url: str  # an api serving this database

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.stack.ports.pg}/{self.database}"

    def env(self) -> dict[str, str]:
        # Its own traces topic too: the session's one holds other tests' records, which this
        # database's (writer-less) read fence would wait for until it answers 429.
        return self.stack.service_env(
            SLUICE_PG_DSN=self.dsn,
            SLUICE_KAFKA_TOPIC=self.topic,
            SLUICE_KAFKA_TRACES_TOPIC=f"{self.topic}.traces",
            SLUICE_LOG_LEVEL="WARNING",
        )

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sluice.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def fetchval(self, sql: str) -> object:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()


def start_reference(**environ: str) -> refserver.Reference:
    """A reference server of its own, always on a free port: SLUICE_MLFLOW_REF_PORT names the
    compat suite's server, which a second data dir on that port would restart."""
    return refserver.start({**os.environ, refserver.PORT_VARIABLE: str(_free_port()), **environ})


@pytest.fixture(scope="package")
def source() -> Iterator[Source]:
    ref = start_reference()
    try:
        started = time.monotonic()
        populated = populate(ref.url, BIG_POINTS, ref.data_dir / "mlflow.db")
        print(
            f"reference filled: {populated.points:,} points in {time.monotonic() - started:.0f} s"
        )
        yield Source(ref.url, ref.data_dir / "mlflow.db", populated)
    finally:
        ref.stop()


@pytest.fixture(scope="package")
def expected(source: Source) -> dict[str, Any]:
    """What `mlflow server` answers over the source (the big run's history by SQL, see
    tests/transfer/reads.py)."""
    return snapshot(source.url, (source.populated.big_run, sqlite_history(source.db_path)))


@pytest.fixture(scope="package")
def imported(source: Source, new_target: Callable[[], Target]) -> Target:
    target = new_target()
    result = target.cli("import", source.uri)
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    rate = re.search(r"\(([\d,]+) points/s\)", result.stdout)
    assert rate, result.stdout
    print(f"import rate: {rate.group(1)} points/s")
    return target


@pytest.fixture(scope="package")
def new_target(stack: Stack) -> Iterator[Callable[[], Target]]:
    """Make fresh Sluice targets: migrated database + topic + api process."""
    made: list[str] = []

    def make() -> Target:
        tag = uuid.uuid4().hex[:8]
        database = f"sluice_transfer_{tag}"
        asyncio.run(stack.create_database(database))
        port = _free_port()
        target = Target(stack, database, f"sluice.transfer-{tag}", f"http://127.0.0.1:{port}")
        subprocess.run(
            [sys.executable, "-m", "sluice.cli", "migrate"],
            env=target.env(),
            check=True,
            timeout=120,
        )
        name = f"api-transfer-{tag}"
        stack.start("api", name, port, **{**target.env(), "SLUICE_API_PORT": str(port)})
        made.append(name)
        return target

    yield make
    for name in made:
        process = stack.processes.pop(name, None)
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
