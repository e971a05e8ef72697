"""The ``sluice`` command an operator meets. Configuration is parsed here, once; subcommands
import lazily so that `sluice migrate` does not load aiohttp apps and nothing runs at import
time. Help texts are written for operators: what a command does and what it touches."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from sluice import buildinfo, config, lifecycle, logs
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
    _add_migrate(commands)
    _add_config(commands)
    _add_users(commands)
    _add_balancer(commands)
    _add_gaps(commands)
    _add_doctor(commands)
    _add_backup(commands)
    _add_gc(commands)
    probe = commands.add_parser(
        "healthcheck",
        help="exit 0 when this container's service is ready (the image's HEALTHCHECK)",
        description="Ask ROLE's /health/ready on the port this environment's settings name;"
        " without ROLE, the role is taken from the container's main process (`sluice api`).",
    )
    probe.add_argument("role", nargs="?", help="ingest, api, writer, front")
    return parser


def _add_balancer(commands: Any) -> None:
    balancer = commands.add_parser(
        "balancer",
        help="print the HAProxy configuration generated from the route table",
        description="Print the HAProxy configuration (deploy/haproxy/haproxy.cfg) generated from"
        " the route table: exact ingest paths to ingest, the rest to the api, health checks on"
        " /health/ready, retries only where safe. Servers come from BALANCER_INGEST and"
        " BALANCER_API (host names re-resolved through DNS), unless fixed lists are given.",
    )
    balancer.add_argument(
        "servers",
        nargs="*",
        metavar="SERVICE=HOST:PORT,...",
        help="fixed server lists instead, both of: ingest=... api=...;"
        " or ingress-paths (the Helm chart's list of ingest paths)",
    )


def _add_migrate(commands: Any) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="apply pending schema migrations and create the Kafka topics",
        description="Apply the pending PostgreSQL migrations (under an advisory lock, so"
        " several at once are safe) and create the metrics topic and its dead-letter topic when"
        " missing. Run it before starting a new version of the services.",
    )
    migrate.add_argument(
        "--status", action="store_true", help="list applied and pending migrations"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="print what would be applied, change nothing"
    )
    migrate.add_argument(
        "--wait-s",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="retry this long while PostgreSQL or Kafka is unreachable (containers, init jobs)",
    )


def _add_config(commands: Any) -> None:
    cfg = commands.add_parser(
        "config",
        help="show every setting: default, current value, meaning",
        description="Show every SLUICE_* setting with its default, its current value in this"
        " environment (passwords masked) and what it does. Exits non-zero when the environment"
        " holds an unknown or invalid SLUICE_* variable.",
    )
    cfg.add_argument("--json", action="store_true", help="one JSON document instead of text")


def _add_users(commands: Any) -> None:
    add = commands.add_parser(
        "user-add",
        help="create a user or change its password (access control)",
        description="Create a user, or set a new password for an existing one. The password"
        " is asked for at the terminal, or read from stdin with --password-stdin (never from"
        " the command line, where other users could see it in the process list).",
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the user may do everything")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    token = commands.add_parser(
        "token-add",
        help="print a new API token for a user",
        description="Create an API token for NAME and print it (only its hash is stored, so it"
        " cannot be shown again). Clients send it as MLFLOW_TRACKING_TOKEN.",
    )
    token.add_argument("name")
    grant = commands.add_parser(
        "grant",
        help="set a user's permission on an experiment or a registered model",
        description="Set NAME's permission on one experiment (by id) or registered model (by"
        " name). NO_PERMISSIONS removes access the default permission would give.",
    )
    grant.add_argument("name")
    grant.add_argument("kind", choices=("experiment", "model"))
    grant.add_argument("target", help="experiment id or registered model name")
    grant.add_argument("level", choices=("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"))


def _add_doctor(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check the running deployment against this configuration",
        description="Check the running deployment against this environment's configuration:"
        " schema version and migration checksums, the metrics and DLQ topics (partitions,"
        " replication factor, min.insync.replicas), each instance's effective configuration"
        " (/health/config) against this one and the others, writers' stored offsets against"
        " Kafka's log (retention gaps), and PostgreSQL replication. Exits 0 only when every"
        " check passes.",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON document instead of text")
    doctor.add_argument(
        "--instance",
        action="append",
        metavar="URL",
        help="base URL of a running process (repeatable); default: where `sluice up` runs"
        " ingest, api and the writers",
    )
    doctor.add_argument(
        "--replicas",
        type=int,
        default=0,
        help="streaming PostgreSQL replicas the primary must have (default 0)",
    )


def _add_backup(commands: Any) -> None:
    backup = commands.add_parser(
        "backup",
        help="back up PostgreSQL online, with the writers' offsets",
        description="Write one consistent snapshot of the database (pg_dump, directory format)"
        " and a manifest with the writers' stored offsets into DIR, while Sluice runs. Restoring"
        " it replays from Kafka every metric point acknowledged since, as long as Kafka still"
        " holds it; runs, params, tags and the registry are as of the backup (use WAL archiving"
        " for point-in-time recovery, docs/operations.md).",
    )
    backup.add_argument("dir", type=Path, help="new or empty folder")
    restore = commands.add_parser(
        "restore",
        help="restore a backup made by `sluice backup`",
        description="Restore DIR into the configured database. Stop every Sluice process first;"
        " start them afterwards: the writers resume from the restored offsets and replay what"
        " Kafka still holds.",
    )
    restore.add_argument("dir", type=Path)
    restore.add_argument(
        "--clean", action="store_true", help="drop the database's existing Sluice objects first"
    )


def duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m") from None


def _add_gc(commands: Any) -> None:
    gc = commands.add_parser(
        "gc",
        help="permanently remove runs and experiments deleted long enough ago",
        description="Permanently remove runs deleted more than --older-than ago (metric points,"
        " latest values, params, tags, inputs, and their folder under a local artifact root),"
        " experiments deleted that long ago once their runs are gone, and old quarantined"
        " points of such runs; optionally dead letters older than --dlq-older-than. Works in"
        " small transactions, safe while Sluice serves traffic. Deleted runs cannot be restored"
        " afterwards.",
    )
    gc.add_argument(
        "--older-than",
        type=duration,
        required=True,
        metavar="AGE",
        help="e.g. 30d; 0 = everything deleted",
    )
    gc.add_argument("--batch", type=int, default=100, help="runs per transaction (default 100)")
    gc.add_argument(
        "--dlq-older-than", type=duration, metavar="AGE", help="also trim the dead-letter topic"
    )


def _add_gaps(commands: Any) -> None:
    gaps = commands.add_parser(
        "acknowledge-gap",
        help="accept records Kafka deleted before a writer stored them",
        description="A writer holds a partition whose stored offset is below Kafka's log start"
        " (retention deleted records it never stored; metric sluice_writer_retention_gap_records)."
        " This records the lost offset range in writer_offset_gaps and moves the stored offset to"
        " the log start; the writer resumes within seconds. The lost points are not recoverable"
        " from Kafka: restore them from elsewhere first if you can.",
    )
    gaps.add_argument(
        "--partition",
        type=int,
        action="append",
        help="only this partition (repeatable); default: every partition with a gap",
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(os.environ)
    except config.ConfigError as exc:
        sys.exit(f"sluice: configuration error: {exc}")
    logs.configure(args.command, settings.log_level, settings.access_log)
    try:
        _dispatch(args, settings, os.environ)
    except StartupError as exc:
        sys.exit(f"sluice {args.command}: {exc}")


def _dispatch(args: argparse.Namespace, settings: config.Settings, env: Mapping[str, str]) -> None:
    if args.command == "config":
        from sluice.commands.show_config import show

        print(show(settings, env, as_json=args.json))
    elif args.command in ("user-add", "token-add", "grant"):
        _run(_admin(args, settings))
    elif args.command == "migrate":
        from sluice.commands.migrate import command as migrate

        _run(migrate(settings, status=args.status, dry_run=args.dry_run, wait_s=args.wait_s))
    elif args.command == "gc":
        _run(_gc(settings, args))
    elif args.command in ("backup", "restore"):
        _run(_backup(settings, args))
    elif args.command == "doctor":
        from sluice.commands.up import local_addresses

        # The addresses `make up` derived for its children, when run from the checkout.
        _run(_doctor(config.load(local_addresses(env)), args))
    elif args.command == "healthcheck":
        from sluice.commands import healthcheck

        sys.exit(healthcheck.main(args.role, settings))
    elif args.command == "balancer":
        from sluice.commands import balancer

        try:
            print(balancer.main(args.servers), end="")
        except ValueError as exc:
            sys.exit(f"sluice balancer: {exc}")
    elif args.command == "acknowledge-gap":
        _run(_acknowledge_gap(settings, args.partition))
    elif args.command == "up":
        from sluice.commands.up import main as up_main

        # `up` derives the children's environment (local server addresses) itself.
        up_main(env)
    else:
        from sluice import health

        health.set_config_document(buildinfo.publish(settings))
        lifecycle.run(lambda stop: _serve(args.command, settings, stop))


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


def _read_password(from_stdin: bool, ask: Callable[[str], str] = getpass.getpass) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = ask("Password: ")
        if ask("Password again: ") != password:
            sys.exit("sluice user-add: the passwords differ")
    if not password:
        sys.exit("sluice user-add: empty password")
    return password


async def _admin(args: argparse.Namespace, settings: config.Settings) -> None:
    from sluice.commands import users

    if args.command == "user-add":
        password = _read_password(args.password_stdin)
        await users.add_user(settings.pg, args.name, password, args.admin)
    elif args.command == "token-add":
        print(await users.add_token(settings.pg, args.name))
    else:
        await users.grant(settings.pg, args.name, args.kind, args.target, args.level)


async def _gc(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands.gc import collect

    done = await collect(settings, args.older_than, args.batch, args.dlq_older_than)
    print(
        f"removed {done.runs} runs, {done.experiments} experiments,"
        f" {done.quarantined_rows} quarantined points, {done.artifact_folders} artifact folders"
        f" ({done.artifacts_kept} artifact locations outside the local root kept),"
        f" {done.dlq_records} dead letters"
    )


async def _backup(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands import backup

    if args.command == "backup":
        manifest = await backup.backup(settings, args.dir)
        print(f"backup written to {args.dir} (schema {manifest.schema}); writers' offsets:")
    else:
        manifest = await backup.restore(settings, args.dir, clean=args.clean)
        print(f"restored {args.dir} from {manifest.created_at}; writers resume from:")
    for topic, partitions in sorted(manifest.offsets.items()):
        print(f"  {topic}: " + ", ".join(f"{p}@{o}" for p, o in sorted(partitions.items())))


async def _doctor(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands import doctor

    instances = args.instance or doctor.default_instances(settings)
    checks = await doctor.run_checks(settings, doctor.Options(instances, args.replicas))
    print(doctor.render(checks, as_json=args.json))
    if not all(check.ok for check in checks):
        sys.exit(1)


async def _acknowledge_gap(settings: config.Settings, partitions: list[int] | None) -> None:
    from sluice.commands.gaps import acknowledge

    done = await acknowledge(settings, partitions)
    for gap in done:
        lost = gap.to_offset - gap.from_offset
        print(
            f"partition {gap.partition}: offsets {gap.from_offset}..{gap.to_offset - 1} lost"
            f" ({lost} records), writer resumes at {gap.to_offset}"
        )
    if not done:
        print("no retention gap: every stored offset is at or above its partition's log start")


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
