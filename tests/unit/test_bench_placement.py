"""benchmarks/placement.py: which connections to re-dial so none of the server's accepting
processes holds more than its share, and the loop that does it against a real pre-forked
server (a parent that listens, children that accept: uvicorn's shape)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from benchmarks import loadgen, placement, rawhttp, report
from benchmarks.placement import Plan, accepting, plan, share, spread


def test_share_is_the_ceiling_and_survives_no_processes() -> None:
    assert share(8, 4) == 2
    assert share(8, 5) == 2
    assert share(2, 4) == 1
    assert share(9, 4) == 3
    assert share(3, 0) == 3


def test_everything_on_one_process_keeps_its_share_and_redials_the_rest() -> None:
    result = plan([7] * 8, 4)
    assert result == Plan(redial=(2, 3, 4, 5, 6, 7), pending=())
    assert not result.balanced


def test_an_even_spread_needs_nothing() -> None:
    assert plan([1, 2, 3, 4, 1, 2, 3, 4], 4) == Plan((), ())
    assert plan([1, 2, 3, 4, 1, 2, 3, 4], 4).balanced
    assert plan([5, 5], 1).balanced  # a single process holds everything by definition
    assert plan([], 4).balanced


def test_only_processes_over_their_share_give_up_connections() -> None:
    # 1 holds 3 (one too many), 2 holds 2 (its share), 3 holds 1.
    assert plan([1, 2, 1, 3, 1, 2], 3) == Plan(redial=(4,), pending=())


def test_connections_not_yet_accepted_are_pending_not_balanced() -> None:
    result = plan([1, None, 2, None], 4)
    assert result == Plan(redial=(), pending=(1, 3))
    assert not result.balanced


def test_connections_the_server_closed_are_redialled_first_and_free_their_share() -> None:
    # 2 was closed while waiting (no process holds it any more); 1 holds its share of 2.
    assert plan([1, 2, None, 1], 2, closed=[2]) == Plan(redial=(2,), pending=())
    assert plan([1, 2, None, 1], 2) == Plan(redial=(), pending=(2,))
    assert plan([1, 1, None, 1], 2, closed=[2]) == Plan(redial=(2, 3), pending=())


def test_the_supervisor_that_only_listens_is_not_an_accepting_process() -> None:
    # uvicorn --workers 4: supervisor 10 (child of the mlflow CLI, 1) and its workers 11-14.
    assert accepting({10: 1, 11: 10, 12: 10, 13: 10, 14: 10}) == 4
    assert accepting({20: 1}) == 1
    assert accepting({}) == 0


def test_spread_counts_per_owner_most_first() -> None:
    assert spread([3, 1, 3, None, 2, 3]) == [3, 1, 1]
    assert spread([None]) == []


class _Stuck:
    """A pool whose connections are never accepted (the lookup never finds them)."""

    def __init__(self) -> None:
        self.redialled: list[int] = []

    def local_ports(self) -> list[int]:
        return [1000, 1001]

    def closed(self) -> list[int]:
        return []

    async def redial(self, index: int) -> None:
        self.redialled.append(index)


async def test_balance_gives_up_at_its_deadline_and_says_so() -> None:
    pool = _Stuck()

    def lookup(ports: list[int]) -> tuple[list[int | None], dict[int, int]]:
        return [None] * len(ports), {5: 1, 6: 1}

    result = await placement.balance(pool, lookup, deadline_s=0.2)
    assert result["balanced"] is False
    assert result["redials"] == 0
    assert 0.2 <= result["seconds"] < 2.0
    assert result["processes_accepting"] == 2
    assert pool.redialled == []


async def test_a_failing_lookup_ends_the_attempt_unbalanced() -> None:
    def lookup(ports: list[int]) -> tuple[list[int | None], dict[int, int]]:
        raise placement.LookupFailed("gone")

    result = await placement.balance(_Stuck(), lookup, deadline_s=5.0)
    assert result["balanced"] is False
    assert result["error"] == "lookup: LookupFailed: gone"


# A parent that binds and listens, then forks CHILDREN processes that each accept and hold
# their connections (answering nothing); the parent never accepts.
_PREFORK = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    children = int(sys.argv[1])
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            held = []
            while True:
                held.append(server.accept()[0])
        pids.append(pid)
    def stop(*_):
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def prefork() -> Iterator[tuple[int, int]]:
    """(root pid, port) of a server with 3 accepting children."""
    process = subprocess.Popen(
        [sys.executable, "-c", _PREFORK, "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_load_generator_spreads_its_connections_over_the_accepting_children(
    prefork: tuple[int, int],
) -> None:
    pid, port = prefork
    client = rawhttp.Client(f"http://127.0.0.1:{port}", 5.0)
    spec = {"server": {"pid": pid, "port": port, "balance_deadline_s": 15.0}}
    try:
        placed = await loadgen._place(client, spec, 6)
        assert placed is not None
        assert placed["processes_accepting"] == 3, placed
        assert placed["balanced"] is True, placed
        assert placed["per_process"] == [2, 2, 2], placed
        assert len(client.local_ports()) == 6
    finally:
        client.close()


async def test_no_server_in_the_spec_opens_nothing() -> None:
    client = rawhttp.Client("http://127.0.0.1:9", 1.0)
    assert await loadgen._place(client, {}, 4) is None
    assert client.local_ports() == []


def test_the_report_lists_every_placed_phase_with_its_spread() -> None:
    placed = {
        "placement": {
            "balanced": True,
            "redials": 6,
            "seconds": 0.137,
            "per_process": [2, 2, 2, 2],
            "processes_accepting": 4,
        },
        "connections": {"per_process": [2, 2, 2, 2], "processes_listening": 5},
    }
    stuck = {"placement": {"balanced": False, "redials": 0, "error": "open: OSError: refused"}}
    doc = {
        "workloads": {
            "traces": {"mlflow": {"span_ingest": placed, "search": {"newest 100": stuck}}},
            "log_batch": {"sluice": {"10x100/c8": {"ok": 3}}},  # not placed: not listed
            "growth": {"1000000": {"ok": 1}},
        }
    }
    assert report._placement_md(doc).splitlines()[4:] == [
        "| traces span_ingest | mlflow | 2 / 2 / 2 / 2 | 6 | 0.137 | yes | 2 / 2 / 2 / 2 |",
        "| traces search newest 100 | mlflow | - | 0 |  | **no** | - |",
    ]


async def test_the_client_reports_idle_connections_the_server_closed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = rawhttp.Client(f"http://127.0.0.1:{port}", 5.0)
    try:
        await client.open(2)
        for _ in range(500):  # connection_lost arrives on a later loop turn
            if client.closed() == [0, 1]:
                break
            await asyncio.sleep(0.01)
        assert client.closed() == [0, 1]
        before = client.local_ports()
        await client.redial(1)  # a fresh connection in its place (this server hangs up again)
        assert client.local_ports()[0] == before[0]
        assert client.local_ports()[1] != 0
    finally:
        client.close()
        server.close()
        await server.wait_closed()
