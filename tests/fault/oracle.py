"""Load oracle for fault tests: records every point sent and every point acknowledged, then
checks the store: stored ⊇ acknowledged, stored ⊆ sent, no duplicates, latest values equal a
recomputation from the stored history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import asyncpg

Point = tuple[str, int, int, float]  # key, step, timestamp, value


@dataclass
class Oracle:
    run_id: str
    sent: set[Point] = field(default_factory=set)
    acked: set[Point] = field(default_factory=set)
    requests_sent: int = 0
    requests_acked: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def summary(self, stored: int, lost: int, duplicated: int) -> str:
        return (
            f"requests sent={self.requests_sent} acked={self.requests_acked} "
            f"points sent={len(self.sent)} acked={len(self.acked)} stored={stored} "
            f"lost={lost} duplicated={duplicated} statuses={dict(sorted(self.statuses.items()))}"
        )


async def create_run(session: aiohttp.ClientSession, api: str, name: str) -> str:
    async with session.post(f"{api}/api/2.0/mlflow/experiments/create", json={"name": name}) as r:
        assert r.status == 200, await r.text()
        exp_id = (await r.json())["experiment_id"]
    async with session.post(
        f"{api}/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id}
    ) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["run"]["info"]["run_id"])


async def stream(
    oracle: Oracle,
    ingest: str,
    *,
    requests: int,
    concurrency: int,
    points_per_request: int = 1000,
    retry_for_s: float = 120.0,
    first: int = 0,
) -> None:
    """Send ``requests`` log-batch calls, each retried (like the MLflow client) until it is
    acknowledged or ``retry_for_s`` passed. Every point is distinct (also across calls that
    pass consecutive ``first`` numbers)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(first, first + requests):
        queue.put_nowait(i)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workers = [
            _worker(oracle, session, ingest, queue, points_per_request, retry_for_s)
            for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)


async def _worker(
    oracle: Oracle,
    session: aiohttp.ClientSession,
    ingest: str,
    queue: asyncio.Queue[int],
    size: int,
    retry_for_s: float,
) -> None:
    while not queue.empty():
        n = queue.get_nowait()
        points = [
            (f"k{n % 7}", n * size + i, 1_700_000_000_000 + n, n + i / size) for i in range(size)
        ]
        body: dict[str, object] = {
            "run_id": oracle.run_id,
            "metrics": [{"key": k, "step": s, "timestamp": t, "value": v} for k, s, t, v in points],
        }
        await _send_until_acked(oracle, session, ingest, body, points, retry_for_s)


async def _send_until_acked(
    oracle: Oracle,
    session: aiohttp.ClientSession,
    ingest: str,
    body: dict[str, object],
    points: list[Point],
    retry_for_s: float,
) -> None:
    deadline = time.monotonic() + retry_for_s
    while time.monotonic() < deadline:
        oracle.sent.update(points)
        oracle.requests_sent += 1
        status = await _post(session, f"{ingest}/api/2.0/mlflow/runs/log-batch", body)
        oracle.statuses[status] = oracle.statuses.get(status, 0) + 1
        if status == 200:
            oracle.acked.update(points)
            oracle.requests_acked += 1
            return
        assert status in (0, 429, 503), f"unexpected status {status}"
        await asyncio.sleep(0.2)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> int:
    """HTTP status, or 0 when the connection failed (service down or restarting)."""
    try:
        async with session.post(url, json=body) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return 0


async def wait_until(predicate: Callable[[], Awaitable[bool]], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {deadline_s}s")


@dataclass(frozen=True)
class Verdict:
    stored: int
    lost: int
    duplicated: int
    unsent: int
    latest_mismatches: int


async def verify(oracle: Oracle, dsn: str, api: str) -> Verdict:
    """Stored = what get-history serves (the user's view: a point served twice counts as
    duplicated); latest values checked against the stored points in PostgreSQL."""
    served = await _served(api, oracle.run_id, sorted({p[0] for p in oracle.sent}))
    conn = await asyncpg.connect(dsn)
    try:
        mismatches = await conn.fetchval(_LATEST_MISMATCHES, oracle.run_id)
    finally:
        await conn.close()
    stored = set(served)
    return Verdict(
        stored=len(served),
        lost=len(oracle.acked - stored),
        duplicated=len(served) - len(stored),
        unsent=len(stored - oracle.sent),
        latest_mismatches=mismatches,
    )


async def _served(api: str, run_id: str, keys: list[str]) -> list[Point]:
    """Every point of ``keys`` as get-history pages them (25,000 a page, like the client)."""
    points: list[Point] = []
    async with aiohttp.ClientSession() as session:
        for key in keys:
            token = None
            while True:
                query = {"run_id": run_id, "metric_key": key, "max_results": "25000"}
                if token:
                    query["page_token"] = token
                url = f"{api}/api/2.0/mlflow/metrics/get-history"
                async with session.get(url, params=query) as r:
                    assert r.status == 200, await r.text()
                    page = await r.json()
                points += [
                    (m["key"], m["step"], m["timestamp"], m["value"])
                    for m in page.get("metrics", [])
                ]
                token = page.get("next_page_token")
                if not token:
                    break
    return points


# latest_metrics must equal argmax (step, timestamp, value) recomputed from the history.
_LATEST_MISMATCHES = """
WITH recomputed AS (
    SELECT DISTINCT ON (key) key, step, timestamp, value FROM metrics WHERE run_uuid = $1
    ORDER BY key, step DESC, timestamp DESC, value DESC
)
SELECT count(*) FROM recomputed r FULL JOIN (SELECT * FROM latest_metrics WHERE run_uuid = $1) l
USING (key)
WHERE l.step IS DISTINCT FROM r.step OR l.timestamp IS DISTINCT FROM r.timestamp
   OR l.value IS DISTINCT FROM r.value
"""
