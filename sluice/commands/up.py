"""``sluice up``: local services from packages, then ingest, writer, api and the front as
separate processes, restarted with backoff when one dies. SIGINT/SIGTERM stops everything
this command started, in reverse order.

Stopping, however signalled (Ctrl-C or SIGTERM to the process group, SIGTERM to `up` alone):
the children run in process groups of their own, so a signal to `up`'s group reaches them only
through `up`, exactly once, and each drains; the provisioning scripts run in sessions of their
own too, so a group-wide signal cannot cut a `pg.sh stop` short. A signal a second or more
after the first hurries the stop (children are killed instead of drained) but PostgreSQL and
Kafka are still stopped: only SIGKILL leaves them running. Children die with `up` even then
(Linux parent-death signal), so no orphan keeps a port.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice import config
from sluice.commands.migrate import migrate_all
from sluice.commands.supervise import Child, run_until_signalled, supervise

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SERVICES = ("api", "ingest", "front")


def run_script(script: str, *args: str, env: Mapping[str, str]) -> str:
    """Run a provisioning script; its stdout is the answer, its failure aborts `up` (and
    `up-ha`, which provisions through it too)."""
    done = subprocess.run(
        [str(SCRIPTS / script), *args],
        env=dict(env),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal to the command's group must not kill a script half-way
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


def main(environ: Mapping[str, str]) -> None:
    """Entry point of `sluice up`: signals as described in the module docstring."""
    run_until_signalled(
        lambda stop, hurry: up(environ, stop, hurry),
        "second signal: killing the services, then stopping PostgreSQL and Kafka",
    )


def local_addresses(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus the PostgreSQL and Kafka addresses `up` gives its children when it runs
    the local servers itself (the scripts derive them from SLUICE_PG_PORT etc.), so a command
    run from the checkout (`sluice doctor`) talks to the deployment `make up` started."""
    env = dict(environ)
    if not SCRIPTS.is_dir():
        return env  # an installed package without the checkout's scripts: nothing to derive
    if "SLUICE_PG_DSN" not in env:
        env["SLUICE_PG_DSN"] = run_script("pg.sh", "dsn", env=environ)
    if "SLUICE_KAFKA_BOOTSTRAP" not in env:
        env["SLUICE_KAFKA_BOOTSTRAP"] = run_script("kafka.sh", "bootstrap", env=environ)
    return env


async def up(environ: Mapping[str, str], stop: asyncio.Event, hurry: asyncio.Event) -> None:
    services = LocalServices(dict(environ))
    try:
        child_env = await asyncio.to_thread(services.start)
        if stop.is_set():
            return
        settings = config.load(child_env)
        await migrate_all(settings.pg, settings.kafka)
        running = asyncio.create_task(supervise(_children(settings, child_env), stop, hurry))
        log.info("sluice is up", extra={"url": f"http://{settings.host}:{settings.port}"})
        await running
    finally:
        await asyncio.to_thread(services.stop)


def _children(settings: config.Settings, env: dict[str, str]) -> list[Child]:
    """Writers first (each with its own health port), then api, ingest and the front."""
    writers = [
        _child(
            f"writer-{i}",
            "writer",
            {**env, "SLUICE_WRITER_METRICS_PORT": str(settings.writer.metrics_port + i)},
        )
        for i in range(settings.writer.processes)
    ]
    return writers + [_child(name, name, env) for name in SERVICES]


def _child(name: str, service: str, env: dict[str, str]) -> Child:
    return Child(name, (sys.executable, "-m", "sluice.cli", service), env)
