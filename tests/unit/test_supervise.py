"""The supervisor `sluice up` and `sluice up-ha` share, with real child processes: a child that
dies is restarted with a growing backoff; on stop every child gets SIGTERM and may drain; a
later signal ("hurry") kills the ones still draining at once instead of after the deadline."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from sluice.commands.supervise import Child, supervise

# Traps SIGTERM and keeps "draining" for 30 s; writes its pid to a file once the trap is set.
_SLOW_DRAIN = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: None)\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "time.sleep(30)\n"
)


def _written(path: Path) -> bool:
    return path.exists() and bool(path.read_text())


async def _wait_for(path: Path, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while not _written(path):
        assert time.monotonic() < end, f"{path} never written"
        await asyncio.sleep(0.05)


async def test_hurry_kills_children_still_draining(tmp_path: Path) -> None:
    marks = [tmp_path / f"ready-{i}" for i in range(2)]
    children = [
        Child(f"slow-{i}", (sys.executable, "-c", _SLOW_DRAIN, str(mark)), {})
        for i, mark in enumerate(marks)
    ]
    stop, hurry = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(supervise(children, stop, hurry))
    try:
        await _drain_then_hurry(children, marks, running, stop, hurry)
    finally:
        stop.set()
        hurry.set()  # a failed assertion leaves no 30-second child behind
        await asyncio.wait_for(running, timeout=20)
    assert [c.process.returncode for c in children if c.process] == [-9, -9]
    assert [c.restarts for c in children] == [0, 0]


async def _drain_then_hurry(
    children: list[Child],
    marks: list[Path],
    running: asyncio.Task[None],
    stop: asyncio.Event,
    hurry: asyncio.Event,
) -> None:
    for mark in marks:
        await _wait_for(mark)
    stop.set()
    await asyncio.sleep(0.5)
    assert not running.done(), "children trapping SIGTERM should still be draining"
    assert all(c.process is not None and c.process.returncode is None for c in children)
    hurried = time.monotonic()
    hurry.set()
    await asyncio.wait({running}, timeout=5)  # the drain deadline is 15 s
    assert running.done() and time.monotonic() - hurried < 5


async def test_a_child_that_exits_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    child = Child("crashing", (sys.executable, "-c", "raise SystemExit(3)"), {})
    stop, hurry = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(supervise([child], stop, hurry))
    end = time.monotonic() + 20
    while child.restarts < 3:
        assert time.monotonic() < end, f"only {child.restarts} restarts"
        await asyncio.sleep(0.05)
    assert child.backoff_s >= 2.0  # 0.5 -> 1 -> 2 -> 4: doubled after every exit
    stop.set()
    await asyncio.wait_for(running, timeout=10)  # a stop during the backoff ends it at once
    assert child.process is not None and child.process.returncode == 3


async def test_a_supervisor_cancelled_by_a_failure_kills_its_children(tmp_path: Path) -> None:
    mark = tmp_path / "ready"
    slow = Child("slow", (sys.executable, "-c", _SLOW_DRAIN, str(mark)), {})
    broken = Child("broken", (str(tmp_path / "no-such-program"),), {})
    stop, hurry = asyncio.Event(), asyncio.Event()

    async def start_broken_later() -> None:
        await _wait_for(mark)
        await supervise([broken], stop, hurry)

    with pytest.raises(ExceptionGroup) as raised:
        async with asyncio.TaskGroup() as group:
            group.create_task(supervise([slow], stop, hurry))
            group.create_task(start_broken_later())
    assert raised.group_contains(FileNotFoundError)
    assert slow.process is not None
    assert await asyncio.wait_for(slow.process.wait(), timeout=5) == -9  # not left running
