"""The ``sluice`` command an operator meets. Configuration is parsed here, once; subcommands
import lazily so that `sluice migrate` does not load aiohttp apps and nothing runs at import
time. Help texts are written for operators: what a command does and what it touches."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from sluice import buildinfo, config, lifecycle, logs
from sluice.commands import runners
from sluice.commands.arguments import add_operator_commands
from sluice.errors import StartupError

DESCRIPTION = """\
Sluice: an MLflow-compatible tracking server for very high write rates (metric points go
through Kafka into PostgreSQL). Every setting is a SLUICE_* environment variable; `sluice config`
lists them with their defaults, current values and meaning."""

EPILOG = """\
quick start:   sluice up          (PostgreSQL, Kafka and every service; MLflow API on :5000)
production:    sluice migrate, then run ingest, writer and api processes behind a load balancer
               (writes to ingest, everything else to api; see docs/operations.md)"""

# name: (one line for `sluice --help`, the description of `sluice NAME --help`)
SERVICES = {
    "up": (
        "run everything locally (PostgreSQL, Kafka, every service) on SLUICE_PORT",
        "Start PostgreSQL and Kafka from packages (unless SLUICE_PG_DSN / SLUICE_KAFKA_BOOTSTRAP"
        " name external ones), apply migrations, then run the writers, api, ingest and the front"
        " on SLUICE_PORT. A service that dies is restarted. Ctrl-C or SIGTERM (to this process"
        " or its group) drains every service and stops what `up` started.",
    ),
    "up-ha": (
        "run the production shape locally: HAProxy, 2 ingest, 2 api, 2 writers, HA PostgreSQL",
        "The production topology on one machine: HAProxy on SLUICE_PORT in front of 2 ingest"
        " and 2 api processes, 2 writers, a 3-broker Kafka (RF 3, min ISR 2), PostgreSQL primary"
        " + synchronous standby with automatic failover (pg_auto_failover) and moto S3 for"
        " artifacts. A process that dies is restarted. Ctrl-C or SIGTERM stops everything.",
    ),
    "ingest": (
        "serve MLflow write calls (metrics go to Kafka)",
        "Serve MLflow write calls (log-metric, log-batch, set-tag, ...) on SLUICE_INGEST_PORT."
        " Metric points are answered once Kafka acknowledged them; params and tags are"
        " written to PostgreSQL. Refuses to start against a database at another schema.",
    ),
    "writer": (
        "store metric points from Kafka in PostgreSQL",
        "Consume the metrics topic and store its points in PostgreSQL, with the consumer"
        " offsets in the same transaction. Run up to one process per partition;"
        " /health and /metrics on SLUICE_WRITER_METRICS_PORT.",
    ),
    "api": (
        "serve MLflow reads, lifecycle, registry and artifacts",
        "Serve MLflow reads, run and experiment lifecycle, the model registry and artifacts on"
        " SLUICE_API_PORT. Refuses to start against a database at another schema.",
    ),
    "front": (
        "development proxy routing MLflow paths to ingest or api",
        "Development reverse proxy on SLUICE_PORT: MLflow write paths to ingest, everything"
        " else to the api. Production puts a load balancer there (docs/operations.md).",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sluice {buildinfo.version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (short, text) in SERVICES.items():
        commands.add_parser(name, help=short, description=text)
    add_operator_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(os.environ)
        if args.command == "api":
            config.require_shared_artifacts(settings)
        if args.command in ("ingest", "api"):
            settings = config.instance_share(settings)
    except config.ConfigError as exc:
        sys.exit(f"sluice: configuration error: {exc}")
    logs.configure(args.command, settings.log_level, settings.access_log)
    if args.command in SERVICES:
        from sluice import telemetry

        telemetry.configure(args.command, settings.otel_endpoint)
    try:
        _dispatch(args, settings, os.environ)
    except StartupError as exc:
        sys.exit(f"sluice {args.command}: {exc}")


Runner = Callable[[argparse.Namespace, config.Settings, Mapping[str, str]], None]


def _dispatch(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    runner = _RUNNERS.get(args.command, _run_service)
    runner(args, settings, env)


def _show_config(
    args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]
) -> None:
    from sluice.commands.show_config import show

    print(show(settings, env, as_json=args.json))


def _migrate(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    from sluice.commands.migrate import command as migrate

    _run(migrate(settings, status=args.status, dry_run=args.dry_run, wait_s=args.wait_s))


def _run_doctor(
    args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]
) -> None:
    from sluice.commands.up import local_addresses

    # The addresses `make up` derived for its children, when run from the checkout.
    _run(runners.run_doctor(config.load(local_addresses(env)), args))


def _healthcheck(
    args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]
) -> None:
    from sluice.commands import healthcheck

    sys.exit(healthcheck.main(args.role, settings))


def _balancer(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    from sluice.commands import balancer

    try:
        print(balancer.main(args.servers), end="")
    except ValueError as exc:
        sys.exit(f"sluice balancer: {exc}")


def _transfer(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    from sluice.commands.transfer.command import run as transfer

    overwrite = getattr(args, "overwrite", False)
    sys.exit(asyncio.run(transfer(args.command, args.uri, settings.pg, overwrite=overwrite)))


def _up(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    from sluice.commands.up import main as up_main

    # `up` derives the children's environment (local server addresses) itself.
    up_main(env)


def _up_ha(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    from sluice.commands.ha import main as up_ha_main

    up_ha_main(env)


def _run_service(
    args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]
) -> None:
    from sluice import health

    health.set_config_document(buildinfo.publish(settings))
    lifecycle.run(lambda stop: _serve(args.command, settings, stop))


_RUNNERS: dict[str, Runner] = {
    "config": _show_config,
    "user-add": lambda args, settings, env: _run(runners.admin(args, settings)),
    "token-add": lambda args, settings, env: _run(runners.admin(args, settings)),
    "grant": lambda args, settings, env: _run(runners.admin(args, settings)),
    "migrate": _migrate,
    "gc": lambda args, settings, env: _run(runners.run_gc(settings, args)),
    "backup": lambda args, settings, env: _run(runners.backup_or_restore(settings, args)),
    "restore": lambda args, settings, env: _run(runners.backup_or_restore(settings, args)),
    "doctor": _run_doctor,
    "healthcheck": _healthcheck,
    "balancer": _balancer,
    "acknowledge-gap": lambda args, settings, env: _run(
        runners.acknowledge_gap(settings, args.partition, args.traces)
    ),
    "import": _transfer,
    "export": _transfer,
    "up": _up,
    "up-ha": _up_ha,
}


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


async def _serve(command: str, settings: config.Settings, stop: asyncio.Event) -> None:
    if command in ("ingest", "api", "writer"):
        from sluice import schema

        await schema.require_current(settings.pg)
    if command == "ingest":
        from ingest.app import build_app as build_ingest

        app = build_ingest(settings)
        await lifecycle.serve_app(app, settings.ingest.host, settings.ingest.port, stop)
    elif command == "api":
        from api.app import build_app as build_api
        from sluice.disk import watch_artifact_root

        watch_artifact_root(settings.api.artifact_root)

        await lifecycle.serve_app(build_api(settings), settings.api.host, settings.api.port, stop)
    elif command == "writer":
        from writer.main import run

        await run(settings, stop)
    elif command == "front":
        from sluice.commands.front import run as run_front

        await run_front(settings, stop)


if __name__ == "__main__":
    main()
