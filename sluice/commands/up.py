"""``sluice up``: local services from packages, then ingest, writer, api and the front as
separate processes, restarted with backoff when one dies. SIGINT/SIGTERM stops everything
this command started, in reverse order.

PostgreSQL and Kafka are started by scripts/pg.sh and scripts/kafka.sh unless the environment
names external ones (``SLUICE_PG_DSN``, ``SLUICE_KAFKA_BOOTSTRAP``); the scripts then tell the
address (``dsn``, ``bootstrap``), which is handed to every child, so ports set for the scripts
(``SLUICE_PG_PORT``, ``SLUICE_KAFKA_PORT``) need no second setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice import config, lifecycle, metrics
from sluice.commands.migrate import migrate_all

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SERVICES = ("api", "ingest", "front")
_STOP_DEADLINE_S = 15.0
_HEALTHY_AFTER_S = 60.0  # a child that ran this long gets its backoff reset
_BACKOFF_MAX_S = 30.0


@dataclass(slots=True)
class Child:
    name: str  # process name in logs
    service: str  # the `sluice` subcommand it runs
    env: dict[str, str]
    backoff_s: float = 1.0
    restarts: int = 0
    process: asyncio.subprocess.Process | None = field(default=None)


def run_script(script: str, *args: str, env: Mapping[str, str]) -> str:
    """Run a provisioning script; its stdout is the answer, its failure aborts `up`."""
    done = subprocess.run(
        [str(SCRIPTS / script), *args],
        env=dict(env),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return done.stdout.strip()


@dataclass(slots=True)
class LocalServices:
    """The servers `up` started itself (and must stop)."""

    env: dict[str, str]
    started: list[str] = field(default_factory=list)

    def start(self) -> dict[str, str]:
        """Start what is not external; returns the child environment with its addresses."""
        child_env = dict(self.env)
        if "SLUICE_PG_DSN" not in self.env:
            run_script("pg.sh", "start", env=self.env)
            self.started.append("pg.sh")
            child_env["SLUICE_PG_DSN"] = run_script("pg.sh", "dsn", env=self.env)
        if "SLUICE_KAFKA_BOOTSTRAP" not in self.env:
            run_script("kafka.sh", "start", env=self.env)
            self.started.append("kafka.sh")
            child_env["SLUICE_KAFKA_BOOTSTRAP"] = run_script("kafka.sh", "bootstrap", env=self.env)
        return child_env

    def stop(self) -> None:
        for script in reversed(self.started):
            with contextlib.suppress(subprocess.CalledProcessError):
                run_script(script, "stop", env=self.env)
        self.started.clear()


async def up(environ: Mapping[str, str], stop: asyncio.Event) -> None:
    services = LocalServices(dict(environ))
    try:
        child_env = await asyncio.to_thread(services.start)
        settings = config.load(child_env)
        await migrate_all(settings.pg, settings.kafka)
        children = _children(settings, child_env)
        tasks = [asyncio.create_task(_keep_running(c, stop)) for c in children]
        log.info("sluice is up", extra={"url": f"http://{settings.host}:{settings.port}"})
        await stop.wait()
        await asyncio.gather(*tasks)
    finally:
        await asyncio.to_thread(services.stop)


def _children(settings: config.Settings, env: dict[str, str]) -> list[Child]:
    """Writers first (each with its own health port), then api, ingest and the front."""
    writers = [
        Child(
            f"writer-{i}",
            "writer",
            {**env, "SLUICE_WRITER_METRICS_PORT": str(settings.writer.metrics_port + i)},
        )
        for i in range(settings.writer.processes)
    ]
    return writers + [Child(name, name, env) for name in SERVICES]


async def _keep_running(child: Child, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        child.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sluice.cli", child.service, env=child.env
        )
        waiter = asyncio.create_task(child.process.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            await _terminate(child.process, waiter)
            return
        await _backoff(child, started, waiter.result(), stop)


async def _backoff(child: Child, started: float, code: int, stop: asyncio.Event) -> None:
    if time.monotonic() - started > _HEALTHY_AFTER_S:
        child.backoff_s = 1.0
    child.restarts += 1
    metrics.supervisor_restarts_total.labels(child.name).inc()
    log.warning(
        "service exited; restarting",
        extra={"service": child.name, "code": code, "in_s": child.backoff_s},
    )
    await lifecycle.sleep_unless_stopped(stop, child.backoff_s)
    child.backoff_s = min(child.backoff_s * 2, _BACKOFF_MAX_S)


async def _terminate(process: asyncio.subprocess.Process, waiter: asyncio.Task[int]) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(waiter), timeout=_STOP_DEADLINE_S)
    except TimeoutError:
        process.kill()
        await waiter
