"""runs/outputs (logged-model outputs), logged-model inputs of runs/log-inputs, and the legacy
ajax-only metrics/get-history-bulk."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    AJAX,
    RUN_SETS,
    api,
    case,
    get,
    get_run,
    metric,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "runs/create",
    "runs/get",
    "runs/delete",
    "runs/outputs",
    "runs/log-inputs",
    "runs/log-batch",
) | {AJAX + "metrics/get-history-bulk"}


def outputs(models: Any, expect: int = 200, run: str = "${run}") -> Step:
    return post("runs/outputs", {"run_id": run, "models": models}, expect=expect)


def read() -> Step:
    return get_run(unordered=RUN_SETS)


_OUTPUTS: list[Case] = [
    case("outputs/one-model", run_setup(), outputs([{"model_id": "m-1", "step": 3}]), read()),
    case("outputs/step-defaults-to-zero", run_setup(), outputs([{"model_id": "m-1"}]), read()),
    case(
        "outputs/two-calls",
        run_setup(),
        outputs([{"model_id": "m-2", "step": 1}]),
        outputs([{"model_id": "m-1", "step": 2}]),
        get_run(unordered=(*RUN_SETS, "run.outputs.model_outputs")),
        doc="MLflow's store reads the edges in no defined order",
    ),
    case(
        "outputs/missing-models",
        run_setup(),
        post("runs/outputs", {"run_id": "${run}"}, expect=400),
    ),
    case("outputs/empty-models-accepted", run_setup(), outputs([]), read()),
    case(
        "outputs/repeated-model-refused",
        run_setup(),
        outputs([{"model_id": "m-1", "step": 1}]),
        {**outputs([{"model_id": "m-1", "step": 2}], expect=400), "message_regex": "UNIQUE"},
        read(),
        doc="one output edge per (run, model): a repeat fails on MLflow's unique key",
    ),
    case(
        "outputs/repeated-model-input-ignored",
        run_setup(),
        post("runs/log-inputs", {"run_id": "${run}", "models": [{"model_id": "m-7"}]}),
        post("runs/log-inputs", {"run_id": "${run}", "models": [{"model_id": "m-7"}]}),
        read(),
    ),
    case(
        "outputs/missing-run-id", post("runs/outputs", {"models": [{"model_id": "m"}]}, expect=400)
    ),
    case("outputs/unknown-run", outputs([{"model_id": "m"}], expect=404, run="0" * 32)),
    case(
        "outputs/deleted-run",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        outputs([{"model_id": "m"}], expect=400),
    ),
    case(
        "outputs/model-inputs-of-log-inputs",
        run_setup(),
        post("runs/log-inputs", {"run_id": "${run}", "models": [{"model_id": "m-7"}]}),
        read(),
    ),
]

POINTS = [
    metric("h", 3.0, timestamp=30, step=1),
    metric("h", 1.0, timestamp=10, step=2),
    metric("h", 7.0, timestamp=5, step=9),
    metric("other", 1.0, timestamp=1),
]


def bulk(query: dict[str, Any], expect: int = 200) -> Step:
    return get("metrics/get-history-bulk", query, prefix=AJAX, expect=expect)


_BULK: list[Case] = [
    case(
        "history-bulk/one-run",
        run_setup(),
        post("runs/log-batch", {"run_id": "${run}", "metrics": POINTS}),
        bulk({"run_id": "${run}", "metric_key": "h"}),
    ),
    case(
        "history-bulk/max-results-caps-the-total",
        run_setup(),
        post("runs/log-batch", {"run_id": "${run}", "metrics": POINTS}),
        bulk({"run_id": "${run}", "metric_key": "h", "max_results": "2"}),
    ),
    case("history-bulk/unknown-run", bulk({"run_id": "0" * 32, "metric_key": "h"})),
    case("history-bulk/no-run-id", bulk({"metric_key": "h"}, expect=400)),
    case("history-bulk/no-metric-key", bulk({"run_id": "0" * 32}, expect=400)),
    case(
        "history-bulk/101-run-ids",
        bulk({"run_id": [f"{i:032x}" for i in range(101)], "metric_key": "h"}, expect=400),
    ),
]

CASES = _OUTPUTS + _BULK
