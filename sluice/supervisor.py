"""``sluice up``: local services from packages, then ingest, writer, api and the front as
separate processes, restarted with backoff when one dies. SIGINT/SIGTERM stops everything
this command started, in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sluice import metrics
from sluice.config import Settings
from sluice.migrate import migrate_all

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
SERVICES = ("writer", "api", "ingest", "front")
_STOP_DEADLINE_S = 15.0
_HEALTHY_AFTER_S = 60.0  # a child that ran this long gets its backoff reset


@dataclass(slots=True)
class Child:
    name: str
    backoff_s: float = 1.0
    restarts: int = 0
    process: asyncio.subprocess.Process | None = field(default=None)


def run_script(script: str, *args: str) -> None:
    """Run a provisioning script synchronously; its failure aborts `up`."""
    subprocess.run([str(SCRIPTS / script), *args], check=True)


async def up(settings: Settings, stop: asyncio.Event, migrate: bool = True) -> None:
    run_script("pg.sh", "start")
    run_script("kafka.sh", "start")
    try:
        if migrate:
            await migrate_all(settings.pg, settings.kafka)
        children = [Child(name) for name in SERVICES]
        tasks = [asyncio.create_task(_keep_running(child, stop)) for child in children]
        log.info("sluice is up", extra={"url": f"http://{settings.host}:{settings.port}"})
        await stop.wait()
        await asyncio.gather(*tasks)
    finally:
        run_script("kafka.sh", "stop")
        run_script("pg.sh", "stop")


async def _keep_running(child: Child, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        child.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sluice.cli", child.name, env=os.environ.copy()
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
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=child.backoff_s)
    child.backoff_s = min(child.backoff_s * 2, 30.0)


async def _terminate(process: asyncio.subprocess.Process, waiter: asyncio.Task[int]) -> None:
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(waiter), timeout=_STOP_DEADLINE_S)
    except TimeoutError:
        process.kill()
        await waiter
