"""Keep child processes running: restart one that dies, with backoff; stop all on request.

A child is any command line (a `sluice <role>` process, HAProxy). `sluice up-ha` runs several
processes of each role, so every child has its own name (``ingest-2``) for logs and the restart
metric, while its command line names the role (``sluice ingest``): operators and the fault
test find processes by role with ``ps``.

`sluice up` and `sluice up-ha` both run their children here. Children run in process groups of
their own, so a signal to the supervisor's group reaches them once, through the supervisor;
Linux's parent-death signal takes them down if the supervisor dies; ``hurry`` (a later signal)
kills instead of draining.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sluice import lifecycle, metrics

log = logging.getLogger(__name__)

_STOP_DEADLINE_S = 15.0
_HEALTHY_AFTER_S = 60.0  # a child that ran this long gets its backoff reset
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 30.0


@dataclass(slots=True)
class Child:
    name: str  # unique among the children, e.g. "ingest-2"
    argv: Sequence[str]
    env: Mapping[str, str]
    backoff_s: float = _BACKOFF_FIRST_S
    restarts: int = 0
    process: asyncio.subprocess.Process | None = field(default=None)


def run_until_signalled(
    command: Callable[[asyncio.Event, asyncio.Event], Awaitable[None]], on_second_signal: str
) -> None:
    """Run ``command(stop, hurry)``: the first SIGTERM/SIGINT (and its copies) sets ``stop``, a
    later one logs ``on_second_signal`` and sets ``hurry``."""

    async def run() -> None:
        stop, hurry = asyncio.Event(), asyncio.Event()

        def on_insist() -> None:
            log.warning(on_second_signal)
            hurry.set()

        lifecycle.install_stop_signals(stop, on_insist)
        await command(stop, hurry)
        log.info("stopped")

    asyncio.run(run())


async def supervise(children: Sequence[Child], stop: asyncio.Event, hurry: asyncio.Event) -> None:
    """Run every child until ``stop`` is set, then terminate them all (in parallel, each with a
    deadline after which it is killed)."""
    # A TaskGroup: if one child cannot be started (the error propagates), the others' loops are
    # cancelled and each kills its process on the way out instead of leaving it unsupervised.
    async with asyncio.TaskGroup() as group:
        for child in children:
            group.create_task(keep_running(child, stop, hurry))


async def keep_running(child: Child, stop: asyncio.Event, hurry: asyncio.Event) -> None:
    try:
        await _run_until_stopped(child, stop, hurry)
    finally:
        if child.process is not None and child.process.returncode is None:
            child.process.kill()  # cancelled, or failed part-way: nothing is left behind


async def _run_until_stopped(child: Child, stop: asyncio.Event, hurry: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=dict(child.env),
            process_group=0,  # signals to the supervisor's group reach it only through us
            preexec_fn=_die_with_parent(),
        )
        waiter = asyncio.create_task(child.process.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            code = await terminate(child.process, waiter, hurry)
            log.info("service stopped", extra={"service": child.name, "code": code})
            return
        await _backoff(child, started, waiter.result(), stop)


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when the supervisor dies (even by
    SIGKILL): children live in their own process groups, so nothing else would reach them."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


async def _backoff(child: Child, started: float, code: int, stop: asyncio.Event) -> None:
    if time.monotonic() - started > _HEALTHY_AFTER_S:
        child.backoff_s = _BACKOFF_FIRST_S
    child.restarts += 1
    metrics.supervisor_restarts_total.labels(child.name).inc()
    log.warning(
        "service exited; restarting",
        extra={"service": child.name, "code": code, "in_s": child.backoff_s},
    )
    await lifecycle.sleep_unless_stopped(stop, child.backoff_s)
    child.backoff_s = min(child.backoff_s * 2, _BACKOFF_MAX_S)


async def terminate(
    process: asyncio.subprocess.Process, waiter: asyncio.Task[int], hurry: asyncio.Event
) -> int:
    """SIGTERM (the child drains), SIGKILL past the deadline or once ``hurry`` is set."""
    if process.returncode is None:
        process.terminate()
    hurried = asyncio.create_task(hurry.wait())
    try:
        await asyncio.wait(
            {waiter, hurried}, timeout=_STOP_DEADLINE_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        hurried.cancel()
    if not waiter.done():
        process.kill()
    return await waiter
