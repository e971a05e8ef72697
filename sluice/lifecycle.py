"""Process lifecycle: serve until SIGTERM/SIGINT, then shut down in order within a deadline.

Order (as uvicorn's ``Server.shutdown``): stop accepting, let in-flight requests finish, run the
apps' cleanup contexts (flush producer, close pools).

One stop request often arrives as several signals at once: a supervisor signals the whole
process group *and* the main process (GNU make forwards SIGTERM to its child; systemd's
control-group mode signals every process; `sluice up` forwards to its children). Signals
within ``REPEAT_WINDOW_S`` of the first are that same request and are ignored; a signal after
that is an operator insisting, and the process exits at once (``sluice up`` instead hurries:
it kills its children but still stops PostgreSQL and Kafka, see ``sluice.commands.up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from sluice.errors import PortInUse
from sluice.http import MAX_FIELD_BYTES, MAX_LINE_BYTES, MlflowErrorServer

log = logging.getLogger(__name__)

# Long enough for every copy of one group-wide signal (and a supervisor's forward) to land,
# short enough that a human pressing Ctrl-C twice on purpose is heard.
REPEAT_WINDOW_S = 1.0


class SignalMeaning(enum.Enum):
    STOP = "stop"  # the first: drain and stop
    REPEAT = "repeat"  # a copy of the first (group delivery, a forward): ignore
    INSIST = "insist"  # a later one: the operator wants out now


@dataclass(slots=True)
class SignalCounter:
    """Pure: what the n-th stop signal means, given when it arrived (``now`` in seconds)."""

    repeat_window_s: float = REPEAT_WINDOW_S
    first_at: float | None = None

    def classify(self, now: float) -> SignalMeaning:
        if self.first_at is None:
            self.first_at = now
            return SignalMeaning.STOP
        if now - self.first_at < self.repeat_window_s:
            return SignalMeaning.REPEAT
        return SignalMeaning.INSIST


def _exit_now() -> None:
    log.warning("second signal, exiting now without draining")
    os._exit(1)


def install_stop_signals(stop: asyncio.Event, on_insist: Callable[[], None] = _exit_now) -> None:
    """SIGTERM/SIGINT set ``stop``; copies of that signal are ignored; a later one calls
    ``on_insist`` (default: exit the process immediately)."""
    loop = asyncio.get_running_loop()
    counter = SignalCounter()

    def on_signal(signum: int) -> None:
        meaning = counter.classify(loop.time())
        if meaning is SignalMeaning.STOP:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            stop.set()
        elif meaning is SignalMeaning.REPEAT:
            log.info(
                "signal repeated, still stopping", extra={"signal": signal.Signals(signum).name}
            )
        else:
            on_insist()

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
    runner = _Runner(
        app,
        shutdown_timeout=drain_s,
        access_log=None,
        max_line_size=MAX_LINE_BYTES,
        max_field_size=MAX_FIELD_BYTES,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("listening", extra={"host": host, "port": port})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class _Runner(web.AppRunner):
    """An AppRunner whose connections answer the HTTP layer's own refusals (over-long request
    lines and headers, malformed requests) with MLflow's JSON instead of aiohttp's text."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object and state; only the factory of per-connection handlers differs.
        server.__class__ = MlflowErrorServer
        return server


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Entry point of a service process: installs signals, runs ``main(stop)``, and logs
    "stopped" once it returned (a drained, orderly stop)."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)
        log.info("stopped")

    asyncio.run(wrapper())
