"""Pure parts of the trace read side: the trace metrics compiler and its answer, the span
conditions of search_traces tested in Python, the NPMI of filter correlation."""

from __future__ import annotations

import math

import pytest

from api.traces import metric_rules as rules
from api.traces.correlation import Counts, npmi_from_counts
from api.traces.search_rules import SpanTest, Sql, compile_filter, span_matches
from schemas.mlflow_errors import MlflowError


def _query(**changes: object) -> rules.MetricQuery:
    base = rules.MetricQuery(
        experiment_ids=(7,),
        view="TRACES",
        metric="trace_count",
        aggregations=(rules.Aggregation("COUNT"),),
        dimensions=(),
        filters=(),
        interval_s=None,
        start_ms=None,
        end_ms=None,
        max_results=1000,
    )
    return rules.MetricQuery(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def test_user_values_are_parameters_never_sql_text() -> None:
    query = _query(filters=("trace.tag.`a'b` = 'x''; DROP TABLE t'",), dimensions=("trace_name",))
    compiled = rules.compile_query(query)
    assert "DROP" not in compiled.text and "a'b" not in compiled.text
    # As MLflow: the outer quotes go, the inside is kept as written ('' stays two quotes).
    assert "x''; DROP TABLE t" in compiled.params and "a'b" in compiled.params


def test_buckets_and_labels() -> None:
    query = _query(
        metric="latency",
        aggregations=(rules.Aggregation("AVG"), rules.Aggregation("PERCENTILE", 99.0)),
        interval_s=3600,
        start_ms=0,
        end_ms=10,
    )
    compiled = rules.compile_query(query)
    assert compiled.dimensions == ("time_bucket",) and compiled.labels == ("AVG", "P99.0")
    points = rules.data_points("latency", compiled, [(3_600_000.0, 4.0, None), (0.0, None, None)])
    # A row without values is left out; the bucket is MLflow's ISO form.
    assert points == [
        {
            "metric_name": "latency",
            "dimensions": {"time_bucket": "1970-01-01T01:00:00+00:00"},
            "values": {"AVG": 4.0},
        }
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metric": "bogus"}, "metric_name must be one of"),
        ({"aggregations": (rules.Aggregation("SUM"),)}, "Found invalid aggregation_type(s)"),
        ({"dimensions": ("span_name",)}, "Found invalid dimension(s): ['span_name']"),
        ({"interval_s": 60}, "start_time_ms and end_time_ms are required"),
    ],
)
def test_metric_rules_refuse_like_mlflow(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        rules.check(_query(**changes))
    assert message in str(caught.value.message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", "Invalid clause(s) in filter string: bogus"),
        ("trace.status = 'a' AND trace.status = 'b'", "Invalid clause(s) in filter string: AND"),
        ("span.name = 'x'", "only supported for SPANS view type, got TRACES"),
        ("trace.tag = 'x'", "Filtering by tag requires a key"),
        ("trace.status != 'x'", "only '=' operator is supported"),
    ],
)
def test_metric_filters_refuse_like_mlflow(text: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        rules.compile_query(_query(filters=(text,)))
    assert message in str(caught.value.message)


def test_percentiles_are_checked() -> None:
    with pytest.raises(MlflowError):
        rules.parse_aggregation({"aggregation_type": "PERCENTILE"}, 0)
    with pytest.raises(MlflowError):
        rules.parse_aggregation({"aggregation_type": "PERCENTILE", "percentile_value": 101}, 0)
    assert rules.parse_aggregation({}, 0) == rules.Aggregation("COUNT")  # the proto default


SPAN = {"name": "lookup", "span_type": "TOOL", "status": "OK"}
CONTENT = '{"name": "lookup", "attributes": {"source": "\\"wiki\\"", "k": "3"}}'


@pytest.mark.parametrize(
    ("filter_string", "matches"),
    [
        ("span.attributes.source LIKE '%wiki%'", True),
        ("span.attributes.source LIKE '%WIKI%'", False),
        ("span.attributes.source ILIKE '%WIKI%'", True),
        ("span.attributes.source RLIKE '^wiki$'", True),
        ("span.attributes.source RLIKE '^wik$'", False),
        ("span.attributes.source = 'wiki'", False),  # MLflow compares the JSON with a pattern
        ("span.attributes.source != 'wiki'", True),
        ("trace.text LIKE '%look\\_up%'", False),  # an escaped _ is a literal underscore
        ("span.name = 'lookup' AND span.content ILIKE '%WIKI%'", True),
        ("span.name = 'other' AND span.content ILIKE '%WIKI%'", False),
    ],
)
def test_span_conditions_on_one_span(filter_string: str, matches: bool) -> None:
    sql = Sql()
    compile_filter(filter_string, sql)
    assert sql.scans_spans
    assert span_matches(sql.spans, SPAN, CONTENT) is matches


def test_span_columns_alone_stay_in_sql() -> None:
    sql = Sql()
    compile_filter("span.name = 'a' AND span.type IN ('LLM', 'TOOL')", sql)
    assert not sql.scans_spans
    (exists,) = [w for w in sql.where if w.startswith("EXISTS")]
    assert "s.name = $1" in exists and "s.span_type = ANY($2::text[])" in exists
    assert sql.spans == [SpanTest("name", "=", "a"), SpanTest("span_type", "IN", ("LLM", "TOOL"))]


@pytest.mark.parametrize(
    "text",
    [
        "trace.text = 'x'",
        "span.attributes.k > 'a'",
        "span.attributes. LIKE 'a'",
        "span.bogus = 'a'",
        "prompt = 'no-version'",
        "prompt LIKE 'a/1'",
    ],
)
def test_bad_span_and_prompt_filters_are_400(text: str) -> None:
    with pytest.raises(MlflowError):
        compile_filter(text, Sql())


def test_npmi_like_mlflow() -> None:
    assert npmi_from_counts(Counts(3, 3, 3, 3)) == (1.0, 1.0)
    plain, smoothed = npmi_from_counts(Counts(10, 5, 5, 0))
    assert plain == -1.0 and -1.0 <= smoothed < 0
    assert all(math.isnan(v) for v in npmi_from_counts(Counts(3, 3, 0, 0)))
