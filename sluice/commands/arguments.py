"""The command line of the operator commands: each one's arguments and the help an operator
reads (`sluice COMMAND --help`). Nothing here runs a command; sluice/cli.py dispatches."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_operator_commands(commands: Any) -> None:
    """Every operator command's subparser, in the order `sluice --help` lists them."""
    _add_migrate(commands)
    _add_config(commands)
    _add_users(commands)
    _add_balancer(commands)
    _add_gaps(commands)
    _add_doctor(commands)
    _add_backup(commands)
    _add_gc(commands)
    _add_healthcheck(commands)
    _add_transfer(commands)


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
    gaps.add_argument(
        "--traces", action="store_true", help="partitions of the traces topic, not the metrics one"
    )


_URI_HELP = "MLflow backend store URI: sqlite:///path/to/mlflow.db or postgresql://user@host/db"


def _add_transfer(commands: Any) -> None:
    imp = commands.add_parser(
        "import",
        help="copy an MLflow database (tracking + registry) into Sluice",
        description="Copy an MLflow tracking and registry database into the configured Sluice"
        " with SQL: experiments, runs, params, tags, every metric point, datasets, logged models"
        " and the registry, ids and artifact URIs kept. Resumable and idempotent (run it again"
        " after an interruption); ends with a verification table. Exit 0 when every count"
        " matches. See docs/migration.md.",
    )
    imp.add_argument("uri", help=_URI_HELP)
    imp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace rows Sluice already holds with other values (default: refuse and stop)",
    )
    exp = commands.add_parser(
        "export",
        help="write Sluice's data into an empty MLflow database",
        description="Write everything Sluice holds into an empty MLflow 3.x database (create it"
        " with `mlflow db upgrade URI`), which `mlflow server` then serves. One transaction on"
        " the target; ends with a verification table. See docs/migration.md.",
    )
    exp.add_argument("uri", help=_URI_HELP)


def _add_healthcheck(commands: Any) -> None:
    probe = commands.add_parser(
        "healthcheck",
        help="exit 0 when this container's service is ready (the image's HEALTHCHECK)",
        description="Ask ROLE's /health/ready on the port this environment's settings name;"
        " without ROLE, the role is taken from the container's main process (`sluice api`).",
    )
    probe.add_argument("role", nargs="?", help="ingest, api, writer, front")
