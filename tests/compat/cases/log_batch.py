"""runs/log-batch: the order of its checks (run id format, items, counts, duplicate params, run
state), its limits, and what ends up stored (params -> metrics -> tags, tags last-wins)."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    ajax_case,
    api,
    case,
    get,
    get_run,
    kv,
    many,
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
    "runs/log-batch",
    "runs/log-parameter",
    "metrics/get-history",
) | ajax_api("experiments/create", "runs/create", "runs/get", "runs/log-batch")


def batch(expect: int = 200, run: str = "${run}", **fields: Any) -> Step:
    return post("runs/log-batch", {"run_id": run, **fields}, expect=expect)


def history(key: str) -> Step:
    return get("metrics/get-history", {"run_id": "${run}", "metric_key": key})


def _stored(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, run_setup(), *steps, get_run(), doc=doc)


def _rejected(case_id: str, doc: str = "", **fields: Any) -> Case:
    """The batch is refused and nothing of it is stored."""
    return case(case_id, run_setup(), batch(400, **fields), get_run(), doc=doc)


def metrics(count: int, key: str = "m") -> list[dict[str, Any]]:
    return [metric(key, i, timestamp=1000 + i, step=i) for i in range(count)]


_STORED: list[Case] = [
    _stored("log-batch/empty", batch()),
    _stored("log-batch/empty-lists", batch(metrics=[], params=[], tags=[])),
    _stored(
        "log-batch/all-kinds",
        batch(
            metrics=[metric("loss", 0.5, step=1), metric("acc", 0.9, step=1)],
            params=[kv("lr", "0.01"), kv("layers", "3")],
            tags=[kv("team", "a"), kv("stage", "dev")],
        ),
    ),
    case(
        "log-batch/metric-history",
        run_setup(),
        batch(
            metrics=[
                metric("h", 3, 30, 1),
                metric("h", 1, 10, 2),
                metric("h", 2, 10, 1),
                metric("h", 0, 10, 1),
            ]
        ),
        get_run(),
        history("h"),
    ),
    case(
        "log-batch/duplicate-metrics-in-one-batch",
        run_setup(),
        batch(metrics=[metric("d", 1, 5, 1), metric("d", 1, 5, 1), metric("d", 2, 5, 1)]),
        history("d"),
        doc="exact duplicates collapse, a different value at the same step is a new point",
    ),
    case(
        "log-batch/batch-resent",
        run_setup(),
        batch(metrics=[metric("r", 1, 5, 1)], params=[kv("p", "1")], tags=[kv("t", "1")]),
        batch(metrics=[metric("r", 1, 5, 1)], params=[kv("p", "1")], tags=[kv("t", "1")]),
        get_run(),
        history("r"),
        doc="a client retry of the same batch is a no-op",
    ),
    case(
        "log-batch/non-finite-values",
        run_setup(),
        batch(
            metrics=[
                metric("nf", v, timestamp=i)
                for i, v in enumerate(["NaN", "Infinity", "-Infinity", "inf", "-inf", 1])
            ]
        ),
        get_run(),
        history("nf"),
    ),
    case(
        "log-batch/lowercase-nan-accepted",
        run_setup(),
        batch(metrics=[metric("nf", "nan")]),
        doc="accepted; the stored result is MLflow's half-parsed request, so it is not compared",
    ),
    _stored("log-batch/metric-step-default", batch(metrics=[metric("s", 1)])),
    _stored(
        "log-batch/metric-numeric-strings",
        batch(metrics=[{"key": "s", "value": "1.5", "timestamp": "77", "step": "3"}]),
    ),
    _stored("log-batch/param-without-value", batch(params=[kv("p")])),
    _stored("log-batch/tag-without-value", batch(tags=[kv("t")])),
    _stored("log-batch/tags-last-wins", batch(tags=[kv("t", "1"), kv("t", "2"), kv("t", "3")])),
    _stored(
        "log-batch/tag-overwrites-stored", batch(tags=[kv("t", "1")]), batch(tags=[kv("t", "2")])
    ),
    _stored(
        "log-batch/param-same-value-again",
        batch(params=[kv("p", "1")]),
        batch(params=[kv("p", "1")]),
    ),
    _stored(
        "log-batch/param-truncated",
        batch(params=[kv("p", "a" * 6000 + "b")]),
        doc="param values over 6000 characters are truncated, not rejected",
    ),
    _stored("log-batch/tag-truncated", batch(tags=[kv("t", "a" * 8000 + "b")])),
    _stored("log-batch/run-name-tag-renames", batch(tags=[kv("mlflow.runName", "from-batch")])),
    _stored("log-batch/1000-metrics", batch(metrics=metrics(1000))),
    _stored("log-batch/100-params", batch(params=many("p", 100))),
    _stored("log-batch/100-tags", batch(tags=many("t", 100))),
    _stored(
        "log-batch/1000-items-in-total",
        batch(metrics=metrics(800), params=many("p", 100), tags=many("t", 100)),
    ),
    _stored(
        "log-batch/unknown-fields-ignored",
        batch(metrics=[{**metric("m", 1), "colour": 1}], extra=1),
    ),
    _stored(
        "log-batch/legacy-run-uuid",
        post("runs/log-batch", {"run_uuid": "${run}", "params": [kv("p", "1")]}, expect=400),
        doc="log-batch requires run_id; the legacy run_uuid is not a substitute here",
    ),
]

_LIMITS: list[Case] = [
    _rejected("log-batch/1001-metrics", metrics=metrics(1001)),
    _rejected("log-batch/101-params", params=many("p", 101)),
    _rejected("log-batch/101-tags", tags=many("t", 101)),
    _rejected(
        "log-batch/1001-items-in-total",
        metrics=metrics(900),
        params=many("p", 100),
        tags=many("t", 1),
    ),
    _rejected(
        "log-batch/duplicate-param-keys-equal-values",
        params=[kv("p", "1"), kv("p", "1")],
        doc="rejected even when the values agree",
    ),
    _rejected(
        "log-batch/duplicate-param-keys-different-values",
        params=[kv("p", "1"), kv("q", "x"), kv("p", "2")],
    ),
]

_ITEMS: list[Case] = [
    _rejected(
        "log-batch/metric-missing-key", metrics=[metric("ok", 1), {"value": 1, "timestamp": 1}]
    ),
    _rejected("log-batch/metric-missing-value", metrics=[{"key": "m", "timestamp": 1}]),
    _rejected("log-batch/metric-missing-timestamp", metrics=[{"key": "m", "value": 1}]),
    _rejected("log-batch/metric-null-value", metrics=[{"key": "m", "value": None, "timestamp": 1}]),
    _rejected("log-batch/metric-negative-timestamp", metrics=[metric("m", 1, timestamp=-5)]),
    _rejected("log-batch/param-missing-key", params=[{"value": "v"}]),
    _rejected("log-batch/tag-missing-key", tags=[{"value": "v"}]),
    _rejected("log-batch/param-key-251", params=[kv("k" * 251, "v")]),
    _rejected("log-batch/tag-key-251", tags=[kv("k" * 251, "v")]),
    _rejected("log-batch/metric-key-251", metrics=[metric("k" * 251, 1)]),
    _rejected("log-batch/metrics-not-a-list", metrics="m"),
    _rejected("log-batch/params-not-a-list", params={"p": "v"}),
    _rejected("log-batch/tags-not-a-list", tags=7),
    _rejected(
        "log-batch/bad-key-in-second-metric", metrics=[metric("fine", 1), metric("bad#key", 1)]
    ),
]

_RUN_ID: list[Case] = [
    case(
        "log-batch/missing-run-id",
        post("runs/log-batch", {"metrics": [metric("m", 1)]}, expect=400),
    ),
    case("log-batch/run-id-with-space", batch(400, run="not a run")),
    case("log-batch/run-id-leading-dash", batch(400, run="-abc")),
    case("log-batch/run-id-257-chars", batch(400, run="a" * 257)),
    case("log-batch/run-id-256-chars-unknown", batch(404, run="a" * 256)),
    case("log-batch/unknown-run", batch(404, run="0" * 32, metrics=[metric("m", 1)])),
    case(
        "log-batch/validation-before-run-lookup",
        batch(400, run="0" * 32, params=[kv("p", "1"), kv("p", "1")]),
        doc="payload checks come before the run exists check",
    ),
    case(
        "log-batch/item-check-before-count-check",
        batch(400, run="0" * 32, metrics=[*metrics(1000), metric("bad#key", 1)]),
    ),
    case(
        "log-batch/deleted-run",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        batch(400, tags=[kv("t", "v")]),
    ),
]

_PARAM_CHANGES: list[Case] = [
    _stored(
        "log-batch/param-change-rejected",
        batch(params=[kv("p", "1")]),
        batch(400, params=[kv("p", "2")]),
    ),
    _stored(
        "log-batch/param-change-lists-every-conflict",
        batch(params=[kv("a", "1"), kv("b", "1")]),
        batch(400, params=[kv("a", "2"), kv("b", "2"), kv("c", "new")]),
    ),
    _stored(
        "log-batch/param-change-vs-single-log",
        post("runs/log-parameter", {"run_id": "${run}", "key": "p", "value": "1"}),
        batch(400, params=[kv("p", "2")]),
    ),
    _stored(
        "log-batch/param-conflict-stops-metrics-and-tags",
        batch(params=[kv("p", "1")]),
        batch(400, params=[kv("p", "2")], metrics=[metric("m", 1)], tags=[kv("t", "v")]),
        doc="params are written first; their conflict aborts the rest of the batch",
    ),
]

_AJAX = [ajax_case(next(c for c in _STORED if c["id"] == "log-batch/all-kinds"))]

CASES = _STORED + _LIMITS + _ITEMS + _RUN_ID + _PARAM_CHANGES + _AJAX
