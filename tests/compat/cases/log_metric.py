"""runs/log-metric: value spellings (NaN/Inf), types, limits, duplicates and the latest-metric
rule, read back through runs/get and metrics/get-history."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    ajax_case,
    api,
    case,
    get,
    get_run,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create", "runs/create", "runs/get", "runs/log-metric", "metrics/get-history"
) | ajax_api("experiments/create", "runs/create", "runs/get", "runs/log-metric")


def log(value: Any = 1.5, key: str = "m", timestamp: Any = 1000, **extra: Any) -> Step:
    body = {"run_id": "${run}", "key": key, "value": value, "timestamp": timestamp, **extra}
    return post("runs/log-metric", body)


def rejected(body: dict[str, Any]) -> Step:
    return post("runs/log-metric", {"run_id": "${run}", **body}, expect=400)


def history(key: str = "m") -> Step:
    return get("metrics/get-history", {"run_id": "${run}", "metric_key": key})


def _stored(case_id: str, *steps: Step, key: str = "m", doc: str = "") -> Case:
    """Log, then read the run (latest values) and the key's full history."""
    return case(case_id, run_setup(), *steps, get_run(), history(key), doc=doc)


_VALUES: list[Case] = [
    _stored("log-metric/int-value", log(3)),
    _stored("log-metric/float-value", log(0.1)),
    _stored("log-metric/negative-value", log(-42.25)),
    _stored("log-metric/zero", log(0)),
    _stored("log-metric/huge-value", log(1.5e308)),
    _stored("log-metric/tiny-value", log(5e-324)),
    _stored("log-metric/numeric-string-value", log("2.5")),
    _stored("log-metric/exponent-string-value", log("1e3")),
    _stored("log-metric/bool-value", log(True), doc="a JSON true is accepted and stored as 1.0"),
]

# Every spelling of the non-finite values the client and other tools send.
_NON_FINITE = ["NaN", "Infinity", "-Infinity", "inf", "-inf"]
_SPELLINGS: list[Case] = [
    *(
        _stored(
            f"log-metric/value-{spelling}",
            log(spelling),
            doc='NaN comes back as "NaN"; +-Inf as +-1.7976931348623157e308',
        )
        for spelling in _NON_FINITE
    ),
    case(
        "log-metric/value-lowercase-nan-accepted",
        run_setup(),
        log("nan"),
        doc="accepted; what MLflow then stores is not compared: protobuf's JSON parser rejects "
        "'nan', MLflow's own check accepts it, and the half-parsed request is stored "
        "(value 0, timestamp 0)",
    ),
]

_FIELDS: list[Case] = [
    _stored("log-metric/step-default-zero", log(1)),
    _stored("log-metric/negative-step", log(1, step=-5)),
    _stored("log-metric/step-as-string", log(1, step="7")),
    _stored("log-metric/large-step", log(1, step=2**62)),
    _stored("log-metric/timestamp-as-string", log(1, timestamp="1234")),
    _stored("log-metric/timestamp-zero", log(1, timestamp=0)),
    _stored("log-metric/large-timestamp", log(1, timestamp=2**62)),
    _stored(
        "log-metric/legacy-run-uuid",
        post("runs/log-metric", {"run_uuid": "${run}", "key": "m", "value": 1, "timestamp": 5}),
    ),
    _stored(
        "log-metric/both-run-ids",
        post(
            "runs/log-metric",
            {"run_id": "${run}", "run_uuid": "${run}", "key": "m", "value": 1, "timestamp": 5},
        ),
    ),
    _stored("log-metric/dataset-fields", log(1, dataset_name="train", dataset_digest="abc123")),
    _stored("log-metric/unknown-field-ignored", log(1, colour="blue")),
]

_ERRORS: list[Case] = [
    case(
        "log-metric/missing-run-id",
        post("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1}, expect=400),
    ),
    case("log-metric/missing-key", run_setup(), rejected({"value": 1, "timestamp": 1})),
    case("log-metric/empty-key", run_setup(), rejected({"key": "", "value": 1, "timestamp": 1})),
    case("log-metric/missing-value", run_setup(), rejected({"key": "m", "timestamp": 1})),
    case(
        "log-metric/null-value", run_setup(), rejected({"key": "m", "value": None, "timestamp": 1})
    ),
    case("log-metric/missing-timestamp", run_setup(), rejected({"key": "m", "value": 1})),
    case(
        "log-metric/non-numeric-value",
        run_setup(),
        rejected({"key": "m", "value": "abc", "timestamp": 1}),
    ),
    case(
        "log-metric/negative-timestamp",
        run_setup(),
        rejected({"key": "m", "value": 1, "timestamp": -1}),
    ),
    case(
        "log-metric/timestamp-not-a-number",
        run_setup(),
        rejected({"key": "m", "value": 1, "timestamp": "noon"}),
    ),
    case(
        "log-metric/step-not-a-number",
        run_setup(),
        rejected({"key": "m", "value": 1, "timestamp": 1, "step": "x"}),
    ),
    case("log-metric/key-int", run_setup(), rejected({"key": 5, "value": 1, "timestamp": 1})),
    case(
        "log-metric/run-id-and-camelcase-alias",
        run_setup(),
        rejected({"runId": "${run}", "key": "m", "value": 1, "timestamp": 1}),
    ),
    case(
        "log-metric/unknown-run",
        post(
            "runs/log-metric",
            {"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 1},
            expect=404,
        ),
    ),
    case(
        "log-metric/malformed-run-id",
        post(
            "runs/log-metric",
            {"run_id": "not a run!", "key": "m", "value": 1, "timestamp": 1},
            expect=404,
        ),
        doc="unlike log-batch, log-metric does not check the run id format: 404",
    ),
    case(
        "log-metric/invalid-value-stores-nothing",
        run_setup(),
        rejected({"key": "m", "value": "abc", "timestamp": 1}),
        get_run(),
        history(),
    ),
]

_HISTORY: list[Case] = [
    _stored(
        "log-metric/exact-duplicate-ignored",
        log(1, timestamp=10, step=1),
        log(1, timestamp=10, step=1),
        doc="metric identity is (key, timestamp, step, value): the repeat is dropped",
    ),
    _stored(
        "log-metric/same-step-new-value",
        log(1, timestamp=10, step=1),
        log(2, timestamp=10, step=1),
    ),
    _stored(
        "log-metric/same-step-new-timestamp",
        log(1, timestamp=10, step=1),
        log(1, timestamp=11, step=1),
    ),
    _stored(
        "log-metric/latest-is-highest-step-not-last-written",
        log(5, timestamp=10, step=2),
        log(9, timestamp=20, step=1),
        doc="latest metric = max (step, timestamp, value), not the last write",
    ),
    _stored(
        "log-metric/latest-equal-step-later-timestamp",
        log(5, timestamp=20, step=1),
        log(9, timestamp=10, step=1),
    ),
    _stored(
        "log-metric/latest-equal-step-and-timestamp-max-value",
        log(9, timestamp=10, step=1),
        log(5, timestamp=10, step=1),
    ),
    _stored(
        "log-metric/latest-nan-compares-as-zero",
        log(-1, timestamp=10, step=1),
        log("NaN", timestamp=10, step=1),
        doc="NaN is stored as 0 + is_nan, so it beats -1 at equal step and time",
    ),
    _stored(
        "log-metric/latest-positive-beats-nan",
        log("NaN", timestamp=10, step=1),
        log(0.5, timestamp=10, step=1),
    ),
    case(
        "log-metric/several-keys",
        run_setup(),
        log(1, key="loss"),
        log(2, key="acc"),
        log(3, key="lr"),
        get_run(),
    ),
    _stored(
        "log-metric/nan-then-number-history",
        log("NaN", timestamp=1),
        log(2, timestamp=2),
        log("Infinity", timestamp=3),
        log("-Infinity", timestamp=4),
    ),
]

_AJAX = [
    ajax_case(case("log-metric/ajax-log-then-get", run_setup(), log(4.5, step=2), get_run())),
]

CASES = _VALUES + _SPELLINGS + _FIELDS + _ERRORS + _HISTORY + _AJAX
