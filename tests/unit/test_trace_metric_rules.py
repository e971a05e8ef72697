"""Bounds of traces/metrics that MLflow does not have (api/traces/metric_rules.py): request lists
whose length would exceed PostgreSQL's parameter or column limits are a 400, and an answer has
at most MAX_ROWS data points, also when max_results is negative (MLflow: no limit)."""

from __future__ import annotations

import pytest

from api.traces import metric_rules as rules
from schemas.mlflow_errors import MlflowError


def _query(**changes: object) -> rules.MetricQuery:
    fields: dict[str, object] = {
        "experiment_ids": (1,),
        "view": "TRACES",
        "metric": "trace_count",
        "aggregations": (rules.Aggregation("COUNT"),),
        "dimensions": (),
        "filters": (),
        "interval_s": None,
        "start_ms": None,
        "end_ms": None,
        "max_results": rules.DEFAULT_MAX_RESULTS,
        **changes,
    }
    return rules.MetricQuery(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(rules.MAX_LIST_ITEMS))
def test_a_list_longer_than_its_bound_is_a_400(name: str) -> None:
    limit = rules.MAX_LIST_ITEMS[name]
    rules.check_sizes({name: limit})
    with pytest.raises(MlflowError) as raised:
        rules.check_sizes({name: limit + 1})
    assert raised.value.code == "INVALID_PARAMETER_VALUE"
    assert f"At most {limit} {name}" in raised.value.message


@pytest.mark.parametrize(
    ("max_results", "limit"),
    [(-1, rules.MAX_ROWS), (0, 0), (7, 7), (rules.MAX_ROWS + 1, rules.MAX_ROWS)],
)
def test_the_answer_is_bounded(max_results: int, limit: int) -> None:
    compiled = rules.compile_query(_query(max_results=max_results))
    assert compiled.text.endswith(f" LIMIT ${len(compiled.params)}")
    assert compiled.params[-1] == limit


def test_a_repeated_dimension_groups_once() -> None:
    compiled = rules.compile_query(_query(dimensions=("trace_name", "trace_name")))
    assert compiled.dimensions == ("trace_name",)
    assert compiled.text.count("GROUP BY 1 ORDER BY 1") == 1
