"""The benchmark's own servers: one PostgreSQL (two databases), one Kafka, Sluice's ingest,
writer(s) and api as separate processes, and a real ``mlflow server`` on the same PostgreSQL.

Everything runs on ports the OS reports free and under ``.state/bench-<pg port>``, so a
benchmark never touches ``make up``, a test session or another engineer's servers. The Kafka jar
cache and the reference MLflow virtualenv are shared with the rest of the repo (read-only use).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from schemas.route_record import Service
from sluice.commands import balancer

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
MLFLOW_VERSION = "3.17.2"
PSYCOPG2 = "psycopg2-binary==2.9.13"
READY_DEADLINE_S = 180.0


class ServiceError(Exception):
    """A server could not be started; the benchmark stops (it never reports half a run)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One system under test, as the load generator and the verifier see it."""

    name: str  # "sluice" or "mlflow"
    write_url: str  # log-* calls (Sluice: ingest directly, not the front proxy)
    read_url: str  # everything else (Sluice: api directly)
    dsn: str  # its database, for verification, bulk loads and storage figures


@dataclass(frozen=True, slots=True)
class SluiceSettings:
    """The SLUICE_* tuning the benchmark applies (recorded in the results)."""

    partitions: int = 8
    writers: int = 2
    batch_max_rows: int = 20_000
    batch_max_age_s: float = 0.2
    fetch_max_records: int = 5_000
    linger_ms: int = 2
    log_level: str = "WARNING"
    # Processes of ingest and of the api each; above 1 they sit behind HAProxy (`sluice
    # balancer`'s configuration), as `sluice up-ha` runs them, and the targets are HAProxy.
    serving_processes: int = 1

    def env(self) -> dict[str, str]:
        return {
            "SLUICE_KAFKA_PARTITIONS": str(self.partitions),
            "SLUICE_WRITER_BATCH_MAX_ROWS": str(self.batch_max_rows),
            "SLUICE_WRITER_BATCH_MAX_AGE_S": str(self.batch_max_age_s),
            "SLUICE_WRITER_FETCH_MAX_RECORDS": str(self.fetch_max_records),
            "SLUICE_KAFKA_LINGER_MS": str(self.linger_ms),
            "SLUICE_LOG_LEVEL": self.log_level,
        }


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class BenchStack:
    """Starts and stops everything; ``pids()`` names every server process for the sampler."""

    sluice: SluiceSettings = field(default_factory=SluiceSettings)
    mlflow_workers: int = 4
    with_mlflow: bool = True
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    scripts_started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = ["pg", "kafka", "kafka_controller", "ingest", "api", "mlflow"]
        names += [f"writer{i}" for i in range(self.sluice.writers)]
        if self.fronted:
            names += [f"{role}{i}" for role in ("ingest", "api") for i in self._extra_serving]
            names += ["haproxy", "haproxy_stats"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.state_dir = REPO / ".state" / f"bench-{self.ports['pg']}"
        self.topic = f"sluice.bench-{self.ports['pg']}.metrics"

    # --- addresses --------------------------------------------------------------------------
    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['pg']}/{database}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def fronted(self) -> bool:
        return self.sluice.serving_processes > 1

    @property
    def _extra_serving(self) -> range:
        return range(1, self.sluice.serving_processes)

    def serving(self, role: str) -> list[str]:
        """Names of the processes of ``role`` (ingest or api): ``ingest``, ``ingest1``, ..."""
        return [role, *(f"{role}{i}" for i in self._extra_serving)]

    def targets(self) -> list[Target]:
        write, read = ("haproxy", "haproxy") if self.fronted else ("ingest", "api")
        found = [
            Target("sluice", self.url(write), self.url(read), self.dsn("sluice_bench")),
        ]
        if self.with_mlflow:
            url = self.url("mlflow")
            found.append(Target("mlflow", url, url, self.dsn("mlflow_bench")))
        return found

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._script("kafka.sh", "fetch")
        for name in ("pg.sh", "kafka.sh"):
            self._script(name, "start")
            self.scripts_started.append(name)
        _run_async_sql(self.dsn("postgres"), ["CREATE DATABASE sluice_bench"])
        subprocess.run(
            [sys.executable, "-m", "sluice.cli", "migrate"],
            env=self._service_env(),
            check=True,
            timeout=180,
        )
        self._start_serving("api")
        for i in range(self.sluice.writers):
            port = str(self.ports[f"writer{i}"])
            self._start_service(f"writer{i}", {"SLUICE_WRITER_METRICS_PORT": port}, "writer")
        self._start_serving("ingest")
        if self.fronted:
            self.start_haproxy(self.serving("ingest"), self.serving("api"))
        if self.with_mlflow:
            _run_async_sql(self.dsn("postgres"), ["CREATE DATABASE mlflow_bench"])
            self._start_mlflow()

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            _terminate(process)
        for name in reversed(self.scripts_started):
            self._script(name, "stop", check=False)
        self.scripts_started.clear()

    def remove_state(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """Root process of each server; the sampler adds their children (postgres backends,
        uvicorn workers)."""
        found = {name: p.pid for name, p in self.processes.items()}
        pg_pid = self._postmaster_pid()
        if pg_pid:
            found["postgres"] = pg_pid
        kafka_pid = self._kafka_pid()
        if kafka_pid:
            found["kafka"] = kafka_pid
        return found

    # --- helpers ------------------------------------------------------------------------------
    def _script_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_STATE_DIR=str(self.state_dir),
            SLUICE_VENV=str(Path(sys.executable).parent.parent),
            SLUICE_PG_PORT=str(self.ports["pg"]),
            SLUICE_PG_DB="postgres",
            SLUICE_KAFKA_PORT=str(self.ports["kafka"]),
            SLUICE_KAFKA_CONTROLLER_PORT=str(self.ports["kafka_controller"]),
            SLUICE_KAFKA_LIBS=str(REPO / ".state" / "kafka" / "libs"),
            SLUICE_MLFLOW_REF_VENV=str(self.mlflow_venv),
        )
        return env

    @property
    def mlflow_venv(self) -> Path:
        return REPO / ".state" / "mlflow-ref-venv"

    def _service_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(self.sluice.env())
        env.update(
            SLUICE_PG_DSN=self.dsn("sluice_bench"),
            SLUICE_KAFKA_BOOTSTRAP=f"127.0.0.1:{self.ports['kafka']}",
            SLUICE_KAFKA_TOPIC=self.topic,
            SLUICE_INGEST_PORT=str(self.ports["ingest"]),
            SLUICE_API_PORT=str(self.ports["api"]),
            SLUICE_WRITER_GROUP_ID=f"sluice-bench-{self.ports['pg']}",
            SLUICE_API_ARTIFACT_ROOT=str(self.state_dir / "artifacts"),
            SLUICE_API_UI_DIR=str(REPO / ".state" / "ui" / "mlflow-3.17.2"),  # ui-bundle.sh
        )
        env.update(overrides)
        return env

    def _script(self, name: str, *args: str, check: bool = True) -> None:
        result = subprocess.run([str(SCRIPTS / name), *args], env=self._script_env(), check=False)
        if check and result.returncode != 0:
            raise ServiceError(f"scripts/{name} {' '.join(args)} failed ({result.returncode})")

    def _start_service(self, name: str, overrides: dict[str, str], command: str = "") -> None:
        log = open(self.state_dir / f"{name}.log", "ab")  # noqa: SIM115 (child owns it)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", command or name],
            env=self._service_env(**overrides),
            stdout=log,
            stderr=log,
        )
        self._wait_ready(name, f"{self.url(name)}/health/ready")

    def _start_serving(self, role: str) -> None:
        """Every process of ``role`` on its own port; each enforces its share of per-user
        limits (``SLUICE_INSTANCES``), as under up-ha."""
        shared = {"SLUICE_INSTANCES": str(self.sluice.serving_processes)}
        if role == "api":  # one host: every api process sees the same artifact folder
            shared["SLUICE_API_ARTIFACT_ROOT_SHARED"] = "true"
        for name in self.serving(role):
            port = {f"SLUICE_{role.upper()}_PORT": str(self.ports[name])}
            self._start_service(name, {**port, **shared}, role)

    @functools.cached_property
    def haproxy_bin(self) -> str:
        """Looked up once a stack (scripts/haproxy.sh may install it)."""
        return haproxy_binary(self._script_env())

    def start_haproxy(self, ingests: list[str], apis: list[str]) -> None:
        """HAProxy with `sluice balancer`'s configuration in front of these processes."""
        servers: dict[Service, Sequence[str]] = {
            "ingest": [f"127.0.0.1:{self.ports[name]}" for name in ingests],
            "api": [f"127.0.0.1:{self.ports[name]}" for name in apis],
        }
        config = balancer.render(servers, bind=f"127.0.0.1:{self.ports['haproxy']}")
        path = self.state_dir / "haproxy.cfg"
        path.write_text(config)
        log = open(self.state_dir / "haproxy.log", "ab")  # noqa: SIM115 (child owns it)
        stats = {"BALANCER_STATS_BIND": f"127.0.0.1:{self.ports['haproxy_stats']}"}
        self.processes["haproxy"] = subprocess.Popen(
            [self.haproxy_bin, "-db", "-f", str(path)],
            stdout=log,
            stderr=log,
            env={**os.environ, **stats},
        )
        self._wait_ready("haproxy", f"{self.url('haproxy')}/health/ready")

    def _wait_ready(self, name: str, url: str) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise ServiceError(f"{name} exited ({process.returncode}); see {self.state_dir}")
            if http_ok(url):
                return
            time.sleep(0.2)
        raise ServiceError(f"{name} not ready within {READY_DEADLINE_S}s")

    def _start_mlflow(self) -> None:
        """`mlflow server` 3.17.2 from the reference venv (scripts/mlflow-ref.sh builds it), with
        psycopg2 added to that venv only, on the shared PostgreSQL, 4 uvicorn workers."""
        self._script("mlflow-ref.sh", "install")
        python = self.mlflow_venv / "bin" / "python"
        if subprocess.run([str(python), "-c", "import psycopg2"], check=False).returncode:
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    PSYCOPG2,
                ],
                check=True,
            )
        artifacts = self.state_dir / "mlflow-artifacts"
        artifacts.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
        )
        log = open(self.state_dir / "mlflow.log", "ab")  # noqa: SIM115 (child owns it)
        self.processes["mlflow"] = subprocess.Popen(
            [
                str(self.mlflow_venv / "bin" / "mlflow"),
                "server",
                "--backend-store-uri",
                self.dsn("mlflow_bench").replace("postgresql://", "postgresql+psycopg2://"),
                "--default-artifact-root",
                "mlflow-artifacts:/",
                "--serve-artifacts",
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["mlflow"]),
                "--workers",
                str(self.mlflow_workers),
            ],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._wait_ready("mlflow", f"{self.url('mlflow')}/health")

    def _postmaster_pid(self) -> int | None:
        pidfile = self.state_dir / f"pg-{self.ports['pg']}" / "data" / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _kafka_pid(self) -> int | None:
        for pidfile in self.state_dir.glob("kafka-*/**/*.pid"):
            try:
                return int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
        return None


def haproxy_binary(env: dict[str, str]) -> str:
    """HAProxy from PATH, or as scripts/haproxy.sh provides it."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found:
        return found
    done = subprocess.run(
        [str(SCRIPTS / "haproxy.sh"), "ensure"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceError("scripts/haproxy.sh could not provide haproxy")
    return done.stdout.strip()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (and, for mlflow, its session: uvicorn's workers), then SIGKILL."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    own = pgid == process.pid
    _signal(process, pgid if own else None, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        _signal(process, pgid if own else None, 9)
        process.wait(timeout=10)


def _signal(process: subprocess.Popen[bytes], pgid: int | None, sig: int) -> None:
    try:
        if pgid is not None:
            os.killpg(pgid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass


def _run_async_sql(dsn: str, statements: list[str]) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())
