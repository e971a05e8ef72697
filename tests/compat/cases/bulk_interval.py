"""metrics/get-history-bulk-interval (the UI's charts): sampling that keeps the first and last
point, step windows, several runs, and the limits on run ids and max_results."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    T0,
    ajax_api,
    api,
    case,
    create_experiment,
    create_run,
    get,
    metric,
    on_ajax,
    post,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create", "runs/create", "runs/log-batch", "metrics/get-history-bulk-interval"
) | ajax_api("metrics/get-history-bulk-interval")

ENDPOINT = "metrics/get-history-bulk-interval"


def two_runs() -> list[Step]:
    """Run ${a}: loss at steps 0..9; run ${b}: loss at steps 0, 5, 10 (and a NaN at 11)."""
    a_points = [metric("loss", 10 - i, timestamp=1000 + i, step=i) for i in range(10)]
    b_points = [metric("loss", float(i), timestamp=2000 + i, step=i) for i in (0, 5, 10)]
    return [
        create_experiment(),
        create_run("a", run_name="a", start_time=T0),
        create_run("b", run_name="b", start_time=T0 + 1),
        post("runs/log-batch", {"run_id": "${a}", "metrics": a_points}),
        post(
            "runs/log-batch",
            {
                "run_id": "${b}",
                "metrics": [*b_points, metric("loss", "NaN", timestamp=3000, step=11)],
            },
        ),
    ]


def bulk(expect: int = 200, run_ids: Any = ("${a}",), **query: Any) -> Step:
    params = {"run_ids": list(run_ids), "metric_key": "loss", **query}
    return get(ENDPOINT, params, expect=expect)


def _seen(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, two_runs(), *steps, doc=doc)


_READS: list[Case] = [
    _seen("bulk-interval/one-run-all-points", bulk(max_results=320)),
    _seen("bulk-interval/default-max-results", bulk()),
    _seen("bulk-interval/sampled-keeps-first-and-last", bulk(max_results=4)),
    _seen("bulk-interval/max-results-one", bulk(max_results=1), doc="one point: the last"),
    _seen("bulk-interval/max-results-two", bulk(max_results=2)),
    _seen("bulk-interval/two-runs", bulk(run_ids=("${a}", "${b}"), max_results=320)),
    _seen("bulk-interval/two-runs-sampled", bulk(run_ids=("${a}", "${b}"), max_results=3)),
    _seen("bulk-interval/step-window", bulk(start_step=2, end_step=5, max_results=320)),
    _seen(
        "bulk-interval/step-window-single-step",
        bulk(start_step=5, end_step=5, run_ids=("${a}", "${b}")),
    ),
    _seen("bulk-interval/step-window-sampled", bulk(start_step=0, end_step=9, max_results=3)),
    _seen("bulk-interval/unknown-key", bulk(metric_key="nope")),
    _seen("bulk-interval/unknown-run", bulk(run_ids=("0" * 32,))),
    _seen(
        "bulk-interval/ui-call-on-ajax", on_ajax(bulk(run_ids=("${a}", "${b}"), max_results=320))
    ),
]

_ERRORS: list[Case] = [
    case("bulk-interval/missing-run-ids", get(ENDPOINT, {"metric_key": "loss"}, expect=400)),
    case("bulk-interval/missing-metric-key", get(ENDPOINT, {"run_ids": ["0" * 32]}, expect=400)),
    case("bulk-interval/101-run-ids", bulk(400, run_ids=[f"{i:032x}" for i in range(101)])),
    case("bulk-interval/max-results-zero", bulk(400, run_ids=("0" * 32,), max_results=0)),
    case("bulk-interval/max-results-2501", bulk(400, run_ids=("0" * 32,), max_results=2501)),
    case("bulk-interval/start-step-only", bulk(400, run_ids=("0" * 32,), start_step=1)),
    case("bulk-interval/end-step-only", bulk(400, run_ids=("0" * 32,), end_step=1)),
    case("bulk-interval/start-after-end", bulk(400, run_ids=("0" * 32,), start_step=5, end_step=1)),
]

CASES = _READS + _ERRORS
