"""Process lifecycle: serve until SIGTERM/SIGINT, then shut down in order within a deadline.

Order (as uvicorn's ``Server.shutdown``): stop accepting, let in-flight requests finish, run the
apps' cleanup contexts (flush producer, close pools). A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A dependency refused this process's settings (e.g. Kafka credentials): restarting will
    not help, so the process exits at start with this message instead of a traceback."""


def install_stop_signals(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT sets ``stop``; the second one exits the process immediately."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal, exiting now", extra={"signal": signum})
            os._exit(1)
        log.info("stopping", extra={"signal": signum})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, returning early once ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def serve_app(
    app: web.Application, host: str, port: int, stop: asyncio.Event, drain_s: float = 10.0
) -> None:
    """Run ``app`` on host:port until ``stop`` is set."""
    runner = web.AppRunner(app, shutdown_timeout=drain_s, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    log.info("listening", extra={"host": host, "port": port})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Entry point of a service process: installs signals, runs ``main(stop)``."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)

    asyncio.run(wrapper())
