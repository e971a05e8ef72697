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
        ["/static-files/static/js/main.js", 100.0, 600.0, 1024 * 1024, 1000 * 1024],
        ["/ajax-api/3.0/mlflow/server-info", 2000.0, 2010.0, 612, 312],
        ["/graphql", 2400.0, 2500.0, 1324, 1024],
        ["/ajax-api/2.0/mlflow/runs/search", 2400.0, 2700.0, 2348, 2048],
        ["/static-files/static/js/2685.chunk.js", 2800.0, 3000.0, 0, 2048],  # from the cache
    ]
    got = breakdown(3.2, metrics, resources)
    assert got == {
        "total_s": 3.2,
        "first_api_s": 2.0,
        "api_in_flight_s": 0.31,
        "api_requests": 3,
        "busy_s": 2.5,
        "script_s": 1.25,
        "requests": 5,
        "transfer_kb": 1028.2,
        "api_kb": 3.3,
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
    page = {"median_s": 10.3, "breakdown_median": parts, "load_average_after": [1.0, 2.0, 3.0]}
    doc = {"workloads": {"ui": {"sluice": {"runs_table": page, "load_s": 1.0}}}}
    table = report._ui_md(doc)
    assert "| runs_table | first | sluice | 10.3 | 1.6 | 0.5 | 9.1 | — | — | [1.0, 2.0, 3.0] |" in (
        table
    )
    assert "run_charts" not in table  # a page not measured has no row


def _page(seconds: float) -> dict[str, object]:
    return {"median_s": seconds, "breakdown_median": {"total_s": seconds}}


def test_the_report_sets_each_system_beside_the_floors() -> None:
    ui = {
        "mlflow": {"runs_table": _page(7.0), "runs_table_warm": _page(3.0)},
        "sluice": {"runs_table": _page(5.0), "runs_table_warm": _page(2.0)},
        "floor": {
            "runs_table": _page(4.0),
            "runs_table_warm": _page(1.5),
            "replays": "sluice",
            "replay": {"answered": 80, "misses": 1, "last": ["POST /x"]},
        },
        "floor_mlflow": {"runs_table": _page(4.5), "runs_table_warm": _page(1.6)},
    }
    table = report._ui_md({"workloads": {"ui": ui}})
    assert "| runs_table | first | 7.00 | 5.00 | 4.00 | 4.50 | 1.40x | 1.75x |" in table
    assert "| runs_table | return | 3.00 | 2.00 | 1.50 | 1.60 | 1.50x | 2.00x |" in table
    assert "`floor` replays sluice: answered 80 requests, 1 not recorded" in table
