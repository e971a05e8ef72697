"""A real Sluice stack for tests: PostgreSQL, Kafka and S3 from the repo's scripts, and the
services as separate processes (so tests can SIGKILL and restart them).

Each pytest session gets its own database, topic and consumer group, so sessions never see
each other's data even when the servers are reused.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
# The MLflow UI bundle (scripts/ui-bundle.sh install): shared by every session, never deleted.
UI_BUNDLE = REPO / ".state" / "ui" / "mlflow-3.17.2"
READY_DEADLINE_S = 90.0


class StackError(Exception):
    """A service could not be started: tests fail loudly, they are never skipped."""


@functools.cache
def kafka_test_env() -> dict[str, str]:
    """What every test cluster's scripts/kafka.sh gets: the shared jars and the test JVM flags
    for short-lived brokers -- C1-only JIT (no C2 compiler threads taking a core from the tests
    in each node's first minute) and the brokers' classes mapped from an archive, written on
    first use (one throwaway broker, ~15 s) and kept in .state/kafka."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_KAFKA_LIBS"] = os.environ.get(
        "SLUICE_KAFKA_LIBS", str(REPO / ".state" / "kafka" / "libs")
    )
    made = subprocess.run(
        [str(SCRIPTS / "kafka.sh"), "class-archive"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if made.returncode != 0:
        raise StackError(f"scripts/kafka.sh class-archive failed:\n{made.stderr[-2000:]}")
    archive = made.stdout.strip()
    return {
        "SLUICE_KAFKA_LIBS": env["SLUICE_KAFKA_LIBS"],
        "SLUICE_KAFKA_JVM_OPTS": f"-XX:TieredStopAtLevel=1 -XX:SharedArchiveFile={archive}",
    }


@dataclass(frozen=True, slots=True)
class Ports:
    pg: int
    kafka: int
    kafka_controller: int
    s3: int
    front: int
    ingest: int
    api: int
    writer: int

    @classmethod
    def free(cls) -> Ports:
        """Ports the OS reports free now, so a test session never collides with a running
        `make up`, another session, or a developer's own servers."""
        sockets = [socket.socket() for _ in dataclasses.fields(cls)]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


@dataclass
class Stack:
    state_dir: Path
    ports: Ports = field(default_factory=Ports.free)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started_scripts: list[str] = field(default_factory=list)
    # Kafka nodes of this stack's cluster (scripts/kafka.sh --brokers): node i on kafka + i - 1.
    brokers: int = 1
    # Health port of processes started under another name (e.g. a second writer).
    health_ports: dict[str, int] = field(default_factory=dict)

    # --- configuration ----------------------------------------------------------------------
    @property
    def database(self) -> str:
        return f"sluice_test_{self.tag}"

    @property
    def topic(self) -> str:
        return f"sluice.test-{self.tag}.metrics"

    @property
    def traces_topic(self) -> str:
        return f"sluice.test-{self.tag}.traces"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports.pg}/{self.database}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports.pg}/postgres"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports.kafka + i}" for i in range(self.brokers))

    def url(self, service: str = "front") -> str:
        return f"http://127.0.0.1:{getattr(self.ports, service)}"

    def script_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_STATE_DIR=str(self.state_dir),
            SLUICE_VENV=str(Path(sys.executable).parent.parent),
            SLUICE_PG_PORT=str(self.ports.pg),
            SLUICE_KAFKA_PORT=str(self.ports.kafka),
            SLUICE_KAFKA_CONTROLLER_PORT=str(self.ports.kafka_controller),
            SLUICE_KAFKA_BROKERS=str(self.brokers),
            # Writers the fault tests kill may use 3 s sessions (Kafka's floor is 6 s), and a
            # multi-broker cluster fences a killed broker after 3 s, not 9 (scripts/kafka.sh).
            SLUICE_KAFKA_GROUP_MIN_SESSION_MS="3000",
            **({"SLUICE_KAFKA_BROKER_SESSION_MS": "3000"} if self.brokers > 1 else {}),
            SLUICE_S3_PORT=str(self.ports.s3),
            **kafka_test_env(),
        )
        return env

    def service_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_PORT=str(self.ports.front),
            SLUICE_PG_DSN=self.dsn,
            SLUICE_KAFKA_BOOTSTRAP=self.bootstrap,
            SLUICE_KAFKA_TOPIC=self.topic,
            SLUICE_KAFKA_TRACES_TOPIC=self.traces_topic,
            SLUICE_KAFKA_WEBHOOKS_TOPIC=f"sluice.test-{self.tag}.webhooks",
            SLUICE_WEBHOOKS_GROUP_ID=f"sluice-webhooks-{self.tag}",
            # The compat cases' webhooks point at a public address this machine cannot reach:
            # delivering every registry event of the session there would only burn CPU.
            # tests/integration/test_webhooks.py runs deliverers of its own.
            SLUICE_WEBHOOKS_DELIVER="false",
            SLUICE_KAFKA_PARTITIONS="4",
            SLUICE_INGEST_PORT=str(self.ports.ingest),
            SLUICE_API_PORT=str(self.ports.api),
            SLUICE_WRITER_METRICS_PORT=str(self.ports.writer),
            SLUICE_WRITER_GROUP_ID=f"sluice-writer-{self.tag}",
            SLUICE_API_ARTIFACT_ROOT=str(self.state_dir / f"artifacts-{self.tag}"),
            SLUICE_API_UI_DIR=str(UI_BUNDLE),
            SLUICE_LOG_LEVEL="INFO",
            # A read waits (read-your-writes fence) until the writer flushed: at the default
            # 0.2 s batch age most metric read-after-write cases wait for the age. 0.05 s still
            # batches under load; 472 compat cases took 76 s instead of 104 s.
            SLUICE_WRITER_BATCH_MAX_AGE_S="0.05",
        )
        env.update(overrides)
        return env

    # --- servers from the repo's scripts ------------------------------------------------------
    def script(self, name: str, *args: str, check: bool = True) -> int:
        result = subprocess.run([str(SCRIPTS / name), *args], env=self.script_env(), check=False)
        if check and result.returncode != 0:
            raise StackError(f"scripts/{name} {' '.join(args)} failed ({result.returncode})")
        return result.returncode

    def ensure_server(self, name: str) -> None:
        """Start a server unless it already runs; remember to stop what we started."""
        if self.script(name, "status", check=False) != 0:
            self.script(name, "start")
            self.started_scripts.append(name)

    def stop_servers(self) -> None:
        for name in reversed(self.started_scripts):
            self.script(name, "stop", check=False)
        self.started_scripts.clear()

    def remove_state(self) -> None:
        """Delete the session's data (servers must be stopped); logs go with it."""
        shutil.rmtree(self.state_dir, ignore_errors=True)

    async def create_database(self, name: str | None = None) -> str:
        """A new empty database (the session's own when ``name`` is None); its DSN."""
        name = name or self.database
        conn = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn.rsplit("/", 1)[0] + "/" + name

    # --- Sluice service processes -------------------------------------------------------------
    def run_cli(self, command: str, **overrides: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "sluice.cli", command],
            env=self.service_env(**overrides),
            check=True,
            timeout=120,
        )

    def start(
        self,
        service: str,
        name: str | None = None,
        health_port: int | None = None,
        /,
        **overrides: str,
    ) -> subprocess.Popen[bytes]:
        """Start ``service`` as process ``name`` (default: the service's name). A second
        process of a service needs its own ``name`` and ``health_port`` (and the override
        that moves its port there); both are positional so no SLUICE_* override collides."""
        name = name or service
        with self.log_path(name).open("ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "sluice.cli", service],
                env=self.service_env(**overrides),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        if health_port is not None:
            self.health_ports[name] = health_port
        self.wait_ready(name)
        return process

    def log_path(self, name: str) -> Path:
        return self.state_dir / f"{name}-{self.tag}.log"

    def health_port(self, name: str) -> int:
        if name in self.health_ports:
            return self.health_ports[name]
        return self.ports.writer if name == "writer" else int(getattr(self.ports, name))

    def wait_ready(self, service: str) -> None:
        port = self.health_port(service)
        path = "/health/ready"
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            process = self.processes[service]
            if process.poll() is not None:
                raise StackError(f"{service} exited with {process.returncode}; see its log")
            if _http_ok(f"http://127.0.0.1:{port}{path}"):
                return
            time.sleep(0.1)
        raise StackError(f"{service} not ready within {READY_DEADLINE_S}s")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        process = self.processes.pop(service)
        process.send_signal(sig)
        return process.wait(timeout=60)

    def stop_services(self) -> None:
        """SIGTERM to every service at once, so their drains overlap; SIGKILL to any still
        running 20 s later."""
        stopping = [self.processes.pop(service) for service in list(self.processes)]
        for process in stopping:
            process.terminate()
        deadline = time.monotonic() + 20
        for process in stopping:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def contiguous_free_ports(n: int) -> int:
    """A base port such that base .. base+n-1 are all free now (Kafka nodes use neighbours).
    Taken below the kernel's ephemeral range: a port in it that is free now can become the
    local end of any outgoing connection before the server that needs it binds."""
    low = _ephemeral_low()
    for _ in range(100):
        base = random.randint(min(20_000, low // 2), low - n)
        sockets = [socket.socket() for _ in range(n)]
        try:
            for i, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", base + i))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise StackError(f"no {n} contiguous free ports")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768
