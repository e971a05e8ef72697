"""``sluice up-ha``: the production shape on one machine.

HAProxy on ``SLUICE_PORT`` in front of 2 ingest and 2 api processes, 2 writers, a 3-broker
KRaft Kafka (RF 3, min ISR 2), PostgreSQL primary + synchronous standby with automatic
failover (pg_auto_failover, scripts/pgha.sh) and an S3 server (moto) for artifacts. Every
Sluice process is a child whose command line names its role (``sluice ingest``); a child that
dies is restarted (sluice/commands/supervise.py). Kafka brokers and PostgreSQL nodes are
started by their scripts and survive a restart of `up-ha`; in production, systemd (or the
platform) restarts those.

As with `sluice up`, an external service named in the environment is used instead of a local
one: ``SLUICE_PG_DSN``, ``SLUICE_KAFKA_BOOTSTRAP``, ``SLUICE_API_ARTIFACT_ROOT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemas.route_record import Service
from sluice import config
from sluice.commands import balancer
from sluice.commands.migrate import migrate_all
from sluice.commands.supervise import Child, run_until_signalled, supervise
from sluice.commands.up import run_script

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
ARTIFACT_BUCKET = "sluice-artifacts"
# moto accepts any credentials; botocore only needs some to sign with.
_LOCAL_S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sluice-local",
    "AWS_SECRET_ACCESS_KEY": "sluice-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True, slots=True)
class Process:
    """One Sluice process of the topology."""

    name: str  # e.g. "ingest-2"
    role: str  # the `sluice` subcommand
    env: Mapping[str, str]  # settings that differ from the shared environment
    port: int  # where /health/ready answers


def plan(settings: config.Settings) -> list[Process]:
    """Writers first (they must consume before anything is produced), then api and ingest."""
    ha = settings.ha

    def instance(role: str, i: int, count: int, port_var: str, port: int) -> Process:
        env = {port_var: str(port), "SLUICE_INSTANCES": str(count)}
        return Process(f"{role}-{i + 1}", role, env, port)

    writers = [
        instance("writer", i, ha.writer_processes, "SLUICE_WRITER_METRICS_PORT", port)
        for i, port in enumerate(_ports(settings.writer.metrics_port, 1, ha.writer_processes))
    ]
    apis = [
        instance("api", i, ha.api_processes, "SLUICE_API_PORT", port)
        for i, port in enumerate(_ports(settings.api.port, ha.port_stride, ha.api_processes))
    ]
    ingests = [
        instance("ingest", i, ha.ingest_processes, "SLUICE_INGEST_PORT", port)
        for i, port in enumerate(_ports(settings.ingest.port, ha.port_stride, ha.ingest_processes))
    ]
    return writers + apis + ingests


def _ports(first: int, stride: int, count: int) -> list[int]:
    return [first + i * stride for i in range(count)]


def balancer_config(settings: config.Settings, processes: list[Process]) -> str:
    host = settings.host

    def addresses(role: str) -> list[str]:
        return [f"{host}:{p.port}" for p in processes if p.role == role]

    servers: dict[Service, Sequence[str]] = {"ingest": addresses("ingest"), "api": addresses("api")}
    return balancer.render(servers, bind=f"{host}:{settings.port}")


def sluice_argv(role: str) -> list[str]:
    """``<venv>/bin/sluice <role>``: the role shows in ``ps`` (``python -m sluice.cli`` when the
    console script is not installed beside the interpreter)."""
    script = Path(sys.executable).parent / "sluice"
    if script.exists():
        return [sys.executable, str(script), role]
    return [sys.executable, "-m", "sluice.cli", role]


# --- local infrastructure -------------------------------------------------------------------
@dataclass(slots=True)
class Infrastructure:
    """PostgreSQL (HA), Kafka (3 brokers) and S3 that `up-ha` started itself (and stops)."""

    env: dict[str, str]
    started: list[str] = field(default_factory=list)

    def start(self) -> dict[str, str]:
        """Start what is not external; returns the children's environment."""
        env = dict(self.env)
        if "SLUICE_PG_DSN" not in env:
            self._start("pgha.sh")
            env["SLUICE_PG_DSN"] = run_script("pgha.sh", "dsn", env=self.env)
        if "SLUICE_KAFKA_BOOTSTRAP" not in env:
            self.env.setdefault("SLUICE_KAFKA_BROKERS", "3")
            # Three JVMs starting at once on a small machine take longer than one.
            self.env.setdefault("SLUICE_KAFKA_START_TIMEOUT", "180")
            self._start("kafka.sh")
            env["SLUICE_KAFKA_BOOTSTRAP"] = run_script("kafka.sh", "bootstrap", env=self.env)
            env.setdefault("SLUICE_KAFKA_REPLICATION_FACTOR", "3")
            env.setdefault("SLUICE_KAFKA_MIN_INSYNC_REPLICAS", "2")
        if "SLUICE_API_ARTIFACT_ROOT" not in env:
            self._start("s3.sh")
            endpoint = run_script("s3.sh", "endpoint", env=self.env)
            env |= {k: env.get(k, v) for k, v in _LOCAL_S3_CREDENTIALS.items()}
            _create_bucket(endpoint, env)
            env["SLUICE_API_ARTIFACT_ROOT"] = f"s3://{ARTIFACT_BUCKET}/artifacts"
            env["SLUICE_API_ARTIFACT_S3_ENDPOINT_URL"] = endpoint
        return env

    def _start(self, script: str) -> None:
        run_script(script, "start", env=self.env)
        self.started.append(script)

    def stop(self) -> None:
        for script in reversed(self.started):
            with contextlib.suppress(subprocess.CalledProcessError):
                run_script(script, "stop", env=self.env)
        self.started.clear()


def _create_bucket(endpoint: str, env: Mapping[str, str]) -> None:
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415  (aioboto3's dependency)

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=ARTIFACT_BUCKET)


def haproxy_binary(settings: config.Settings, env: Mapping[str, str]) -> str:
    if settings.ha.haproxy_bin:
        return settings.ha.haproxy_bin
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    return found or run_script("haproxy.sh", "ensure", env=env)


def state_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("SLUICE_STATE_DIR", REPO / ".state")).resolve()


# --- the command ----------------------------------------------------------------------------
def main(environ: Mapping[str, str]) -> None:
    """Entry point of `sluice up-ha`; signals as `sluice up` (a later signal hurries)."""
    run_until_signalled(
        lambda stop, hurry: up_ha(environ, stop, hurry),
        "second signal: killing the processes, then stopping the servers",
    )


async def up_ha(environ: Mapping[str, str], stop: asyncio.Event, hurry: asyncio.Event) -> None:
    infrastructure = Infrastructure(dict(environ))
    try:
        env = await asyncio.to_thread(infrastructure.start)
        if stop.is_set():
            return
        settings = config.load(env)
        await migrate_all(settings.pg, settings.kafka)
        processes = plan(settings)
        haproxy = await asyncio.to_thread(_haproxy_child, settings, env, processes, environ)
        children = [Child(p.name, sluice_argv(p.role), {**env, **p.env}) for p in processes]
        log.info(
            "sluice up-ha is up",
            extra={
                "url": f"http://{settings.host}:{settings.port}",
                "processes": [p.name for p in processes],
                "artifacts": f"{settings.api.artifact_root} (shared by every api process)",
                "pg": settings.pg.dsn,
                "kafka": settings.kafka.bootstrap,
            },
        )
        await supervise([*children, haproxy], stop, hurry)
    finally:
        await asyncio.to_thread(infrastructure.stop)


def _haproxy_child(
    settings: config.Settings,
    env: Mapping[str, str],
    processes: list[Process],
    environ: Mapping[str, str],
) -> Child:
    """Write and check the configuration; HAProxy runs in the foreground (-db) in master-worker
    mode (-W), so a SIGUSR2 to it reloads the configuration with draining."""
    binary = haproxy_binary(settings, env)
    folder = state_dir(environ) / "ha"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"haproxy-{settings.port}.cfg"
    path.write_text(balancer_config(settings, processes))
    stats = {"BALANCER_STATS_BIND": f"{settings.host}:{settings.ha.balancer_stats_port}"}
    subprocess.run([binary, "-c", "-q", "-f", str(path)], check=True, env={**env, **stats})
    return Child("haproxy", [binary, "-W", "-db", "-f", str(path)], {**env, **stats})
