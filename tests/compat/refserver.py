"""The reference `mlflow server`, driven through scripts/mlflow-ref.sh.

Every test session starts it on a fresh folder (`session-<stamp>`) and on a free port (unless
`SLUICE_MLFLOW_REF_PORT` names one), so the reference database holds only experiment 0 when the
cases begin and concurrent sessions on one machine never share a server. A session deletes its
folder when it stops the server. The folders live in /dev/shm when it is available: SQLite's
fsyncs make the reference 2-3x slower on disk, and the database is thrown away anyway.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "mlflow-ref.sh"
# The first run installs mlflow into its own venv (a few minutes); later starts take ~10 s.
SCRIPT_DEADLINE_S = 900.0
PORT_VARIABLE = "SLUICE_MLFLOW_REF_PORT"
BACKEND_VARIABLE = "SLUICE_MLFLOW_REF_BACKEND_URI"
KIND_VARIABLE = "SLUICE_COMPAT_REFERENCE"  # sqlite (default) or postgresql
PG_VARIABLE = "SLUICE_COMPAT_REFERENCE_PG"  # admin DSN of the PostgreSQL for the reference


class ReferenceServerError(Exception):
    """The reference server could not be started: the suite fails, it is never skipped."""


@dataclass(frozen=True, slots=True)
class Reference:
    url: str
    data_dir: Path
    environ: Mapping[str, str]

    def stop(self) -> None:
        try:
            _script(self.environ, "stop")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class PgDatabase:
    """A database made for one session's PostgreSQL-backed reference, dropped afterwards."""

    admin_dsn: str
    name: str

    @property
    def dsn(self) -> str:
        """The database's URI for MLflow: SQLAlchemy with psycopg2, the driver its venv has."""
        base = self.admin_dsn.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+psycopg2://", 1) + "/" + self.name

    @classmethod
    def create(cls, admin_dsn: str, name: str) -> PgDatabase:
        database = cls(admin_dsn, name)
        database._admin(f'CREATE DATABASE "{name}"')
        return database

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.admin_dsn, timeout=10)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())


def state_dir(environ: Mapping[str, str]) -> Path:
    """The same state folder the scripts use (`SLUICE_STATE_DIR`, default `<repo>/.state`)."""
    return Path(environ.get("SLUICE_STATE_DIR") or REPO / ".state").resolve()


def _script(environ: Mapping[str, str], *args: str) -> str:
    try:
        result = subprocess.run(
            [str(SCRIPT), *args],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=SCRIPT_DEADLINE_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ReferenceServerError(f"scripts/mlflow-ref.sh {' '.join(args)} timed out") from error
    if result.returncode != 0:
        raise ReferenceServerError(
            f"scripts/mlflow-ref.sh {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stderr[-3000:]}"
        )
    return result.stdout.strip()


def sessions_root(environ: Mapping[str, str]) -> Path:
    """Where session folders go: tmpfs if there is one, else `<state>/mlflow-ref`."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / "sluice-mlflow-ref"
    return state_dir(environ) / "mlflow-ref"


def start(environ: Mapping[str, str]) -> Reference:
    """Start the reference server on a new session folder (and a free port) and wait for it."""
    env = dict(environ)
    env.setdefault(PORT_VARIABLE, str(_free_port()))
    data_dir = (
        sessions_root(env)
        / f"session-{time.strftime('%Y%m%d-%H%M%S')}-{env[PORT_VARIABLE]}-{os.getpid()}"
    )
    _script(env, "start", str(data_dir))
    return Reference(url=_script(env, "url"), data_dir=data_dir, environ=env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
