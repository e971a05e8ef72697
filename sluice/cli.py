"""The ``sluice`` command. Configuration is parsed here, once; subcommands import lazily so
that `sluice migrate` does not load aiohttp apps and nothing runs at import time."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from sluice import config, lifecycle, logs

COMMANDS = ("ingest", "writer", "api", "front", "migrate", "up", "up-ha", "config")
ADMIN_COMMANDS = ("user-add", "token-add", "grant")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    parser.add_argument("command", choices=COMMANDS + ADMIN_COMMANDS)
    parser.add_argument(
        "args",
        nargs="*",
        help="user-add NAME PASSWORD [admin]; token-add NAME;"
        " grant NAME experiment|model ID READ|EDIT|MANAGE|NO_PERMISSIONS",
    )
    args = parser.parse_args(argv)
    try:
        settings = config.load(os.environ)
        if args.command == "api":
            config.require_shared_artifacts(settings)
    except config.ConfigError as exc:
        sys.exit(f"sluice: configuration error: {exc}")
    logs.configure(args.command, settings.log_level)
    if args.command == "config":
        print("\n".join(config.env_names()))
        return
    if args.command in ADMIN_COMMANDS:
        asyncio.run(_admin(args.command, args.args, settings))
        return
    if args.command == "migrate":
        from sluice.commands.migrate import migrate_all

        asyncio.run(migrate_all(settings.pg, settings.kafka))
        return
    lifecycle.run(lambda stop: _serve(args.command, settings, stop))


async def _admin(command: str, args: list[str], settings: config.Settings) -> None:
    from sluice.commands import users

    if command == "user-add" and len(args) in (2, 3):
        await users.add_user(settings.pg, args[0], args[1], args[2:] == ["admin"])
    elif command == "token-add" and len(args) == 1:
        print(await users.add_token(settings.pg, args[0]))
    elif command == "grant" and len(args) == 4 and args[1] in ("experiment", "model"):
        await users.grant(settings.pg, *args)
    else:
        sys.exit(f"sluice {command}: wrong arguments {args} (see sluice --help)")


async def _serve(command: str, settings: config.Settings, stop: asyncio.Event) -> None:
    if command == "ingest":
        from ingest.app import build_app as build_ingest

        app = build_ingest(settings)
        await lifecycle.serve_app(app, settings.ingest.host, settings.ingest.port, stop)
    elif command == "api":
        from api.app import build_app as build_api

        await lifecycle.serve_app(build_api(settings), settings.api.host, settings.api.port, stop)
    elif command == "writer":
        from writer.main import run

        await run(settings, stop)
    elif command == "front":
        from sluice.commands.front import run as run_front

        await run_front(settings, stop)
    elif command == "up":
        from sluice.commands.up import up

        # `up` derives the children's environment (local server addresses) itself.
        await up(os.environ, stop)
    elif command == "up-ha":
        from sluice.commands.ha import up_ha

        await up_ha(os.environ, stop)


if __name__ == "__main__":
    main()
