"""How long and how big each workload is: ``smoke`` (seconds, CI), ``default`` (`make bench`,
under 30 minutes with MLflow), ``long`` (the growth curve up to 5e7 points)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    batch_duration_s: float = 20.0  # each (shape, concurrency) log-batch phase
    concurrencies: tuple[int, ...] = (8, 32, 128)
    batch_runs: int = 32  # runs each batch phase spreads its requests over
    single_duration_s: float = 20.0
    single_concurrency: int = 64
    fanout_runs: int = 1000
    fanout_batches: int = 3  # log-batch calls of 100 points per run
    fanout_deadline_s: float = 30.0  # no new batch after this (MLflow stalls on its pool)
    history_sizes: tuple[int, ...] = (100_000, 1_000_000)
    history_max_iters: int = 10  # Sluice; MLflow's slow reads are capped by read_duration_s
    bulk_runs: int = 100
    bulk_points: int = 100_000
    bulk_max_results: int = 1000  # per-run samples the chart asks for
    search_runs: int = 10_000
    search_max_results: int = 100
    registry_models: int = 100
    read_duration_s: float = 10.0
    visibility_duration_s: float = 30.0
    growth_sizes: tuple[int, ...] = (1_000_000, 10_000_000)
    growth_phase_s: float = 15.0
    drain_timeout_s: float = 120.0
    request_timeout_s: float = 300.0
    profile_s: float = 20.0  # py-spy on ingest and writer at max rate; 0 = no profile
    trace_ingest_s: float = 20.0  # OTLP span ingest, closed loop
    # The same load first, unmeasured, on each system: the phase measures a running service,
    # not the first minute of a JVM. Kafka's JIT compilers (per-thread CPU, a fresh broker
    # under span load) used 0.47, 0.28, 0.14, 0.24, 0.27 of a core in successive 6 s, about
    # 0.1 after 40 s: after a 5 s warm-up they took ~0.24 core from the timed phase.
    trace_warmup_s: float = 30.0
    # span ingest phases per system, alternating between the systems (the median is
    # reported): one phase each, minutes apart, gave ratios 23-33x for one commit
    trace_rounds: int = 3
    trace_concurrency: int = 8
    trace_visibility_s: float = 20.0
    # spans/s offered to both systems in the same-rate visibility phase: a quarter of
    # MLflow's idle span ingest rate (~860/s), so it keeps up on a busier machine too
    trace_visibility_rate: float = 200.0
    search_traces: int = 1_000_000  # traces stored before traces/search is measured
    # traces/search phases per filter and system, alternating between the systems (the median
    # is reported): the machine's speed drifts by minutes, and so did one-phase ratios
    search_rounds: int = 3
    search_warmup_s: float = 5.0  # each system, unmeasured, before the rounds of each filter
    ui_metrics: int = 100  # the UI phase's big run: metrics ...
    ui_points: int = 100_000  # ... of this many points each
    ui_table_runs: int = 10_000  # runs of the experiment whose table is drawn
    ui_repeats: int = 5  # page loads per measurement (the median is reported)
    ui_warmups: int = 1  # untimed loads of each page on each system before those
    ui_return_visits: int = 2  # the same user again, bundle cached (the last one is timed)
    ui_settle_s: float = 10.0  # a recording load waits at most this long for the last requests

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Profile("default")

LONG = Profile(
    "long",
    batch_duration_s=30.0,
    growth_sizes=(1_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000),
    growth_phase_s=20.0,
)

SMOKE = Profile(
    "smoke",
    batch_duration_s=1.5,
    concurrencies=(8, 32),
    batch_runs=8,
    single_duration_s=1.5,
    fanout_runs=50,
    fanout_batches=1,
    fanout_deadline_s=20.0,
    history_sizes=(5_000, 30_000),
    history_max_iters=3,
    bulk_runs=5,
    bulk_points=2_000,
    search_runs=300,
    registry_models=3,
    read_duration_s=1.0,
    visibility_duration_s=2.0,
    growth_sizes=(50_000,),
    growth_phase_s=1.5,
    drain_timeout_s=60.0,
    request_timeout_s=60.0,
    profile_s=3.0,
    trace_ingest_s=1.5,
    trace_warmup_s=0.5,
    trace_rounds=2,
    trace_visibility_s=2.0,
    search_traces=2_000,
    search_warmup_s=0.5,
    ui_metrics=5,
    ui_points=2_000,
    ui_table_runs=200,
    ui_repeats=2,
    ui_return_visits=1,
)

PROFILES = {p.name: p for p in (SMOKE, DEFAULT, LONG)}
