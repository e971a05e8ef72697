"""The `make up-ha` topology for tests: the real ``sluice up-ha`` command (HAProxy, 2 ingest,
2 api, 2 writers, 3 Kafka brokers, PostgreSQL primary + synchronous standby under
pg_auto_failover, moto S3), on free ports with its own state folder. Tests reach it only
through HAProxy, as users do; fault tests find its processes by role on their command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import psutil
import pytest

from tests.stack import REPO, SCRIPTS, StackError, contiguous_free_ports, kafka_test_env

START_DEADLINE_S = 420.0  # three JVMs, three PostgreSQL and six Sluice processes on 2 cores
ROLES = ("ingest", "api", "writer")


@dataclass
class HaStack:
    base: int  # every port of the stack is base + a fixed offset (see `env`)
    state_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.state_dir / "up-ha.log"

    # --- addresses ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """HAProxy: the one MLflow tracking URI."""
        return f"http://127.0.0.1:{self.base}"

    @property
    def topic(self) -> str:
        return "sluice.metrics.v1"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.base + 20 + i}" for i in range(3))

    @property
    def dsn(self) -> str:
        p = self.base + 30
        return f"postgresql://postgres@127.0.0.1:{p + 1},127.0.0.1:{p + 2}/sluice?target_session_attrs=read-write"

    def health_ports(self) -> dict[str, list[int]]:
        return {
            "ingest": [self.base + 1, self.base + 11],
            "api": [self.base + 2, self.base + 12],
            "writer": [self.base + 3, self.base + 4],
        }

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_STATE_DIR=str(self.state_dir),
            SLUICE_VENV=str(Path(sys.executable).parent.parent),
            **kafka_test_env(),
            SLUICE_PORT=str(self.base),
            SLUICE_INGEST_PORT=str(self.base + 1),
            SLUICE_API_PORT=str(self.base + 2),
            SLUICE_WRITER_METRICS_PORT=str(self.base + 3),
            SLUICE_KAFKA_PORT=str(self.base + 20),
            SLUICE_KAFKA_CONTROLLER_PORT=str(self.base + 23),
            SLUICE_PGHA_PORT=str(self.base + 30),
            SLUICE_S3_PORT=str(self.base + 35),
            SLUICE_HA_BALANCER_STATS_PORT=str(self.base + 9),
            # kafka.sh start-node waits for the node to rejoin every ISR (a JVM start, log
            # recovery, catching up) and PostgreSQL nodes for their sync: slow on a busy box.
            SLUICE_KAFKA_START_TIMEOUT="180",
            SLUICE_PG_TIMEOUT="180",
            # A writer killed mid-session loses its partitions after 6 s, not 10.
            SLUICE_KAFKA_SESSION_TIMEOUT_MS="6000",
        )
        # The console script's sys.path starts at the venv's bin, not the cwd: this checkout's
        # packages come first, whichever checkout the venv's editable install points at.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        sluice = Path(sys.executable).parent / "sluice"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(sluice), "up-ha"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_serving(START_DEADLINE_S)

    def wait_serving(self, deadline_s: float) -> float:
        """Seconds until HAProxy and every Sluice process answer /health/ready."""
        started = time.monotonic()
        urls = [f"{self.url}/health/ready"] + [
            f"http://127.0.0.1:{port}/health/ready"
            for ports in self.health_ports().values()
            for port in ports
        ]
        while time.monotonic() - started < deadline_s:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"sluice up-ha exited with {self.process.returncode}: {self.tail()}"
                )
            if all(_ready(url) for url in urls):
                return time.monotonic() - started
            time.sleep(0.2)
        raise StackError(f"up-ha not serving within {deadline_s}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=180)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # up-ha stops what it started; after a crash of up-ha itself nothing must be left.
        for script in ("pgha.sh", "kafka.sh", "s3.sh"):
            self.script(script, "stop", check=False)

    # --- faults -------------------------------------------------------------------------------
    def script(self, name: str, *args: str, check: bool = True) -> str:
        env = {**self.env(), "SLUICE_KAFKA_BROKERS": "3"}
        done = subprocess.run(
            [str(SCRIPTS / name), *args], env=env, stdout=subprocess.PIPE, text=True, check=False
        )
        if check and done.returncode != 0:
            raise StackError(f"scripts/{name} {' '.join(args)} failed ({done.returncode})")
        return done.stdout.strip()

    def pids(self, role: str) -> list[int]:
        """Sluice processes of ``role`` that up-ha runs now (their command line: sluice <role>)."""
        assert self.process is not None
        found = []
        for child in psutil.Process(self.process.pid).children():
            try:
                argv = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            if len(argv) >= 2 and argv[-1] == role and argv[-2].endswith("sluice"):
                found.append(child.pid)
        return found


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# Package scope: the stack (3 JVMs, 3 PostgreSQL servers, 6 Sluice processes, HAProxy, moto)
# stops after the last test of tests/ha instead of idling beside the rest of the suite.
@pytest.fixture(scope="package")
def ha_stack() -> Iterator[HaStack]:
    base = contiguous_free_ports(40)
    stack = HaStack(base, REPO / ".state" / "test" / f"ha-{base}")
    failed = True
    try:
        stack.start()
        yield stack
        failed = False
    finally:
        stack.stop()
        if not failed and os.environ.get("SLUICE_KEEP_TEST_STATE") != "1":
            subprocess.run(["rm", "-rf", str(stack.state_dir)], check=False)


@pytest.fixture(scope="package")
def sluice_url(ha_stack: HaStack) -> str:
    """The tests in this folder that come from tests/integration run through HAProxy."""
    return ha_stack.url


@pytest.fixture
def tracking_url(ha_stack: HaStack) -> Iterator[str]:
    """tests/integration/test_artifacts.py's tracking URI: here HAProxy, artifacts on S3."""
    mlflow.set_tracking_uri(ha_stack.url)
    yield ha_stack.url
    mlflow.set_tracking_uri("")
