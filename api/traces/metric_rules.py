"""MLflow's trace metrics query (``POST /api/3.0/mlflow/traces/metrics``) compiled to SQL (pure).

The experiment Overview charts and the traces tab ask for aggregates of one metric over one view
of the traces: TRACES (one row a trace), SPANS (one row a span), ASSESSMENTS (one row a valid
assessment), optionally grouped by dimensions and by time buckets. What a metric, dimension or
filter may be, the messages for what it may not, and the shape of the answer follow MLflow
3.17.2's SQL store. Validation happens in MLflow's order: required fields, the metric's
aggregations and dimensions, the time window, then each filter as the query is built.

Sluice keeps no per-span cost, model name or provider columns (they live inside the stored span
message), so those span metrics and dimensions have no values: the query groups over NULL and
answers no data points, as MLflow does for traces without cost attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from api.traces.metric_filters import Sql, filter_predicate
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.protojson import invalid_value

VIEW_TYPES: Final = {"TRACES": 1, "SPANS": 2, "ASSESSMENTS": 3}
AGGREGATION_TYPES: Final = {"COUNT": 1, "SUM": 2, "AVG": 3, "PERCENTILE": 4, "MIN": 5, "MAX": 6}
DEFAULT_MAX_RESULTS: Final = 1000  # the proto's default
TIME_BUCKET: Final = "time_bucket"

_ALL_NUMERIC: Final = frozenset({"SUM", "AVG", "MIN", "MAX", "PERCENTILE"})
_VALUE: Final = frozenset({"AVG", "MIN", "MAX", "PERCENTILE"})
_TRACE_NAME: Final = "(t.tags->>'mlflow.traceName')"
_SESSION: Final = "(t.metadata->>'mlflow.trace.session')"
# The number of "<key>" in the token-usage metadata, read with a pattern that matches numbers
# only: the metadata is client text, and a ::jsonb or ::numeric cast of a malformed value would
# fail the whole query (every chart of the experiment) for one bad trace.
_TOKEN_USAGE: Final = (
    "(substring(t.metadata->>'mlflow.trace.tokenUsage'"
    " from '\"{}\"\\s*:\\s*(-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)'))::numeric"
)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of a view: the SQL value it aggregates, the aggregations and dimensions
    MLflow allows on it (in MLflow's listing order, which its messages show)."""

    column: str
    aggregations: frozenset[str]
    dimensions: tuple[str, ...]


_TOKEN_DIMENSIONS: Final = ("trace_name",)
TRACE_METRICS: Final[Mapping[str, Metric]] = {
    "trace_count": Metric("t.trace_id", frozenset({"COUNT"}), ("trace_name", "trace_status")),
    "session_count": Metric(f"DISTINCT {_SESSION}", frozenset({"COUNT"}), ()),
    "latency": Metric("t.execution_ms", _VALUE, ("trace_name",)),
    **{
        name: Metric(_TOKEN_USAGE.format(name), _ALL_NUMERIC, _TOKEN_DIMENSIONS)
        for name in (
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        )
    },
}
_MODEL_DIMENSIONS: Final = ("span_model_name", "span_model_provider")
SPAN_METRICS: Final[Mapping[str, Metric]] = {
    "span_count": Metric(
        "s.span_id",
        frozenset({"COUNT"}),
        ("span_name", "span_type", "span_status", *_MODEL_DIMENSIONS),
    ),
    "latency": Metric("((s.end_ns - s.start_ns) / 1000000)", _VALUE, ("span_name", "span_status")),
    **{
        name: Metric("NULL::float8", _ALL_NUMERIC, _MODEL_DIMENSIONS)
        for name in ("input_cost", "output_cost", "total_cost")
    },
}
# An assessment's value as MLflow aggregates it: booleans and "yes"/"no" as 1/0, finite numbers.
_ASSESSMENT_NUMBER: Final = (
    "(CASE jsonb_typeof(a.value) WHEN 'boolean' THEN (CASE WHEN a.value = 'true'::jsonb"
    " THEN 1.0 ELSE 0.0 END) WHEN 'number' THEN (a.value #>> '{}')::float8"
    " WHEN 'string' THEN (CASE lower(trim(a.value #>> '{}')) WHEN 'yes' THEN 1.0"
    " WHEN 'no' THEN 0.0 END) END)"
)
ASSESSMENT_METRICS: Final[Mapping[str, Metric]] = {
    "assessment_count": Metric(
        "a.assessment_id", frozenset({"COUNT"}), ("assessment_name", "assessment_value")
    ),
    "assessment_value": Metric(_ASSESSMENT_NUMBER, _VALUE, ("assessment_name",)),
}
METRICS: Final[Mapping[str, Mapping[str, Metric]]] = {
    "TRACES": TRACE_METRICS,
    "SPANS": SPAN_METRICS,
    "ASSESSMENTS": ASSESSMENT_METRICS,
}
_DIMENSION_SQL: Final = {
    "trace_name": _TRACE_NAME,
    "trace_status": "t.state",
    "span_name": "s.name",
    "span_type": "s.span_type",
    "span_status": "s.status",
    "span_model_name": "NULL::text",
    "span_model_provider": "NULL::text",
    "assessment_name": "a.name",
    "assessment_value": "a.value::text",
}
# The time each view is bucketed and bounded by (ms). Spans are bucketed by their own start but,
# like MLflow's count and latency, kept or dropped by their trace's time.
_BUCKET_TIME: Final = {
    "TRACES": "t.request_time_ms",
    "SPANS": "(s.start_ns / 1000000)",
    "ASSESSMENTS": "t.request_time_ms",
}
# The rows of each view (``$1``: the experiment ids). Assessments: valid ones only (an
# overridden one is marked invalid), with the value and name out of the stored document.
_FROM: Final = {
    "TRACES": "trace_info t",
    "SPANS": "trace_info t JOIN trace_spans s ON s.trace_id = t.trace_id",
    "ASSESSMENTS": (
        "trace_info t JOIN (SELECT trace_id, assessment_id,"
        " doc->>'assessment_name' AS name,"
        " COALESCE(doc->'feedback'->'value', doc->'expectation'->'value',"
        " CASE WHEN doc ? 'issue' THEN doc->'issue' END) AS value,"
        " CASE WHEN doc ? 'feedback' THEN 'feedback' WHEN doc ? 'expectation'"
        " THEN 'expectation' ELSE 'issue' END AS kind"
        " FROM trace_assessments WHERE COALESCE((doc->>'valid')::boolean, true)) a"
        " ON a.trace_id = t.trace_id"
    ),
}


@dataclass(frozen=True, slots=True)
class Aggregation:
    kind: str
    percentile: float | None = None

    @property
    def label(self) -> str:
        """The key of this aggregation in a data point's values (MLflow's ``str()``)."""
        return f"P{self.percentile!r}" if self.kind == "PERCENTILE" else self.kind


@dataclass(frozen=True, slots=True)
class MetricQuery:
    experiment_ids: tuple[int, ...]
    view: str
    metric: str
    aggregations: tuple[Aggregation, ...]
    dimensions: tuple[str, ...]
    filters: tuple[str, ...]
    interval_s: int | None
    start_ms: int | None
    end_ms: int | None
    max_results: int


# Bounds MLflow does not have: each list item adds SQL parameters or columns (PostgreSQL stops
# at 32,767 parameters and 1,664 columns), and the answer is built in memory.
MAX_LIST_ITEMS: Final = {
    "experiment_ids": 100,
    "aggregations": 20,
    "dimensions": 10,
    "filters": 100,
}
MAX_ROWS: Final = 50_000  # data points of one answer, also when max_results is negative


def check_sizes(sizes: Mapping[str, int]) -> None:
    """400 for a request list longer than Sluice answers (before anything is compiled)."""
    for name, limit in MAX_LIST_ITEMS.items():
        if sizes.get(name, 0) > limit:
            raise invalid_parameter(f"At most {limit} {name} are allowed, got {sizes[name]}.")


def check(query: MetricQuery) -> None:
    """MLflow's ``validate_query_trace_metrics_params`` and the time-window rule."""
    metrics = METRICS[query.view]
    metric = metrics.get(query.metric)
    if metric is None:
        raise invalid_parameter(f"metric_name must be one of {list(metrics)}, got '{query.metric}'")
    bad = sorted({a.kind for a in query.aggregations} - metric.aggregations)
    if bad:
        raise invalid_parameter(
            f"Found invalid aggregation_type(s): {bad}. "
            f"Supported aggregation types: {sorted(metric.aggregations)}"
        )
    bad_dims = sorted(set(query.dimensions) - set(metric.dimensions))
    if bad_dims:
        raise invalid_parameter(
            f"Found invalid dimension(s): {bad_dims}. "
            f"Supported dimensions: {sorted(metric.dimensions)}"
        )
    if query.interval_s and (query.start_ms is None or query.end_ms is None):
        raise invalid_parameter(
            "start_time_ms and end_time_ms are required if time_interval_seconds is set"
        )


def parse_aggregation(item: Any, index: int) -> Aggregation:
    """One MetricAggregation message. An unknown or missing type is the proto default (COUNT),
    as MLflow's parser leaves it; a percentile out of range is MLflow's ValueError, which MLflow
    answers with 500 and Sluice with a 400 carrying the same text."""
    if not isinstance(item, dict):
        raise invalid_value(f"aggregations[{index}]", item)
    raw = item.get("aggregation_type", item.get("aggregationType"))
    kind = raw if isinstance(raw, str) and raw in AGGREGATION_TYPES else None
    if kind is None and isinstance(raw, int) and not isinstance(raw, bool):
        kind = next((k for k, v in AGGREGATION_TYPES.items() if v == raw), None)
    kind = kind or "COUNT"
    value = item.get("percentile_value", item.get("percentileValue"))
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise invalid_value(f"aggregations[{index}].percentile_value", value)
    percentile = float(value) if value is not None else None
    if kind == "PERCENTILE":
        if percentile is None:
            raise invalid_parameter("Percentile value is required for PERCENTILE aggregation")
        if not 0 <= percentile <= 100:
            raise invalid_parameter(
                f"Percentile value must be between 0 and 100, got {percentile!r}"
            )
    elif percentile is not None:
        raise invalid_parameter(
            f"Percentile value is only allowed for PERCENTILE aggregation type, got {kind}"
        )
    return Aggregation(kind, percentile)


def experiment_number(raw: str) -> int:
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or raw.count("-") > 1 or len(raw) > 18:
        raise invalid_parameter(
            f"Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."
        )
    return int(raw)


# -- the statement and its answer ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compiled:
    text: str
    params: list[Any]
    dimensions: tuple[str, ...]  # names of the leading result columns (time bucket first)
    labels: tuple[str, ...]  # names of the aggregate columns


def compile_query(query: MetricQuery) -> Compiled:
    """One SELECT: ``$1`` the experiment ids, filters and the time window as parameters."""
    metric = METRICS[query.view][query.metric]
    sql = Sql()
    sql.param(list(query.experiment_ids))
    where = ["t.experiment_id = ANY($1::bigint[])"]
    where += [filter_predicate(text, query.view, sql) for text in query.filters]
    if not query.aggregations:  # MLflow's database layer refuses the empty SELECT
        raise MlflowError("BAD_REQUEST", "Query contains no columns with which to SELECT from.")
    time_column = "t.request_time_ms"
    if query.view == "SPANS" and query.metric in ("input_cost", "output_cost", "total_cost"):
        time_column = "(s.start_ns / 1000000)"  # MLflow bounds span costs by the span's start
    if query.start_ms is not None:
        where.append(f"{time_column} >= {sql.param(query.start_ms)}")
    if query.end_ms is not None:
        where.append(f"{time_column} <= {sql.param(query.end_ms)}")
    if query.metric == "session_count":
        where.append(f"{_SESSION} IS NOT NULL")
    else:
        where.append(f"{metric.column} IS NOT NULL")
    groups: list[str] = []
    names: list[str] = []
    if query.interval_s:
        size = sql.param(float(query.interval_s * 1000))
        groups.append(f"(floor({_BUCKET_TIME[query.view]}::float8 / {size}) * {size})::float8")
        names.append(TIME_BUCKET)
    for dimension in dict.fromkeys(query.dimensions):  # a repeated dimension groups once
        column = _DIMENSION_SQL[dimension]
        where.append(f"{column} IS NOT NULL")
        groups.append(column)
        names.append(dimension)
    aggregates = [_aggregate(a, metric.column) for a in query.aggregations]
    select = ", ".join([*groups, *aggregates])
    text = f"SELECT {select} FROM {_FROM[query.view]} WHERE {' AND '.join(where)}"
    if groups:
        positions = ", ".join(str(i + 1) for i in range(len(groups)))
        text += f" GROUP BY {positions} ORDER BY {positions}"
    # MLflow's SQLite reads a negative LIMIT as "no limit": here that is the answer's bound.
    limit = query.max_results if 0 <= query.max_results <= MAX_ROWS else MAX_ROWS
    text += f" LIMIT {sql.param(limit)}"
    return Compiled(text, sql.params, tuple(names), tuple(a.label for a in query.aggregations))


def _aggregate(aggregation: Aggregation, column: str) -> str:
    if aggregation.kind == "COUNT":
        return f"count({column})::float8"
    value = column.removeprefix("DISTINCT ")
    if aggregation.kind == "PERCENTILE":
        fraction = (aggregation.percentile or 0.0) / 100
        return f"percentile_cont({fraction!r}) WITHIN GROUP (ORDER BY ({value})::float8)"
    return f"{aggregation.kind.lower()}(({value})::float8)"


def data_points(
    metric_name: str, compiled: Compiled, rows: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    """MetricDataPoint JSON of each row; a row with a NULL dimension or no value is left out."""
    points: list[dict[str, Any]] = []
    width = len(compiled.dimensions)
    for row in rows:
        dims = dict(zip(compiled.dimensions, row[:width], strict=True))
        if any(v is None for v in dims.values()):
            continue
        if TIME_BUCKET in dims:
            bucket = datetime.fromtimestamp(float(dims[TIME_BUCKET]) / 1000.0, tz=UTC)
            dims[TIME_BUCKET] = bucket.isoformat()
        values = {
            label: float(v)
            for label, v in zip(compiled.labels, row[width:], strict=True)
            if v is not None
        }
        if not values:
            continue
        point: dict[str, Any] = {"metric_name": metric_name}
        if dims:
            point["dimensions"] = {k: str(v) for k, v in dims.items()}
        point["values"] = values
        points.append(point)
    return points
