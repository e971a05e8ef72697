"""The trace workloads (issue 13), each against Sluice then MLflow:

1. **span ingest**: OTLP/HTTP exports (``POST /v1/traces``, protobuf) of 100 spans (20 traces of
   5 spans) from ``trace_concurrency`` connections, closed loop; the spans of acknowledged
   requests are counted in the store (waiting for Sluice's writers) -> verified spans/s. The
   same load runs ``trace_warmup_s`` first, unmeasured, and is stored before the phase. Then
   ``trace_rounds`` rounds alternate between the systems (``span_rounds``) and each figure is
   the system's median round, as for search below: with one phase each, a system's rate moved
   1.4x between runs of one commit, and the ratio with it.
2. **visibility**: exports at half that rate, open loop, plus a probe exporting a one-span trace
   to its own experiment and searching it (traces/search, newest first) until it is listed ->
   ack -> listed p50/p99, and the exports' latency under that load. Then the same at one rate
   offered to both systems (``trace_visibility_rate``, low enough for MLflow), so the two
   systems' visibility compares like with like: at half its own rate Sluice carries ~30x the
   background load MLflow does.
3. **search** over ``search_traces`` stored traces in one experiment: traces/search as
   ``mlflow.search_traces`` sends it, newest 100 without a filter and with a tag filter that
   matches 1 % (``tags.group = 'g07'``), concurrency 2. Filled differently per system (both
   ways are in the results): Sluice through its own OTLP ingest, 100 one-span traces a
   request, at full speed; MLflow straight into its SQL tables (``store.fill_mlflow_traces``),
   since its ingest rate would need hours for a million traces. Measured once both systems
   are filled (``search_rounds``): an unmeasured ``search_warmup_s`` on each (the system
   filled first finds its pages evicted by the other's fill: Sluice's first round ran at 680
   reads/s, its next two at 812 and 918), then ``search_rounds`` rounds that alternate between
   the systems; each figure is the system's median round. One phase per system, minutes apart,
   compared the machine's speed at two moments as much as the systems: on a shared 2-vCPU
   host both sides moved by up to 1.4x between runs, the ratio with them (7.7x-15.2x).

Between phases that write much (after span ingest, after the search fill) both systems are
settled, untimed with the seconds recorded: their trace tables vacuumed (VACUUM ANALYZE),
PostgreSQL checkpointed and every dirty page written out, so no phase runs beside the
autovacuum, the checkpoint or the kernel's writeback of the one before. Span rounds are
settled one by one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import Any

from benchmarks import otlp_bodies, store
from benchmarks.phases import Context, experiment_named, loadgen, measured, server_spec
from benchmarks.services import Target

Result = dict[str, Any]
SEARCH_PATH = "/api/3.0/mlflow/traces/search"
INGEST_SHAPE = (20, 5)  # traces a request, spans a trace: 100 spans a request
FILL_SHAPE = (100, 1)
FILL_TIMEOUT_S = 900.0
MIN_VISIBILITY_RATE = 100.0  # spans/s: the half-rate phase never offers less
SEARCH_FILTERS = {"newest 100": None, "tag filter (1 %)": "tags.group = 'g07'"}


def _spans_spec(target: Target, experiment_id: str, shape: tuple[int, int], **extra: Any) -> Result:
    return {
        "kind": "spans",
        "url": target.write_url,
        "experiment_id": experiment_id,
        "prefix": os.urandom(8).hex(),
        "traces_per_request": shape[0],
        "spans_per_trace": shape[1],
        **extra,
    }


async def _verified(ctx: Context, target: Target, spec: Result) -> Result:
    """Run an export workload, then count the acknowledged spans in the store."""
    result = await loadgen(spec)
    seqs: list[int] = result.pop("acked_seqs")
    template = otlp_bodies.Template(
        bytes.fromhex(spec["prefix"]), spec["traces_per_request"], spec["spans_per_trace"]
    )
    ids = [t for seq in seqs for t in template.trace_ids(seq)]
    acked = len(seqs) * template.spans
    found, drain = await store.wait_for_spans(
        target.name, target.dsn, ids, acked, ctx.profile.drain_timeout_s
    )
    span = result["window_s"] + drain
    result.update(
        acked_spans=acked,
        found_spans=found,
        verified=found == acked,
        drain_s=round(drain, 3),
        req_per_s=round(len(seqs) / result["window_s"], 1) if result["window_s"] else 0.0,
        verified_spans_per_s=round(found / span, 1) if span else 0.0,
    )
    return result


def _span_ingest_spec(ctx: Context, target: Target, exp: str, duration_s: float) -> Result:
    p = ctx.profile
    return _spans_spec(
        target,
        exp,
        INGEST_SHAPE,
        concurrency=p.trace_concurrency,
        duration_s=duration_s,
        request_timeout_s=p.request_timeout_s,
        **server_spec(ctx, target, read=False),
    )


async def span_rounds(ctx: Context, targets: list[Target]) -> dict[str, Result]:
    """Span ingest in ``trace_rounds`` rounds, each a phase on every target in turn (after an
    unmeasured ``trace_warmup_s`` of the same load on each, stored before the rounds start);
    each target's result is its median round by verified spans/s, with every round under
    ``rounds``. A round's spans are settled (``_settle``) before the next phase starts."""
    p = ctx.profile
    experiments: dict[str, str] = {}
    for target in targets:
        exp = await experiment_named(target, f"bench-spans-{target.name}")
        experiments[target.name] = exp
        if p.trace_warmup_s > 0:
            await _verified(ctx, target, _span_ingest_spec(ctx, target, exp, p.trace_warmup_s))
    rounds = max(1, p.trace_rounds)
    measured_rounds: dict[str, list[Result]] = {t.name: [] for t in targets}
    for n in range(rounds):
        for target in targets:
            spec = _span_ingest_spec(ctx, target, experiments[target.name], p.trace_ingest_s)
            name = f"{target.name} OTLP spans c={p.trace_concurrency} (round {n + 1}/{rounds})"
            result = await measured(ctx, name, _verified(ctx, target, spec))
            result["settle_after_s"] = await _settle(target)
            measured_rounds[target.name].append(result)
    return {
        name: median_round(results, "verified_spans_per_s")
        for name, results in measured_rounds.items()
    }


async def visibility(ctx: Context, target: Target, spans_per_s: float) -> Result:
    """Exports at ``spans_per_s`` (open loop) while the probe measures ack -> listed."""
    p = ctx.profile
    exp = await experiment_named(target, f"bench-spans-vis-{target.name}")
    probe_exp = await experiment_named(target, f"bench-spans-probe-{target.name}")
    spec = _spans_spec(
        target,
        exp,
        INGEST_SHAPE,
        kind="trace_visibility",
        read_url=target.read_url,
        probe_experiment_id=probe_exp,
        probe_prefix=os.urandom(8).hex(),
        rate_rps=spans_per_s / (INGEST_SHAPE[0] * INGEST_SHAPE[1]),
        max_inflight=256,
        duration_s=p.trace_visibility_s,
        probe_gap_s=0.05,
        probe_poll_s=0.005,
        request_timeout_s=p.request_timeout_s,
    )
    name = f"{target.name} trace visibility at {spans_per_s:.0f} spans/s"
    result = await measured(ctx, name, _verified(ctx, target, spec))
    result["offered_spans_per_s"] = round(spans_per_s, 1)
    return result


async def _fill(ctx: Context, target: Target, exp: str) -> Result:
    count = ctx.profile.search_traces
    started = time.perf_counter()
    if target.name == "mlflow":
        seconds = await store.fill_mlflow_traces(target.dsn, exp, count, int(time.time() * 1000))
        return {
            "how": "SQL INSERT ... SELECT generate_series into its tables",
            "fill_s": round(seconds, 1),
        }
    per_request = FILL_SHAPE[0] * FILL_SHAPE[1]
    spec = _spans_spec(
        target,
        exp,
        FILL_SHAPE,
        concurrency=8,
        total_requests=-(-count // per_request),
        request_timeout_s=ctx.profile.request_timeout_s,
    )
    result = await loadgen(spec)
    sent = len(result.pop("acked_seqs")) * FILL_SHAPE[0]
    found, _ = await store.wait_for_trace_infos(target.dsn, exp, sent, FILL_TIMEOUT_S)
    if found < count:
        raise RuntimeError(f"sluice: {found} of {count} traces stored after the fill")
    return {
        "how": "OTLP exports of 100 one-span traces, 8 connections, ingest -> Kafka -> writers",
        "fill_s": round(time.perf_counter() - started, 1),
        "export_window_s": result["window_s"],
        "statuses": result["statuses"],
    }


async def search_fill(ctx: Context, target: Target) -> Result:
    """Stores ``search_traces`` traces in an experiment of their own; the search phases run
    later (``search_rounds``)."""
    p = ctx.profile
    exp = await experiment_named(target, f"bench-trace-search-{target.name}")
    out: Result = {"stored_traces": p.search_traces, "experiment_id": exp}
    out["fill"] = await _fill(ctx, target, exp)
    out["fill"]["settle_s"] = await _settle(target)
    ctx.log(f"  {target.name} filled {p.search_traces} traces: {out['fill']}")
    return out


async def search_rounds(ctx: Context, targets: list[Target], results: dict[str, Result]) -> None:
    """Each search filter in ``search_rounds`` rounds, each round a phase on every target in
    turn; ``results[target]["search"][label]`` becomes the target's median round (by rate)
    with every round's rate and latency under ``rounds``."""
    rounds = max(1, ctx.profile.search_rounds)
    for label, filter_string in SEARCH_FILTERS.items():
        measured_rounds: dict[str, list[Result]] = {t.name: [] for t in targets}
        for target in targets:  # unmeasured: the first filled system's pages went cold
            exp = results[target.name]["search"]["experiment_id"]
            await _search_phase(ctx, target, exp, filter_string, ctx.profile.search_warmup_s)
        for n in range(rounds):
            for target in targets:
                search = results[target.name]["search"]
                phase = _search_phase(ctx, target, search["experiment_id"], filter_string)
                name = (
                    f"{target.name} traces/search {label} of {search['stored_traces']}"
                    f" (round {n + 1}/{rounds})"
                )
                measured_rounds[target.name].append(await measured(ctx, name, phase))
        for target in targets:
            results[target.name]["search"][label] = median_round(measured_rounds[target.name])


def median_round(rounds: list[Result], key: str = "rate_per_s") -> Result:
    """The round of median ``key`` (the lower middle of an even count), with a summary of all."""
    ordered = sorted(rounds, key=lambda r: r[key])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["rounds"] = [{key: r[key], "p50_ms": r["latency"]["p50_ms"]} for r in rounds]
    return median


def _search_phase(
    ctx: Context,
    target: Target,
    exp: str,
    filter_string: str | None,
    duration_s: float | None = None,
) -> Awaitable[Result]:
    p = ctx.profile
    req = {
        "method": "POST",
        "path": SEARCH_PATH,
        "body": otlp_bodies.search_body(exp, filter_string, 100).decode(),
        "count": '"trace_id"',
    }
    spec = {
        "kind": "read",
        "raw_client": True,
        "url": target.read_url,
        "requests": [req],
        "concurrency": 2,
        "duration_s": p.read_duration_s if duration_s is None else duration_s,
        "min_iters": 1,
        "max_iters": 10_000,
        "request_timeout_s": p.request_timeout_s,
        **server_spec(ctx, target, read=True),
    }
    return loadgen(spec)


async def _settle(target: Target) -> float:
    """VACUUM ANALYZE the trace tables, checkpoint, then write every dirty page out (sync);
    the seconds taken. The kernel writes a phase's dirty pages back ~30 s later, which is
    during the next phase: after the million-span phase that gave the half-rate phase 1.4-2 s
    export p99s."""
    started = time.perf_counter()
    await store.vacuum_traces(target.name, target.dsn)
    await asyncio.to_thread(os.sync)
    return round(time.perf_counter() - started, 1)


async def traces(ctx: Context, target: Target, ingest: Result) -> Result:
    """The phases after span ingest (``span_rounds``: ``ingest`` is the target's result):
    visibility at half its span rate, at the rate offered to both systems, the search fill."""
    half = max(ingest["verified_spans_per_s"] / 2, MIN_VISIBILITY_RATE)
    return {
        "span_ingest": ingest,
        "visibility": await visibility(ctx, target, half),
        "visibility_same_rate": await visibility(ctx, target, ctx.profile.trace_visibility_rate),
        "search": await search_fill(ctx, target),
    }
