"""The load generator: a separate process (asyncio + aiohttp, keep-alive connections).

``python -m benchmarks.loadgen SPEC.json`` runs one workload and prints one JSON result on
stdout. Latency is measured client-side, from just before the request is written to the last
byte of the answer. The orchestrator (benchmarks/phases.py) verifies what was acknowledged.

Workload kinds: ``batch`` (log-batch, closed loop, or open loop at ``rate_rps``), ``single``
(log-metric), ``fanout`` (every run sends its batches at once), ``read`` (a list of request
templates, paged like the mlflow client pages get-history), ``visibility`` (an open-loop
log-batch background plus a probe: log-metric, then get-history until the point is readable),
``create_runs``; for traces (benchmarks/otlp_bodies.py) ``spans`` (OTLP exports, closed loop
for ``duration_s`` or until ``total_requests`` were sent) and ``trace_visibility`` (open-loop
exports plus a probe: one trace exported, then traces/search until it is listed).

Closed-loop workloads (``batch``, ``single``, ``spans``, ``read`` with ``raw_client``) whose spec
names the ``server`` (root pid, port) open their connections before the timed window and spread
them evenly over the server's processes (benchmarks/placement.py); their result then carries
``placement`` and ``connections`` (the spread midway through the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil

from benchmarks import mlflow_json, otlp_bodies, placement, procstats, rawhttp

Spec = dict[str, Any]
Result = dict[str, Any]
_PREFIX = "/api/2.0/mlflow"
_CREATE_TIMEOUT_S = 30.0  # per runs/create attempt
_CREATE_ATTEMPTS = 6


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of latencies given in seconds (nearest rank)."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000

    return {
        "n": len(ordered),
        "p50_ms": round(rank(0.50), 3),
        "p90_ms": round(rank(0.90), 3),
        "p99_ms": round(rank(0.99), 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3),
    }


@dataclass
class Tally:
    """What one workload saw: latencies, statuses, acknowledged request numbers."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    acked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_send: float = math.inf
    last_answer: float = 0.0

    def record(self, seq: int, started: float, status: int | str, text: str = "") -> None:
        now = time.perf_counter()
        self.first_send = min(self.first_send, started)
        self.last_answer = max(self.last_answer, now)
        self.statuses[str(status)] += 1
        if status == 200:
            self.latencies.append(now - started)
            self.acked.append(seq)
        elif len(self.errors) < 5:
            self.errors.append(f"{status}: {text[:300]}")

    def result(self) -> Result:
        window = max(0.0, self.last_answer - self.first_send) if self.acked else 0.0
        return {
            "latency": percentiles(self.latencies),
            "statuses": dict(self.statuses),
            "acked_seqs": self.acked,
            "ok": len(self.acked),
            "window_s": round(window, 3),
            "errors": self.errors,
        }


@contextlib.asynccontextmanager
async def _client(spec: Spec) -> AsyncIterator[rawhttp.Client]:
    """The write workloads' client (benchmarks/rawhttp.py says why not aiohttp's)."""
    client = rawhttp.Client(spec["url"], spec["request_timeout_s"])
    try:
        yield client
    finally:
        client.close()


async def _place(client: rawhttp.Client, spec: Spec, count: int) -> Result | None:
    """With ``server`` in the spec ({"pid", "port", "balance_deadline_s"}: the server's root
    process and port), open the workload's ``count`` connections before its timed window and
    spread them over the server's processes (benchmarks/placement.py); what that took."""
    server = spec.get("server")
    if not server:
        return None
    try:
        await client.open(count)
    except (TimeoutError, OSError) as exc:
        return {"balanced": False, "redials": 0, "error": f"open: {type(exc).__name__}: {exc}"}

    def lookup(ports: list[int]) -> tuple[list[int | None], dict[int, int]]:
        try:
            return procstats.connection_owners(server["pid"], server["port"], ports)
        except psutil.Error as exc:
            raise placement.LookupFailed(repr(exc)) from exc

    return await placement.balance(client, lookup, server["balance_deadline_s"])


def _midway(spec: Spec, duration_s: float) -> asyncio.Task[Result] | None:
    """With ``server`` in the spec: how the connections sit on the server's processes
    ``duration_s`` / 2 into the timed window (``procstats.connection_spread``)."""
    server = spec.get("server")
    if not server or not math.isfinite(duration_s):
        return None

    async def sample() -> Result:
        await asyncio.sleep(duration_s / 2)
        return await asyncio.to_thread(procstats.connection_spread, server["pid"], server["port"])

    return asyncio.create_task(sample())


async def _placed(
    result: Result, placed: Result | None, midway: asyncio.Task[Result] | None
) -> Result:
    """``result`` plus ``placement`` (``_place``) and ``connections`` (``_midway``), if taken."""
    if placed is not None:
        result["placement"] = placed
    if midway is not None:
        result["connections"] = await midway
    return result


def _session(limit: int, timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"Content-Type": "application/json"},
    )


async def _post(
    client: rawhttp.Client,
    path: str,
    body: bytes,
    tally: Tally,
    seq: int,
    headers: bytes = rawhttp.JSON,
) -> None:
    started = time.perf_counter()
    try:
        status, answer = await client.post(path, body, headers)
    except (TimeoutError, OSError, rawhttp.HttpError) as exc:
        tally.record(seq, started, type(exc).__name__, str(exc))
        return
    tally.record(seq, started, status, "" if status == 200 else answer.decode(errors="replace"))


def _write_body(spec: Spec, seq: int) -> tuple[str, bytes]:
    runs: list[str] = spec["runs"]
    run_id = runs[seq % len(runs)]
    now_ms = int(time.time() * 1000)
    if spec["kind"] == "single":
        body = mlflow_json.log_metric(run_id, "m", seq * 0.5, now_ms, seq)
        return f"{_PREFIX}/runs/log-metric", body
    points = mlflow_json.batch_points(spec["shape"], seq, now_ms)
    return f"{_PREFIX}/runs/log-batch", mlflow_json.log_batch(run_id, points)


async def closed_loop(spec: Spec) -> Result:
    """``concurrency`` workers send back to back until ``duration_s``; in-flight requests finish
    (up to ``request_timeout_s``) and count."""
    tally = Tally()
    counter = iter(range(10**12))
    async with _client(spec) as client:
        placed = await _place(client, spec, spec["concurrency"])
        deadline = time.perf_counter() + spec["duration_s"]
        midway = _midway(spec, spec["duration_s"])

        async def worker() -> None:
            while time.perf_counter() < deadline:
                seq = next(counter)
                path, body = _write_body(spec, seq)
                await _post(client, path, body, tally, seq)

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return await _placed(tally.result(), placed, midway)


async def open_loop(
    spec: Spec,
    client: rawhttp.Client,
    tally: Tally,
    request: Callable[[int], tuple[str, bytes, bytes]] | None = None,
) -> int:
    """Send at ``rate_rps`` for ``duration_s`` whatever the answers do (at most ``max_inflight``
    outstanding); return how many sends were skipped because that bound was reached.
    ``request(seq)`` -> (path, body, headers); log-batch / log-metric by default."""
    interval = 1.0 / spec["rate_rps"]
    started = time.perf_counter()
    inflight: set[asyncio.Task[None]] = set()
    skipped = 0
    seq = 0
    while (now := time.perf_counter()) - started < spec["duration_s"]:
        due = started + seq * interval
        if due > now:
            await asyncio.sleep(due - now)
        if len(inflight) >= spec["max_inflight"]:
            skipped += 1
        else:
            if request is None:
                path, body = _write_body(spec, seq)
                headers = rawhttp.JSON
            else:
                path, body, headers = request(seq)
            task = asyncio.create_task(_post(client, path, body, tally, seq, headers))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        seq += 1
    if inflight:
        await asyncio.gather(*inflight)
    return skipped


async def rate_limited(spec: Spec) -> Result:
    tally = Tally()
    async with _client(spec) as client:
        skipped = await open_loop(spec, client, tally)
    return tally.result() | {"skipped": skipped}


async def fanout(spec: Spec) -> Result:
    """Every run sends ``batches_per_run`` log-batch calls of 100 points one after the other, all
    runs at once (a Spark job's executors). seq = run index * batches + batch number. No batch
    starts after ``deadline_s`` (MLflow's connection pool times out requests after 30 s each)."""
    tally = Tally()
    runs: list[str] = spec["runs"]
    per_run = spec["batches_per_run"]
    deadline = time.perf_counter() + spec["deadline_s"]
    not_sent = 0
    async with _client(spec) as client:

        async def one_run(index: int) -> None:
            nonlocal not_sent
            for b in range(per_run):
                if time.perf_counter() > deadline:  # a stalled server must not stall the run
                    not_sent += per_run - b
                    return
                seq = index * per_run + b
                points = mlflow_json.batch_points("fanout", seq, int(time.time() * 1000))
                body = mlflow_json.log_batch(runs[index], points)
                await _post(client, f"{_PREFIX}/runs/log-batch", body, tally, seq)

        await asyncio.gather(*(one_run(i) for i in range(len(runs))))
    return tally.result() | {"batches_not_sent": not_sent}


def _token(raw: bytes) -> str | None:
    """next_page_token without parsing a multi-MB body (it is the last field MLflow writes;
    Sluice writes it last too)."""
    at = raw.rfind(b'"next_page_token"')
    if at < 0:
        return None
    value = raw[at:].split(b":", 1)[1].strip().lstrip(b'"')
    return value.split(b'"', 1)[0].decode()


async def _read_once(session: aiohttp.ClientSession, base: str, req: Spec) -> tuple[int, int]:
    """One logical read (all pages for history); returns (status, items counted)."""
    items = 0
    token: str | None = None
    while True:
        query: Any = req.get("query") or {}
        if req.get("paged"):
            query = mlflow_json.history_query(req["run_id"], req["key"], token)
        body = req["body"].encode() if req.get("body") else None
        async with session.request(
            req["method"], base + req["path"], params=query, data=body
        ) as response:
            raw = await response.read()
            if response.status != 200:
                return response.status, items
        items += _items(raw, req)
        token = _token(raw) if req.get("paged") else None
        if not token:
            return 200, items


def _items(raw: bytes, req: Spec) -> int:
    """Items in one answer: occurrences of the request's ``count`` marker."""
    return raw.count(req.get("count", '"key"').encode())


async def _post_once(client: rawhttp.Client, req: Spec) -> tuple[int, int]:
    """One read that is a single POST (a search), through the cheaper client of the writes."""
    status, raw = await client.post(req["path"], req["body"].encode())
    return status, _items(raw, req) if status == 200 else 0


async def reads(spec: Spec) -> Result:
    """Round-robin over ``requests`` with ``concurrency`` workers; at least ``min_iters`` reads,
    at most ``max_iters``, no new read after ``duration_s``. ``raw_client``: the requests are
    single POSTs, sent with ``rawhttp`` (aiohttp's client cost ~0.3 ms of CPU a read, taken
    from the server measured on the same cores)."""
    tally = Tally()
    items: list[int] = []
    issued = iter(range(10**12))
    requests: list[Spec] = spec["requests"]
    raw_client = rawhttp.Client(spec["url"], spec["request_timeout_s"])
    placed = await _place(raw_client, spec, spec["concurrency"]) if spec.get("raw_client") else None
    started = time.perf_counter()
    midway = _midway(spec, spec["duration_s"])
    async with _session(spec["concurrency"], spec["request_timeout_s"]) as session:

        async def read_once(req: Spec) -> tuple[int, int]:
            if spec.get("raw_client"):
                return await _post_once(raw_client, req)
            return await _read_once(session, spec["url"], req)

        async def worker() -> None:
            while True:
                n = next(issued)
                elapsed = time.perf_counter() - started
                if n >= spec["max_iters"] or (
                    n >= spec["min_iters"] and elapsed > spec["duration_s"]
                ):
                    return
                t0 = time.perf_counter()
                try:
                    status, count = await read_once(requests[n % len(requests)])
                except (TimeoutError, OSError, aiohttp.ClientError, rawhttp.HttpError) as exc:
                    tally.record(n, t0, type(exc).__name__, str(exc))
                    continue
                tally.record(n, t0, status)
                items.append(count)

        try:
            await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        finally:
            raw_client.close()
    result = tally.result()
    result.pop("acked_seqs")
    ok = result["ok"]
    result["rate_per_s"] = round(ok / result["window_s"], 3) if result["window_s"] else 0.0
    result["items_per_read"] = sorted(set(items))[:5]
    return await _placed(result, placed, midway)


async def visibility(spec: Spec) -> Result:
    """Open-loop log-batch background at ``rate_rps``; meanwhile a probe logs one point to its own
    run and reads get-history until the point is there (``probe_poll_s`` between reads)."""
    background = Tally()
    delays: list[float] = []
    probe_errors: list[str] = []
    async with (
        _client(spec) as client,
        _session(2, spec["request_timeout_s"]) as probe_session,
    ):
        stop = asyncio.Event()

        async def probe() -> None:
            step = 0
            while not stop.is_set():
                delay = await _probe_once(probe_session, spec, step, probe_errors)
                if delay is not None:
                    delays.append(delay)
                step += 1
                await asyncio.sleep(spec["probe_gap_s"])

        probe_task = asyncio.create_task(probe())
        skipped = await open_loop(spec, client, background)
        stop.set()
        await probe_task
    return background.result() | {
        "skipped": skipped,
        "visibility": percentiles(delays),
        "probe_errors": probe_errors[:5],
    }


async def _probe_once(
    session: aiohttp.ClientSession, spec: Spec, step: int, errors: list[str]
) -> float | None:
    run_id = spec["probe_run"]
    body = mlflow_json.log_metric(run_id, "probe", float(step), int(time.time() * 1000), step)
    async with session.post(f"{spec['url']}{_PREFIX}/runs/log-metric", data=body) as response:
        if response.status != 200:
            errors.append(f"log-metric {response.status}: {(await response.text())[:200]}")
            return None
        await response.read()
    acked = time.perf_counter()
    query = {"run_id": run_id, "run_uuid": run_id, "metric_key": "probe"}
    deadline = acked + 30.0
    while time.perf_counter() < deadline:
        url = f"{spec['read_url']}{_PREFIX}/metrics/get-history"
        async with session.get(url, params=query) as response:
            raw = await response.read()
        if response.status == 200 and raw.count(b'"key"') > step:
            return time.perf_counter() - acked
        await asyncio.sleep(spec["probe_poll_s"])
    errors.append(f"step {step} not visible after 30 s")
    return None


async def create_runs(spec: Spec) -> Result:
    """``count`` runs in ``experiment_id`` through runs/create; returns their ids. A create that
    fails or hangs is retried (MLflow once left 7 of 100 creates unanswered for minutes right
    after its 1M-point history read, and the whole run died); a late first attempt at most
    leaves an unused extra run."""
    ids: list[str] = []
    todo = iter(range(spec["count"]))
    url = f"{spec['url']}{_PREFIX}/runs/create"
    async with _session(spec["concurrency"], _CREATE_TIMEOUT_S) as session:

        async def create(n: int) -> str:
            body = mlflow_json.create_run(
                spec["experiment_id"], f"bench-{n}", int(time.time() * 1000)
            )
            async with session.post(url, data=body) as response:
                doc = json.loads(await response.read())
                if response.status != 200:
                    raise RuntimeError(f"runs/create answered {response.status}: {doc}")
                return str(doc["run"]["info"]["run_id"])

        async def worker() -> None:
            for n in todo:
                for attempt in range(_CREATE_ATTEMPTS):
                    try:
                        ids.append(await create(n))
                        break
                    except (TimeoutError, aiohttp.ClientError, RuntimeError):
                        if attempt == _CREATE_ATTEMPTS - 1:
                            raise
                        await asyncio.sleep(1.0)

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return {"run_ids": ids}


# --- traces ------------------------------------------------------------------------------------


def _template(spec: Spec) -> otlp_bodies.Template:
    return otlp_bodies.Template(
        bytes.fromhex(spec["prefix"]), spec["traces_per_request"], spec["spans_per_trace"]
    )


async def spans(spec: Spec) -> Result:
    """OTLP exports back to back from ``concurrency`` workers, for ``duration_s`` or until
    ``total_requests`` were sent (the fill of the search phase). Bodies: ``Template``."""
    tally = Tally()
    template = _template(spec)
    headers = otlp_bodies.headers(spec["experiment_id"])
    counter = iter(range(spec.get("total_requests") or 10**12))
    async with _client(spec) as client:
        placed = await _place(client, spec, spec["concurrency"])
        deadline = time.perf_counter() + spec.get("duration_s", math.inf)
        midway = _midway(spec, spec.get("duration_s", math.inf))

        async def worker() -> None:
            for seq in counter:
                if time.perf_counter() >= deadline:
                    return
                body = template.body(seq, time.time_ns())
                await _post(client, otlp_bodies.OTLP_PATH, body, tally, seq, headers)

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return await _placed(tally.result(), placed, midway)


async def trace_visibility(spec: Spec) -> Result:
    """Open-loop exports at ``rate_rps`` (``Template`` bodies); meanwhile a probe exports one
    one-span trace to its own experiment and searches that experiment (newest first, as
    ``mlflow.search_traces``) until the trace is listed; the delay from the export's answer
    to the first search that lists it is the visibility."""
    background = Tally()
    template = _template(spec)
    headers = otlp_bodies.headers(spec["experiment_id"])
    delays: list[float] = []
    probe_errors: list[str] = []

    def request(seq: int) -> tuple[str, bytes, bytes]:
        return otlp_bodies.OTLP_PATH, template.body(seq, time.time_ns()), headers

    async with (
        _client(spec) as client,
        _session(2, spec["request_timeout_s"]) as probe_session,
    ):
        stop = asyncio.Event()

        async def probe() -> None:
            probes = _template({**spec, "prefix": spec["probe_prefix"], "traces_per_request": 1})
            seq = 0
            while not stop.is_set():
                delay = await _trace_probe_once(probe_session, spec, probes, seq, probe_errors)
                if delay is not None:
                    delays.append(delay)
                seq += 1
                await asyncio.sleep(spec["probe_gap_s"])

        probe_task = asyncio.create_task(probe())
        skipped = await open_loop(spec, client, background, request)
        stop.set()
        await probe_task
    return background.result() | {
        "skipped": skipped,
        "visibility": percentiles(delays),
        "probe_errors": probe_errors[:5],
    }


async def _trace_probe_once(
    session: aiohttp.ClientSession,
    spec: Spec,
    probes: otlp_bodies.Template,
    seq: int,
    errors: list[str],
) -> float | None:
    body = probes.body(seq, time.time_ns())
    export_headers = {
        "Content-Type": "application/x-protobuf",
        "x-mlflow-experiment-id": spec["probe_experiment_id"],
    }
    url = spec["url"] + otlp_bodies.OTLP_PATH
    async with session.post(url, data=body, headers=export_headers) as response:
        if response.status != 200:
            errors.append(f"export {response.status}: {(await response.text())[:200]}")
            return None
        await response.read()
    acked = time.perf_counter()
    wanted = probes.trace_ids(seq)[0].encode()
    search = otlp_bodies.search_body(spec["probe_experiment_id"], None, 10)
    deadline = acked + 30.0
    while time.perf_counter() < deadline:
        url = f"{spec['read_url']}/api/3.0/mlflow/traces/search"
        async with session.post(url, data=search) as response:
            raw = await response.read()
        if response.status == 200 and wanted in raw:
            return time.perf_counter() - acked
        if response.status != 200:
            errors.append(f"search {response.status}: {raw[:200]!r}")
        await asyncio.sleep(spec["probe_poll_s"])
    errors.append(f"probe {seq} not listed after 30 s")
    return None


KINDS = {
    "spans": spans,
    "trace_visibility": trace_visibility,
    "batch": closed_loop,
    "single": closed_loop,
    "batch_rate": rate_limited,
    "fanout": fanout,
    "read": reads,
    "visibility": visibility,
    "create_runs": create_runs,
}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    result = asyncio.run(KINDS[spec["kind"]](spec))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
