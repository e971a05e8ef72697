"""Trace metrics (``traces/metrics``: the experiment Overview charts and the traces tab's
counter) and the v3 evaluation dataset search the traces tab calls, against MLflow 3.17.2.

The traces come from ``traces.py``'s builders (two spans each, fixed 2020 timestamps, so time
buckets are stable); one is an error, one carries token usage, two get assessments.
"""

from __future__ import annotations

import json
from typing import Any

from tests.compat.cases._build import ajax_case, case, create_experiment, post
from tests.compat.cases.traces import REQUEST_TIME, V3, _hex, _otlp_body, otlp, start
from tests.compat.model import Case, Step, step_endpoint

T0_MS = 1_600_000_000_000
TOKENS = json.dumps({"input_tokens": 5, "output_tokens": 7, "total_tokens": 12})


def _traces(base: int) -> list[Step]:
    """Experiment ${exp} with traces ${t1} (OK, token usage, two assessments) and ${t2} (ERROR,
    another name, one assessment)."""
    return [
        create_experiment(),
        otlp(_otlp_body(_hex(base))),
        start(
            _hex(base),
            var="t1",
            trace_metadata={"mlflow.user": "alice", "mlflow.trace.tokenUsage": TOKENS},
        ),
        otlp(_otlp_body(_hex(base + 1), error=True)),
        start(
            _hex(base + 1),
            var="t2",
            state="ERROR",
            execution_duration="0.015s",
            tags={"mlflow.traceName": "other", "team": "search"},
        ),
        _feedback("t1", "correct", True),
        _feedback("t1", "score", 0.5),
        _feedback("t2", "correct", False),
    ]


def _feedback(var: str, name: str, value: Any) -> Step:
    return post(
        f"traces/${{{var}}}/assessments",
        {
            "assessment": {
                "assessment_name": name,
                "trace_id": f"${{{var}}}",
                "source": {"source_type": "HUMAN", "source_id": "alice"},
                "create_time": REQUEST_TIME,
                "last_update_time": REQUEST_TIME,
                "feedback": {"value": value},
            }
        },
        prefix=V3,
    )


def metrics(view: str, metric: str, *aggregations: str, expect: int = 200, **body: Any) -> Step:
    aggs = [
        {"aggregation_type": "PERCENTILE", "percentile_value": float(a[1:])}
        if a.startswith("P")
        else {"aggregation_type": a}
        for a in aggregations
    ]
    doc = {
        "experiment_ids": ["${exp}"],
        "view_type": view,
        "metric_name": metric,
        "aggregations": aggs,
        **body,
    }
    return post("traces/metrics", doc, prefix=V3, expect=expect, unordered=["data_points"])


def _count_step() -> Step:
    return metrics("TRACES", "trace_count", "COUNT")


def bad(body: dict[str, Any], **options: Any) -> Step:
    return post("traces/metrics", body, prefix=V3, expect=400, **options)


WINDOW = {"start_time_ms": T0_MS - 86_400_000, "end_time_ms": T0_MS + 86_400_000}
DAY = {"time_interval_seconds": 86400, **WINDOW}
VALID = {
    "experiment_ids": ["${exp}"],
    "view_type": "TRACES",
    "metric_name": "trace_count",
    "aggregations": [{"aggregation_type": "COUNT"}],
}


def _filtered(filters: list[str], **options: Any) -> Step:
    return bad({**VALID, "filters": filters}, **options)


_METRICS: list[Case] = [
    case("trace-metrics/count", _traces(60), metrics("TRACES", "trace_count", "COUNT")),
    case(
        "trace-metrics/count-by-name-and-status-per-day",
        _traces(62),
        metrics(
            "TRACES",
            "trace_count",
            "COUNT",
            dimensions=["trace_name", "trace_status"],
            **DAY,
        ),
    ),
    case(
        "trace-metrics/latency-percentiles",
        _traces(64),
        metrics("TRACES", "latency", "AVG", "MIN", "MAX", "P50", "P90", "P99", **WINDOW),
        metrics("TRACES", "latency", "P50", "P99", time_interval_seconds=3600, **WINDOW),
    ),
    case(
        "trace-metrics/tokens",
        _traces(66),
        metrics("TRACES", "total_tokens", "SUM", "AVG", **WINDOW),
        metrics("TRACES", "input_tokens", "SUM", dimensions=["trace_name"], **DAY),
        metrics("TRACES", "cache_read_input_tokens", "SUM", **DAY),
    ),
    case(
        "trace-metrics/session-count-none",
        _traces(68),
        metrics("TRACES", "session_count", "COUNT"),
    ),
    case(
        "trace-metrics/spans",
        _traces(70),
        metrics("SPANS", "span_count", "COUNT", dimensions=["span_name", "span_status"]),
        metrics("SPANS", "span_count", "COUNT", dimensions=["span_type"], **DAY),
        metrics("SPANS", "latency", "AVG", "MAX", dimensions=["span_name"], **WINDOW),
        metrics("SPANS", "latency", "AVG", filters=['span.type = "CHAIN"'], **WINDOW),
        metrics("SPANS", "span_count", "COUNT", filters=["span.name = 'child'"]),
    ),
    case(
        "trace-metrics/span-cost-none",
        _traces(72),
        metrics("SPANS", "total_cost", "SUM", dimensions=["span_model_name"], **DAY),
    ),
    case(
        "trace-metrics/assessments",
        _traces(74),
        metrics(
            "ASSESSMENTS",
            "assessment_count",
            "COUNT",
            dimensions=["assessment_name", "assessment_value"],
            filters=['assessment.type = "feedback"'],
            **WINDOW,
        ),
        metrics(
            "ASSESSMENTS",
            "assessment_value",
            "AVG",
            dimensions=["assessment_name"],
            filters=['assessment.type = "feedback"'],
            **DAY,
        ),
        metrics("ASSESSMENTS", "assessment_count", "COUNT", filters=["assessment.name = 'score'"]),
    ),
    case(
        "trace-metrics/trace-filters",
        _traces(76),
        metrics("TRACES", "trace_count", "COUNT", filters=["trace.status = 'ERROR'"]),
        metrics("TRACES", "trace_count", "COUNT", filters=["trace.tag.team = 'search'"]),
        metrics(
            "TRACES",
            "trace_count",
            "COUNT",
            filters=[
                "trace.metadata.`mlflow.user` = 'alice'",
                "trace.tag.mlflow.traceName = 'root'",
            ],
        ),
        metrics("SPANS", "span_count", "COUNT", filters=["trace.status = 'OK'"]),
        metrics("ASSESSMENTS", "assessment_count", "COUNT", filters=["trace.status = 'ERROR'"]),
    ),
    case(
        "trace-metrics/window-and-limits",
        _traces(78),
        metrics("TRACES", "trace_count", "COUNT", start_time_ms=T0_MS + 86_400_000),
        metrics("TRACES", "trace_count", "COUNT", dimensions=["trace_name"], max_results=1),
        metrics("TRACES", "trace_count", "COUNT", max_results=0),
        metrics("TRACES", "latency", "AVG", start_time_ms=T0_MS + 86_400_000),
    ),
    case(
        "trace-metrics/unknown-view-type-is-traces",
        _traces(80),
        metrics("BOGUS", "trace_count", "COUNT"),
    ),
    case(
        "trace-metrics/no-experiments",
        post(
            "traces/metrics",
            {**VALID, "experiment_ids": []},
            prefix=V3,
        ),
    ),
]

_BAD: list[Case] = [
    case("trace-metrics/missing-experiment-ids", bad({})),
    case("trace-metrics/missing-view-type", bad({"experiment_ids": ["1"]})),
    case(
        "trace-metrics/missing-metric-name",
        bad({"experiment_ids": ["1"], "view_type": "TRACES"}),
    ),
    case(
        "trace-metrics/missing-aggregations",
        bad({"experiment_ids": ["1"], "view_type": "TRACES", "metric_name": "trace_count"}),
    ),
    case(
        "trace-metrics/bad-metric",
        create_experiment(),
        metrics("SPANS", "bogus", "COUNT", expect=400),
    ),
    case(
        "trace-metrics/bad-aggregation",
        create_experiment(),
        metrics("TRACES", "trace_count", "SUM", expect=400),
    ),
    case(
        "trace-metrics/bad-dimension",
        create_experiment(),
        metrics("TRACES", "latency", "AVG", dimensions=["span_name"], expect=400),
    ),
    case(
        "trace-metrics/interval-without-window",
        create_experiment(),
        metrics("TRACES", "trace_count", "COUNT", time_interval_seconds=60, expect=400),
    ),
    case(
        "trace-metrics/no-aggregations",
        create_experiment(),
        metrics("TRACES", "trace_count", expect=400),
    ),
    case(
        "trace-metrics/bad-experiment-id",
        bad({**VALID, "experiment_ids": ["abc"]}),
    ),
    case("trace-metrics/filter-not-a-clause", create_experiment(), _filtered(["bogus"])),
    case(
        "trace-metrics/filter-two-clauses",
        create_experiment(),
        _filtered(["trace.status = 'OK' AND trace.status = 'OK'"]),
    ),
    case("trace-metrics/filter-no-view", create_experiment(), _filtered(["status = 'OK'"])),
    case("trace-metrics/filter-bad-view", create_experiment(), _filtered(["foo.status = 'x'"])),
    case("trace-metrics/filter-bad-entity", create_experiment(), _filtered(["trace.bogus = 'x'"])),
    case("trace-metrics/filter-key-required", create_experiment(), _filtered(["trace.tag = 'x'"])),
    case(
        "trace-metrics/filter-key-refused",
        create_experiment(),
        _filtered(["trace.status.x = 'x'"]),
    ),
    case(
        "trace-metrics/filter-comparator",
        create_experiment(),
        _filtered(["trace.status != 'x'"]),
    ),
    case("trace-metrics/filter-unquoted", create_experiment(), _filtered(["trace.status = 5"])),
    case(
        "trace-metrics/filter-span-on-traces",
        create_experiment(),
        _filtered(["span.name = 'x'"]),
    ),
    case(
        "trace-metrics/filter-assessment-on-spans",
        create_experiment(),
        bad(
            {
                **VALID,
                "view_type": "SPANS",
                "metric_name": "span_count",
                "filters": ["assessment.name = 'x'"],
            }
        ),
    ),
]


def correlation(
    first: str, second: str, expect: int = 200, message_prefix: str | None = None, **body: Any
) -> Step:
    doc = {"experiment_ids": ["${exp}"], "filter_string1": first, "filter_string2": second}
    step = post("traces/calculate-filter-correlation", {**doc, **body}, prefix=V3, expect=expect)
    if message_prefix:
        step["message_prefix"] = message_prefix
    return step


_CORRELATION: list[Case] = [
    case(
        "trace-correlation/counts-and-npmi",
        _traces(84),
        otlp(_otlp_body(_hex(86))),
        correlation("attributes.status = 'OK'", "tags.team = 'search'"),
        correlation("attributes.status = 'OK'", "attributes.status = 'ERROR'"),
        correlation("attributes.status = 'OK'", "name = 'root'"),
        correlation("name = 'root'", "name = 'root'", base_filter="timestamp_ms > 0"),
        correlation("trace.text LIKE '%child%'", "attributes.status = 'ERROR'"),
        correlation("span.attributes.n LIKE '%7%'", "feedback.correct = 'true'"),
    ),
    case(
        "trace-correlation/missing-ids",
        post("traces/calculate-filter-correlation", {}, prefix=V3, expect=400),
    ),
    case(
        "trace-correlation/missing-second",
        create_experiment(),
        post(
            "traces/calculate-filter-correlation",
            {"experiment_ids": ["${exp}"], "filter_string1": "name = 'a'"},
            prefix=V3,
            expect=400,
        ),
    ),
    case(
        "trace-correlation/bad-filter",
        create_experiment(),
        correlation(
            "bogus = 'a'",
            "name = 'a'",
            expect=400,
            message_prefix="Invalid attribute key 'bogus' specified.",
        ),
    ),
]

_DATASETS: list[Case] = [
    case(
        "datasets/search-empty",
        create_experiment(),
        post(
            "datasets/search",
            {"experiment_ids": ["${exp}"], "order_by": ["created_time DESC"], "max_results": 50},
            prefix=V3,
        ),
        post("datasets/search", {}, prefix=V3),
        post("datasets/search", {"filter_string": "name = 'x' AND tags.k = 'v'"}, prefix=V3),
    ),
    case(
        "datasets/search-get",
        create_experiment(),
        {"method": "GET", "path": V3 + "datasets/search", "query": {"experiment_ids": "${exp}"}},
    ),
    case(
        "datasets/search-bad-filter-key",
        post(
            "datasets/search",
            {"filter_string": "bogus = 1"},
            prefix=V3,
            expect=400,
            message_prefix="Invalid attribute key 'bogus' specified. Valid keys are: {",
        ),
    ),
    case(
        "datasets/search-bad-filter-entity",
        post("datasets/search", {"filter_string": "params.x = '1'"}, prefix=V3, expect=400),
    ),
    case(
        "datasets/search-bad-order-key",
        post(
            "datasets/search",
            {"order_by": ["bogus DESC"]},
            prefix=V3,
            expect=400,
            message_prefix="Invalid attribute key 'bogus' specified. Valid keys are: {",
        ),
    ),
    case(
        "datasets/search-bad-order-direction",
        post("datasets/search", {"order_by": ["name UP"]}, prefix=V3, expect=400),
    ),
    case(
        "datasets/search-max-results-zero",
        post("datasets/search", {"max_results": 0}, prefix=V3, expect=400),
    ),
    case(
        "datasets/search-max-results-big",
        post("datasets/search", {"max_results": 100000}, prefix=V3, expect=400),
    ),
    case(
        "datasets/search-bad-token",
        post("datasets/search", {"page_token": "zzz"}, prefix=V3, expect=400),
    ),
    case(
        "datasets/search-ids-not-a-list",
        post("datasets/search", {"experiment_ids": "1"}, prefix=V3, expect=400),
    ),
]

_DELETED: list[Case] = [
    # Deleting an experiment only marks it: its traces stay readable until gc (MLflow's gc
    # cascades; Sluice's gc deletes them with the experiment).
    case(
        "traces/deleted-experiment-keeps-traces",
        _traces(88),
        post("experiments/delete", {"experiment_id": "${exp}"}),
        post(
            "traces/search",
            {
                "locations": [
                    {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "${exp}"}}
                ],
                "order_by": ["request_id ASC"],
            },
            prefix=V3,
        ),
        {"method": "GET", "path": V3 + "traces/${t1}"},
        _count_step(),
    ),
]

CASES = [
    *_METRICS,
    ajax_case(case("trace-metrics/empty-experiment", create_experiment(), _count_step())),
    *_BAD,
    *_DATASETS,
    *_CORRELATION,
    *_DELETED,
]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
