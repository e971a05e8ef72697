"""Spread a closed-loop workload's connections evenly over the server's accepting processes.

MLflow's 4 uvicorn workers share one listening socket and each keeps the connections it
accepts; an idle worker woken by a burst of connects accepts the whole burst, so the bench's
8 connections often sat on one worker and MLflow's figures were bimodal between runs
(benchmarks/README.md, "Trace workloads, session 9"). Before its timed window the load
generator opens its connections, asks which server process owns each (psutil, in
``procstats.connection_owners``) and closes and re-dials, one at a time, connections on
processes holding more than their share, until no process holds more than
ceil(connections / accepting processes) or a deadline passes (then it proceeds and says so).

``plan`` (which connections to re-dial) and ``accepting`` (which listeners accept) are pure;
``balance`` is the loop around a client and the lookup.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_POLL_S = 0.002  # between lookups while a dialled connection waits to be accepted


class LookupFailed(Exception):
    """The server's processes could not be read (gone, not ours): the workload runs unplaced."""


@dataclass(frozen=True, slots=True)
class Plan:
    redial: tuple[int, ...]  # closed connections, then those beyond their process's share
    pending: tuple[int, ...]  # connections no server process has accepted yet

    @property
    def balanced(self) -> bool:
        return not self.redial and not self.pending


def share(connections: int, processes: int) -> int:
    """The most connections one process may hold when they are spread evenly."""
    return math.ceil(connections / max(1, processes))


def plan(owners: Sequence[int | None], processes: int, closed: Collection[int] = ()) -> Plan:
    """``owners[i]``: the pid holding connection ``i``'s server end (None: not accepted yet).
    Each process keeps its first ``share`` connections; the rest are to be re-dialled, after
    the ``closed`` ones (the server closed them while they waited: uvicorn drops a connection
    idle for 5 s)."""
    limit = share(len(owners), processes)
    held: Counter[int] = Counter()
    excess: list[int] = []
    pending: list[int] = []
    for index, owner in enumerate(owners):
        if index in closed:
            continue
        if owner is None:
            pending.append(index)
            continue
        held[owner] += 1
        if held[owner] > limit:
            excess.append(index)
    return Plan((*sorted(closed), *excess), tuple(pending))


def accepting(listeners: Mapping[int, int]) -> int:
    """How many of the listening processes (pid -> parent pid) accept connections: those
    without a listening child. uvicorn's supervisor holds the socket its workers inherit but
    never accepts on it; a single-process server is its own only listener."""
    parents = set(listeners.values())
    return sum(pid not in parents for pid in listeners)


def spread(owners: Sequence[int | None]) -> list[int]:
    """Connections per owning process, most first (not-yet-accepted ones left out)."""
    return sorted(Counter(o for o in owners if o is not None).values(), reverse=True)


class Pool(Protocol):
    """The client side: ``count`` open connections addressed by index."""

    def local_ports(self) -> list[int]: ...

    def closed(self) -> list[int]: ...

    async def redial(self, index: int) -> None: ...


# (local ports) -> (owner per port, listening pid -> parent pid)
Lookup = Callable[[list[int]], tuple[list[int | None], dict[int, int]]]


async def balance(
    pool: Pool, lookup: Lookup, deadline_s: float, redial_timeout_s: float = 5.0
) -> dict[str, Any]:
    """Re-dial ``pool``'s connections one at a time until ``plan`` is balanced or ``deadline_s``
    passed; what it took. One at a time because a burst of connects is accepted by whichever
    process wakes first. A lookup or a re-dial that fails is recorded and ends the attempt: the
    workload then runs on the connections as they are."""
    started = time.perf_counter()
    redials = 0
    processes = 0
    owners: list[int | None] = []
    error = ""
    current = Plan((), ())
    while True:
        try:
            owners, listeners = await asyncio.to_thread(lookup, pool.local_ports())
        except (OSError, LookupFailed) as exc:
            error = f"lookup: {type(exc).__name__}: {exc}"
            break
        processes = accepting(listeners)
        current = plan(owners, processes, pool.closed())
        if current.balanced or time.perf_counter() - started > deadline_s:
            break
        if current.pending:  # wait for it to be accepted: a burst lands on one process
            await asyncio.sleep(_POLL_S)
            continue
        try:
            await _timed(pool.redial(current.redial[0]), redial_timeout_s)
        except (TimeoutError, OSError) as exc:
            error = f"redial: {type(exc).__name__}: {exc}"
            break
        redials += 1
    return {
        "balanced": current.balanced and not error,
        "redials": redials,
        "seconds": round(time.perf_counter() - started, 3),
        "per_process": spread(owners),
        "processes_accepting": processes,
        **({"error": error} if error else {}),
    }


async def _timed(step: Awaitable[None], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        await step
