"""The benchmark's core (benchmarks/phases.py) works: every workload runs against the test stack's
Sluice (ingest and api directly, no MLflow) and every acknowledged point is found in the store.

Checks that the benchmark works, not how fast anything is: the figures come from `make bench`.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from benchmarks import phases, report
from benchmarks.procstats import Sampler
from benchmarks.profiles import SMOKE
from benchmarks.services import Target
from tests.stack import Stack

# A smaller smoke: one concurrency, a short growth-free run (growth inserts rows of runs that do
# not exist, which other tests of the shared session database must not see).
_PROFILE = dataclasses.replace(
    SMOKE,
    name="test",
    concurrencies=(8,),
    batch_duration_s=1.0,
    single_duration_s=1.0,
    fanout_runs=20,
    history_sizes=(2_000,),
    search_runs=100,
    visibility_duration_s=1.5,
    growth_sizes=(),
    profile_s=0.0,
    ui_metrics=2,
    ui_points=500,
    ui_table_runs=20,
    ui_repeats=1,
    ui_warmups=0,
    ui_return_visits=1,
    # The recording loads wait this long for a page's last requests: both pages poll, so each
    # of the 4 spent the bench's whole 10 s (40 of the test's ~110 s); the floor still answers
    # most requests from the recording (asserted below), and misses are forwarded upstream.
    ui_settle_s=1.0,
    trace_ingest_s=1.0,
    trace_warmup_s=0.3,
    trace_visibility_s=1.5,
    search_traces=500,
    # One round per traces/search filter (the bench's 3 alternate between systems; here there
    # is one), and half-second read phases: the same checks, ~10 s less.
    search_rounds=1,
    read_duration_s=0.5,
)


# ~40 s idle, ~110 s under load; the bound only has to stop a hang (it timed out at load ~17).
@pytest.mark.timeout(480)
async def test_smoke_workloads_verify_every_acknowledged_point(stack: Stack) -> None:
    target = Target("sluice", stack.url("ingest"), stack.url("api"), stack.dsn)
    sampler = Sampler({name: p.pid for name, p in stack.processes.items()}, interval_s=0.2)
    sampler.start()
    started = time.monotonic()

    def log(line: str) -> None:  # seconds since the start: where the test's time goes
        print(f"{time.monotonic() - started:6.1f}s {line}")

    try:
        workloads = await phases.run_all([target], phases.Context(_PROFILE, sampler, log=log))
    finally:
        sampler.stop()

    writes = [
        *(r for k, r in workloads["log_batch"]["sluice"].items() if k.startswith(("10x", "1000"))),
        workloads["log_metric"]["sluice"],
        workloads["fanout"]["sluice"],
        workloads["visibility"]["sluice"],
    ]
    assert len(writes) == 5
    for result in writes:
        assert result["acked_points"] > 0, result
        assert result["found_points"] == result["acked_points"], result
        assert result["verified"] is True
    reads = workloads["reads"]["sluice"]
    assert reads["get-history/2000"]["items_per_read"] == [2000]
    assert reads["search-runs/100"]["ok"] > 0
    assert workloads["storage"]["sluice"]["bytes_per_point"] > 0
    traces = workloads["traces"]["sluice"]
    for result in (traces["span_ingest"], traces["visibility"], traces["visibility_same_rate"]):
        assert result["acked_spans"] > 0, result
        assert result["found_spans"] == result["acked_spans"], result
    assert len(traces["span_ingest"]["rounds"]) == _PROFILE.trace_rounds == 2
    for key in ("visibility", "visibility_same_rate"):
        assert traces[key]["visibility"]["n"] > 0, traces[key]
    assert traces["visibility_same_rate"]["offered_spans_per_s"] == _PROFILE.trace_visibility_rate
    assert traces["search"]["fill"]["statuses"] == {"200": 5}
    for label in ("newest 100", "tag filter (1 %)"):
        assert traces["search"][label]["ok"] > 0, traces["search"][label]
    assert traces["search"]["newest 100"]["items_per_read"] == [100]
    assert traces["search"]["tag filter (1 %)"]["items_per_read"] == [5]
    # The closed-loop phases placed their connections before the timed window (one accepting
    # process each here: trivially even) and say where they sat midway.
    closed = {
        "spans": (traces["span_ingest"], _PROFILE.trace_concurrency),
        "search": (traces["search"]["newest 100"], 2),
        "log-batch": (workloads["log_batch"]["sluice"]["10x100/c8"], 8),
        "log-metric": (workloads["log_metric"]["sluice"], _PROFILE.single_concurrency),
    }
    for label, (result, connections) in closed.items():
        placed = result["placement"]
        assert placed["balanced"] is True, (label, placed)
        assert placed["processes_accepting"] == 1, (label, placed)
        assert placed["per_process"] == [connections], (label, placed)
        assert result["connections"]["processes_listening"] == 1, (label, result)
    # The browser drew the charts and the runs table, first and return visit, on Sluice and
    # on the floor (the replay of Sluice's answers).
    for system in ("sluice", "floor"):
        ui = workloads["ui"][system]
        for page in ("run_charts", "runs_table", "run_charts_warm", "runs_table_warm"):
            assert ui[page]["median_s"] > 0, (system, page)
    floor = workloads["ui"]["floor"]
    print(f"floor replay: {floor['replay']}")
    assert floor["replays"] == "sluice"
    assert floor["recorded"]["GET /"][0] == 1  # index.html, recorded once
    assert floor["replay"]["answered"] > floor["replay"]["misses"], floor["replay"]

    doc = {
        "started_at": "test",
        "environment": {"host": "test"},
        "load_before": [0.0],
        "profile": _PROFILE.as_dict(),
        "settings": {"sluice": {}},
        "workloads": workloads,
        "processes": sampler.summary(),
    }
    table = report.markdown(doc)
    assert "| max sustained verified points/s |" in table
    assert "| OTLP span ingest: verified spans/s |" in table
    assert "| trace visibility at 200 spans/s, both systems (ack -> in traces/search) p50 ms |" in (
        table
    )
    assert "| traces span_ingest | sluice | 8 | 0 |" in table
    assert "| log_batch 10x100/c8 | sluice | 8 | 0 |" in table
    assert "ingest" in sampler.summary()
