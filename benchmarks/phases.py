"""The workloads, in order, against every target: each phase runs the load generator as a child
process, samples the servers' CPU meanwhile, then verifies what was acknowledged.

``run_all(targets, profile, ...)`` is the core the CLI and the smoke test share; it returns the
``workloads`` part of the results document.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from benchmarks import mlflow_json, store
from benchmarks.procstats import Sampler, cpu_delta, machine_busy_s
from benchmarks.profiles import Profile
from benchmarks.services import Target

Result = dict[str, Any]
_PREFIX = "/api/2.0/mlflow"
NOT_IMPLEMENTED = "not implemented (404)"
MLFLOW_CLIENT_TIMEOUT_S = 120.0
BALANCE_DEADLINE_S = 15.0  # placing a phase's connections; past it the phase runs as placed


@dataclass
class Context:
    profile: Profile
    sampler: Sampler | None = None
    experiments: dict[str, str] = field(default_factory=dict)
    max_rate: dict[str, float] = field(default_factory=dict)
    log: Callable[[str], None] = print
    # Called with (target, seconds) while a max-rate Sluice phase runs (py-spy).
    profiler: Callable[[Target, float], Awaitable[Result]] | None = None


async def loadgen(spec: Result) -> Result:
    """Run one workload in a separate process (the servers and the generator share 2 cores)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        handle.name,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}) on {spec['kind']}")
    result: Result = json.loads(out)
    return result


def server_spec(ctx: Context, target: Target, *, read: bool) -> Result:
    """The spec part naming the server a closed-loop phase's connections go to: its root
    process (known to the sampler) and port; MLflow, or Sluice's api (reads) or ingest
    (writes). With it the load generator spreads its connections evenly over the server's
    processes before the timed window and records where they sit midway
    (benchmarks/placement.py); without a sampler, nothing."""
    port = urlsplit(target.read_url if read else target.write_url).port
    sampler = ctx.sampler
    group = target.name if target.name == "mlflow" else ("api" if read else "ingest")
    if sampler is not None and group != "mlflow" and "haproxy" in sampler.roots:
        group = "haproxy"  # Sluice's processes behind HAProxy: the connections end there
    if sampler is None or port is None or group not in sampler.roots:
        return {}
    server = {"pid": sampler.roots[group], "port": port, "balance_deadline_s": BALANCE_DEADLINE_S}
    return {"server": server}


async def measured(ctx: Context, name: str, body: Awaitable[Result]) -> Result:
    """Await ``body`` and add the CPU each server group used meanwhile (cores), and what the
    whole machine used (``machine_busy_cores``: servers, load generator and anything else;
    below the core count, the phase was not bound by CPU)."""
    sampler = ctx.sampler
    before = sampler.cpu_seconds() if sampler else {}
    if sampler:
        sampler.begin_phase(name)
    busy_before = machine_busy_s()
    started = time.perf_counter()
    result = await body
    wall = time.perf_counter() - started
    result["machine_busy_cores"] = round((machine_busy_s() - busy_before) / wall, 3)
    if sampler:
        sampler.end_phase()
        result["cpu_cores"] = cpu_delta(before, sampler.cpu_seconds(), wall)
        result["peak_rss_mb"] = {
            g: round(v / 2**20, 1) for g, v in sampler.phase_peaks.get(name, {}).items()
        }
    result["wall_s"] = round(wall, 2)
    ctx.log(f"  {name}: {_brief(result)}")
    return result


def _brief(result: Result) -> str:
    keys = (
        "verified_points_per_s",
        "verified_spans_per_s",
        "req_per_s",
        "rate_per_s",
        "acked_points",
        "found_points",
        "acked_spans",
        "found_spans",
    )
    parts = [f"{k}={result[k]}" for k in keys if k in result]
    lat = result.get("latency", {})
    if "p50_ms" in lat:
        parts.append(f"p50={lat['p50_ms']}ms p99={lat['p99_ms']}ms")
    if result.get("errors"):
        parts.append(f"errors={result['errors'][:1]}")
    return " ".join(parts)


# --- REST helpers for setup --------------------------------------------------------------------


async def rest(
    method: str, url: str, body: bytes | None = None, params: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
        session.request(
            method, url, data=body, params=params, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")


SETTLE_DEADLINE_S = 600.0
_SETTLE_PROBES = 4  # MLflow runs 4 workers


async def settle(target: Target, deadline_s: float = SETTLE_DEADLINE_S) -> float:
    """Seconds until ``target`` serves ``_SETTLE_PROBES`` concurrent runs/create (in the Default
    experiment) within 5 s again. A system left with a backlog -- MLflow after the fan-out:
    requests its clients gave up on still hold or wait for its database pools -- would
    otherwise hand that backlog to the next workload. (A read alone is not enough: MLflow
    answered experiments/get at once while its runs/create still timed out.)"""
    started = time.perf_counter()
    url = f"{target.read_url}{_PREFIX}/runs/create"
    timeout = aiohttp.ClientTimeout(total=5.0)
    headers = {"Content-Type": "application/json"}  # Sluice refuses a body without it
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:

        async def probe() -> bool:
            body = mlflow_json.create_run("0", "settle-probe", int(time.time() * 1000))
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
                    return response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                return False

        while time.perf_counter() - started < deadline_s:
            if all(await asyncio.gather(*(probe() for _ in range(_SETTLE_PROBES)))):
                return round(time.perf_counter() - started, 1)
            await asyncio.sleep(1.0)
    raise RuntimeError(f"{target.name} still unresponsive {deadline_s:.0f} s after a workload")


async def experiment(ctx: Context, target: Target) -> str:
    if target.name not in ctx.experiments:
        ctx.experiments[target.name] = await experiment_named(target, f"bench-{target.name}")
    return ctx.experiments[target.name]


async def experiment_named(target: Target, prefix: str) -> str:
    """A new experiment named ``prefix``-<ms>; its id."""
    name = f"{prefix}-{int(time.time() * 1000)}"
    status, doc = await rest(
        "POST",
        f"{target.read_url}{_PREFIX}/experiments/create",
        mlflow_json.create_experiment(name),
    )
    if status != 200:
        raise RuntimeError(f"{target.name}: experiments/create answered {status}: {doc}")
    return str(doc["experiment_id"])


async def new_runs(ctx: Context, target: Target, count: int) -> list[str]:
    spec = {
        "kind": "create_runs",
        "url": target.read_url,
        "count": count,
        "concurrency": 16,
        "experiment_id": await experiment(ctx, target),
    }
    ids: list[str] = (await loadgen(spec))["run_ids"]
    return ids


# --- write workloads ----------------------------------------------------------------------------


async def verified(ctx: Context, target: Target, spec: Result, divisor: int, points: int) -> Result:
    """Run a write workload, then count the acknowledged points in the store."""
    result = await loadgen(spec)
    seqs: list[int] = result.pop("acked_seqs")
    acked = len(seqs) * points
    found, drain = await store.wait_for(
        target.dsn, spec["runs"], divisor, seqs, acked, ctx.profile.drain_timeout_s
    )
    span = result["window_s"] + drain
    result.update(
        acked_points=acked,
        found_points=found,
        verified=found == acked,
        drain_s=round(drain, 3),
        req_per_s=round(len(seqs) / result["window_s"], 1) if result["window_s"] else 0.0,
        verified_points_per_s=round(found / span, 1) if span else 0.0,
    )
    return result


async def log_batch(ctx: Context, target: Target) -> Result:
    out: Result = {}
    p = ctx.profile
    for shape in mlflow_json.SHAPES:
        for concurrency in p.concurrencies:
            runs = await new_runs(ctx, target, p.batch_runs)
            spec = {
                "kind": "batch",
                "url": target.write_url,
                "runs": runs,
                "shape": shape,
                "concurrency": concurrency,
                "duration_s": p.batch_duration_s,
                "request_timeout_s": p.request_timeout_s,
                **server_spec(ctx, target, read=False),
            }
            name = f"{target.name} log-batch {shape} c={concurrency}"
            body = verified(ctx, target, spec, mlflow_json.seq_divisor(shape), 1000)
            out[f"{shape}/c{concurrency}"] = await measured(ctx, name, body)
    best = max((r["verified_points_per_s"] for r in out.values() if r["verified"]), default=0.0)
    ctx.max_rate[target.name] = best
    out["max_verified_points_per_s"] = best
    return out


async def single(ctx: Context, target: Target) -> Result:
    p = ctx.profile
    runs = await new_runs(ctx, target, p.batch_runs)
    spec = {
        "kind": "single",
        "url": target.write_url,
        "runs": runs,
        "concurrency": p.single_concurrency,
        "duration_s": p.single_duration_s,
        "request_timeout_s": p.request_timeout_s,
        **server_spec(ctx, target, read=False),
    }
    body = verified(ctx, target, spec, 1, 1)
    return await measured(ctx, f"{target.name} log-metric c={p.single_concurrency}", body)


async def fanout(ctx: Context, target: Target) -> Result:
    p = ctx.profile
    runs = await new_runs(ctx, target, p.fanout_runs)
    spec = {
        "kind": "fanout",
        "url": target.write_url,
        "runs": runs,
        "batches_per_run": p.fanout_batches,
        # The mlflow client's own deadline (MLFLOW_HTTP_REQUEST_TIMEOUT=120): a fan-out request
        # queued longer than that has failed for the user anyway, and it bounds the phase.
        "request_timeout_s": min(p.request_timeout_s, MLFLOW_CLIENT_TIMEOUT_S),
        "deadline_s": p.fanout_deadline_s,
    }
    body = verified(ctx, target, spec, 10, 100)
    return await measured(ctx, f"{target.name} fan-out {p.fanout_runs} runs", body)


async def visibility(ctx: Context, target: Target) -> Result:
    """Half of this system's max verified rate as open-loop log-batch load; ingest latency of
    that load, and 200 -> readable delay of a probe point."""
    p = ctx.profile
    half = max(ctx.max_rate.get(target.name, 0.0) / 2, 1000.0)
    runs = await new_runs(ctx, target, p.batch_runs + 1)
    spec = {
        "kind": "visibility",
        "url": target.write_url,
        "read_url": target.read_url,
        "runs": runs[1:],
        "probe_run": runs[0],
        "shape": "10x100",
        "rate_rps": half / 1000,
        "max_inflight": 512,
        "duration_s": p.visibility_duration_s,
        "probe_gap_s": 0.05,
        "probe_poll_s": 0.005,
        "request_timeout_s": p.request_timeout_s,
    }
    body = verified(ctx, target, spec, 100, 1000)
    result = await measured(ctx, f"{target.name} visibility at {half:.0f} points/s", body)
    result["offered_points_per_s"] = round(half, 1)
    return result


# --- read workloads -----------------------------------------------------------------------------


async def probe(url: str) -> int:
    status, _ = await rest("GET", url)
    return status


async def reads(ctx: Context, target: Target, *, sluice_has: dict[str, bool]) -> Result:
    p = ctx.profile
    out: Result = {}
    history_runs = await new_runs(ctx, target, len(p.history_sizes))
    for run_id, size in zip(history_runs, p.history_sizes, strict=True):
        await store.load_history(target.name, target.dsn, run_id, "h", size)
        req = {
            "method": "GET",
            "path": f"{_PREFIX}/metrics/get-history",
            "paged": True,
            "run_id": run_id,
            "key": "h",
        }
        out[f"get-history/{size}"] = await _read(
            ctx, target, f"get-history {size}", [req], 1, p.history_max_iters
        )
    out["get-history-bulk-interval"] = await _bulk_interval(ctx, target, sluice_has)
    exp = await experiment(ctx, target)
    ids = await store.load_search_runs(target.name, target.dsn, exp, p.search_runs)
    body = mlflow_json.search_runs(
        exp, "metrics.loss < 0.5", "metrics.loss DESC", p.search_max_results
    )
    req = {
        "method": "POST",
        "path": f"{_PREFIX}/runs/search",
        "body": body.decode(),
        "count": '"run_id"',
    }
    out[f"search-runs/{p.search_runs}"] = await _read(ctx, target, "search-runs", [req], 2, 10_000)
    gets = [
        {"method": "GET", "path": f"{_PREFIX}/runs/get", "query": {"run_id": r}} for r in ids[:100]
    ]
    out["runs/get"] = await _read(ctx, target, "runs/get", gets, 8, 10**9)
    return out


async def _read(
    ctx: Context,
    target: Target,
    name: str,
    requests: list[Result],
    concurrency: int,
    max_iters: int,
) -> Result:
    spec = {
        "kind": "read",
        "url": target.read_url,
        "requests": requests,
        "concurrency": concurrency,
        "duration_s": ctx.profile.read_duration_s,
        "min_iters": 1,
        "max_iters": max_iters,
        "request_timeout_s": ctx.profile.request_timeout_s,
    }
    return await measured(ctx, f"{target.name} {name}", loadgen(spec))


_BULK_PATH = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


async def bulk_interval_available(target: Target) -> bool:
    """The route exists when it answers anything but 404 to a request without parameters."""
    return await probe(f"{target.read_url}{_BULK_PATH}") != 404


async def _bulk_interval(ctx: Context, target: Target, sluice_has: dict[str, bool]) -> Result:
    if not sluice_has.get("bulk_interval", False):
        return {
            "status": f"{NOT_IMPLEMENTED} in Sluice: skipped for both systems (MLflow's"
            " 100 x 100k points are not loaded when there is nothing to compare them with)"
        }
    p = ctx.profile
    runs = await new_runs(ctx, target, p.bulk_runs)
    # 10M points per system: generated server-side (COPY from here took minutes per system).
    await store.generate_series(target.name, target.dsn, runs, "b", p.bulk_points)
    req = {
        "method": "GET",
        "path": _BULK_PATH,
        "query": mlflow_json.bulk_interval_query(runs, "b", p.bulk_max_results),
    }
    return await _read(ctx, target, "get-history-bulk-interval", [req], 1, 10)


async def registry(ctx: Context, target: Target) -> Result:
    p = ctx.profile
    base = f"{target.read_url}{_PREFIX}/registered-models"
    if await probe(f"{base}/search") == 404:
        return {"status": NOT_IMPLEMENTED}
    names = [f"bench-model-{target.name}-{int(time.time())}-{i}" for i in range(p.registry_models)]
    for name in names:
        status, doc = await rest("POST", f"{base}/create", json.dumps({"name": name}).encode())
        if status != 200:
            return {"status": f"registered-models/create answered {status}: {str(doc)[:200]}"}
    gets = [
        {
            "method": "GET",
            "path": f"{_PREFIX}/registered-models/get",
            "query": {"name": n},
            "count": '"name"',
        }
        for n in names
    ]
    search = [
        {
            "method": "GET",
            "path": f"{_PREFIX}/registered-models/search",
            "query": mlflow_json.search_registered_models(100),
            "count": '"name"',
        }
    ]
    return {
        "get": await _read(ctx, target, "registered-models/get", gets, 8, 10**9),
        "search": await _read(ctx, target, "registered-models/search", search, 8, 10**9),
    }


# --- Sluice only: growth ------------------------------------------------------------------------


async def growth(ctx: Context, target: Target) -> Result:
    """Ingest cost as the metrics table grows: bulk-grow, then a verified log-batch phase."""
    p = ctx.profile
    out: Result = {}
    if p.growth_sizes:
        await store.truncate_metrics(target.dsn)
    for size in p.growth_sizes:
        have = await store.row_count(target.dsn)
        grow_s = (
            await store.grow_sluice(target.dsn, size - have, f"g{size}") if size > have else 0.0
        )
        runs = await new_runs(ctx, target, p.batch_runs)
        spec = {
            "kind": "batch",
            "url": target.write_url,
            "runs": runs,
            "shape": "10x100",
            "concurrency": 32,
            "duration_s": p.growth_phase_s,
            "request_timeout_s": p.request_timeout_s,
        }
        result = await measured(
            ctx, f"sluice growth {size:.0e}", verified(ctx, target, spec, 100, 1000)
        )
        cores = result.get("cpu_cores", {})
        sluice_cpu = sum(v for k, v in cores.items() if k != "mlflow")
        rate = result["verified_points_per_s"]
        result["cpu_us_per_point"] = round(sluice_cpu / rate * 1e6, 2) if rate else None
        result["rows_before"] = await store.row_count(target.dsn) - result["found_points"]
        result["grow_s"] = round(grow_s, 1)
        out[f"{size}"] = result
    return out


# --- everything ---------------------------------------------------------------------------------


async def run_all(
    targets: list[Target], ctx: Context, only: frozenset[str] = frozenset()
) -> Result:
    """Every workload (or those in ``only``) against every target, interleaved per workload so
    both systems see the machine in about the same state."""
    from benchmarks.traces import (  # noqa: PLC0415 - they build on this module
        search_rounds,
        span_rounds,
        traces,
    )
    from benchmarks.ui import measure, ui  # noqa: PLC0415

    def wanted(name: str) -> bool:
        return not only or name in only

    sluice = next(t for t in targets if t.name == "sluice")
    has = {"bulk_interval": await bulk_interval_available(sluice)}
    workloads: Result = {
        name: {}
        for name in (
            "log_batch",
            "log_metric",
            "fanout",
            "reads",
            "registry",
            "visibility",
            "traces",
            "storage",
            "ui",
        )
        if wanted(name)
    }
    span_ingest: dict[str, Result] = {}  # each target's median span round (span_rounds)
    steps: list[tuple[str, Callable[[Context, Target], Awaitable[Result]]]] = [
        ("log_batch", log_batch),
        ("log_metric", single),
        ("fanout", fanout),
        ("reads", lambda c, t: reads(c, t, sluice_has=has)),
        ("registry", registry),
        ("visibility", visibility),
        ("traces", lambda c, t: traces(c, t, span_ingest[t.name])),
        ("ui", ui),
    ]
    for name, step in steps:
        if not wanted(name):
            continue
        ctx.log(f"workload {name}")
        if name == "traces":  # span ingest first, in rounds alternating between the systems
            span_ingest.update(await span_rounds(ctx, targets))
        for target in targets:
            workloads[name][target.name] = result = await step(ctx, target)
            result["settle_s"] = await settle(target)
            if result["settle_s"] > 5:
                ctx.log(f"  {target.name} answered again {result['settle_s']} s after {name}")
        if name == "ui":  # the pages are timed once every system has its data
            await measure(ctx, targets, workloads["ui"])
        if name == "traces":  # searched once every system is filled, in alternating rounds
            await search_rounds(ctx, targets, workloads["traces"])
    if only:
        return workloads
    for target in targets:
        workloads["storage"][target.name] = await store.storage(target.dsn)
    if ctx.profiler is not None and ctx.profile.profile_s > 0:
        ctx.log("profile (py-spy) of Sluice at max rate")
        workloads["profile"] = await ctx.profiler(sluice, ctx.profile.profile_s)
    ctx.log("workload growth (Sluice only)")
    workloads["growth"] = await growth(ctx, sluice)
    return workloads
