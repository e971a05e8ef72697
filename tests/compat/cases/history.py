"""metrics/get-history: ordering, paging with max_results and page tokens, misses and errors."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    ajax_case,
    api,
    case,
    get,
    metric,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create", "runs/create", "runs/delete", "runs/log-batch", "metrics/get-history"
) | ajax_api("experiments/create", "runs/create", "runs/log-batch", "metrics/get-history")

# Out of order on purpose: the answer is sorted by (timestamp, step, value).
POINTS = [
    metric("h", 3, timestamp=30, step=1),
    metric("h", 1, timestamp=10, step=2),
    metric("h", 2, timestamp=10, step=1),
    metric("h", 0, timestamp=10, step=1),
    metric("h", "NaN", timestamp=5, step=9),
    metric("other", 7, timestamp=1),
]


def seeded() -> list[Step]:
    return [*run_setup(), post("runs/log-batch", {"run_id": "${run}", "metrics": POINTS})]


def history(expect: int = 200, capture: str | None = None, **query: Any) -> Step:
    step = get(
        "metrics/get-history", {"run_id": "${run}", "metric_key": "h", **query}, expect=expect
    )
    if capture:
        step["capture"] = {capture: "next_page_token"}
    return step


_READS: list[Case] = [
    case("history/all-points-ordered", seeded(), history()),
    case("history/other-key-only", seeded(), history(metric_key="other")),
    case("history/max-results-larger-than-history", seeded(), history(max_results=25000)),
    case("history/max-results-exact", seeded(), history(max_results=5)),
    case("history/first-page", seeded(), history(max_results=2)),
    case(
        "history/page-through",
        seeded(),
        history(max_results=2, capture="p2"),
        history(max_results=2, page_token="${p2}", capture="p3"),
        history(max_results=2, page_token="${p3}"),
        doc="pages of 2, 2, 1; the last page carries no next_page_token",
    ),
    case(
        "history/page-token-with-larger-page",
        seeded(),
        history(max_results=1, capture="p2"),
        history(max_results=10, page_token="${p2}"),
    ),
    case(
        "history/legacy-run-uuid",
        seeded(),
        get("metrics/get-history", {"run_uuid": "${run}", "metric_key": "h"}),
    ),
    case("history/unknown-key", seeded(), history(metric_key="nope")),
    case(
        "history/unknown-run", get("metrics/get-history", {"run_id": "0" * 32, "metric_key": "h"})
    ),
    case(
        "history/key-case-sensitive",
        seeded(),
        history(metric_key="H"),
    ),
    case(
        "history/deleted-run-still-readable",
        seeded(),
        post("runs/delete", {"run_id": "${run}"}),
        history(),
    ),
    case(
        "history/non-numeric-max-results-ignored",
        seeded(),
        history(max_results="abc"),
        doc="MLflow ignores an unparsable max_results and returns everything",
    ),
]

_ERRORS: list[Case] = [
    case("history/max-results-zero", seeded(), history(400, max_results=0)),
    case("history/max-results-negative", seeded(), history(400, max_results=-1)),
    case("history/bad-page-token", seeded(), history(400, page_token="garbage")),
    case(
        "history/missing-metric-key", get("metrics/get-history", {"run_id": "0" * 32}, expect=400)
    ),
    case("history/missing-run-id", get("metrics/get-history", {"metric_key": "h"}, expect=400)),
]

_AJAX = [
    ajax_case(next(c for c in _READS if c["id"] == "history/page-through")),
    ajax_case(next(c for c in _READS if c["id"] == "history/unknown-run")),
]

CASES = _READS + _ERRORS + _AJAX
