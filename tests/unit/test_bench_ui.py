"""The UI phase's breakdown of one page load (benchmarks/ui.py, pure parts)."""

from __future__ import annotations

from benchmarks import report
from benchmarks.ui import breakdown, summary, union_ms


def test_union_counts_overlapping_requests_once() -> None:
    assert union_ms([]) == 0.0
    assert union_ms([(0.0, 10.0), (5.0, 15.0), (20.0, 25.0)]) == 20.0
    assert union_ms([(0.0, 30.0), (5.0, 10.0)]) == 30.0  # nested
    assert union_ms([(20.0, 25.0), (0.0, 10.0)]) == 15.0  # any order


def test_breakdown_separates_api_requests_from_the_bundle() -> None:
    metrics = [{"name": "TaskDuration", "value": 2.5}, {"name": "ScriptDuration", "value": 1.25}]
    resources = [
        ["/static-files/static/js/main.js", 100.0, 600.0],
        ["/ajax-api/3.0/mlflow/server-info", 2000.0, 2010.0],
        ["/graphql", 2400.0, 2500.0],
        ["/ajax-api/2.0/mlflow/runs/search", 2400.0, 2700.0],
        ["/static-files/static/js/2685.chunk.js", 2800.0, 3000.0],
    ]
    got = breakdown(3.2, metrics, resources)
    assert got == {
        "total_s": 3.2,
        "first_api_s": 2.0,
        "api_in_flight_s": 0.31,
        "api_requests": 3,
        "busy_s": 2.5,
        "script_s": 1.25,
    }


def test_summary_reports_medians_and_every_load() -> None:
    loads = [
        {"total_s": 3.0, "busy_s": 2.0},
        {"total_s": 5.0, "busy_s": 4.0},
        {"total_s": 4.0, "busy_s": 1.0},
    ]
    got = summary(loads)
    assert got["median_s"] == 4.0
    assert got["all_s"] == [3.0, 5.0, 4.0]
    assert got["breakdown_median"] == {"total_s": 4.0, "busy_s": 2.0}
    assert got["loads"] == loads
    assert len(got["load_average_after"]) == 3


def test_the_report_lists_each_page_taken_apart() -> None:
    parts = {"total_s": 10.3, "first_api_s": 1.6, "api_in_flight_s": 0.5, "busy_s": 9.1}
    page = {"breakdown_median": parts, "load_average_after": [1.0, 2.0, 3.0]}
    doc = {"workloads": {"ui": {"sluice": {"runs_table": page, "load_s": 1.0}}}}
    table = report._ui_md(doc)
    assert "| runs_table | sluice | 10.3 | 1.6 | 0.5 | 9.1 | [1.0, 2.0, 3.0] |" in table
    assert "run_charts" not in table  # a page not measured has no row
