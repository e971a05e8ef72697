"""What the operator commands do once their arguments are parsed: each runner imports its
command module lazily (so `sluice --help` loads nothing heavy) and prints what an operator reads."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from sluice import config


def read_password(from_stdin: bool, ask: Callable[[str], str] = getpass.getpass) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = ask("Password: ")
        if ask("Password again: ") != password:
            sys.exit("sluice user-add: the passwords differ")
    if not password:
        sys.exit("sluice user-add: empty password")
    return password


async def admin(args: argparse.Namespace, settings: config.Settings) -> None:
    from sluice.commands import users

    if args.command == "user-add":
        password = read_password(args.password_stdin)
        await users.add_user(settings.pg, args.name, password, args.admin)
    elif args.command == "token-add":
        print(await users.add_token(settings.pg, args.name))
    else:
        await users.grant(settings.pg, args.name, args.kind, args.target, args.level)


async def run_gc(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands.gc import collect

    done = await collect(settings, args.older_than, args.batch, args.dlq_older_than)
    print(
        f"removed {done.runs} runs, {done.experiments} experiments,"
        f" {done.quarantined_rows} quarantined points, {done.artifact_folders} artifact folders"
        f" ({done.artifacts_kept} artifact locations outside Sluice's artifact root kept),"
        f" {done.dlq_records} dead letters"
    )


async def backup_or_restore(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands import backup

    if args.command == "backup":
        manifest = await backup.backup(settings, args.dir)
        print(f"backup written to {args.dir} (schema {manifest.schema}); writers' offsets:")
    else:
        manifest = await backup.restore(settings, args.dir, clean=args.clean)
        print(f"restored {args.dir} from {manifest.created_at}; writers resume from:")
    for topic, partitions in sorted(manifest.offsets.items()):
        print(f"  {topic}: " + ", ".join(f"{p}@{o}" for p, o in sorted(partitions.items())))


async def run_doctor(settings: config.Settings, args: argparse.Namespace) -> None:
    from sluice.commands import doctor

    instances = args.instance or doctor.default_instances(settings)
    checks = await doctor.run_checks(settings, doctor.Options(instances, args.replicas))
    print(doctor.render(checks, as_json=args.json))
    if not all(check.ok for check in checks):
        sys.exit(1)


async def acknowledge_gap(
    settings: config.Settings, partitions: list[int] | None, traces: bool
) -> None:
    from sluice.commands.gaps import acknowledge

    done = await acknowledge(settings, partitions, traces=traces)
    for gap in done:
        lost = gap.to_offset - gap.from_offset
        print(
            f"partition {gap.partition}: offsets {gap.from_offset}..{gap.to_offset - 1} lost"
            f" ({lost} records), writer resumes at {gap.to_offset}"
        )
    if not done:
        print("no retention gap: every stored offset is at or above its partition's log start")
