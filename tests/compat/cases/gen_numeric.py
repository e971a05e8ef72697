"""Class 1 of issue 14, generated: every integer field of every request Sluice serves, given
the spellings clients send that are not plain JSON integers.

The fields come from MLflow's own request messages (tests/compat/surface); a route with an
integer field and no fixture below makes collection fail, so a new route is covered by
construction. MLflow parses a body with protobuf's ParseDict and *swallows* its errors, then
type-checks only the top-level fields its handler lists (`_assert_intlike`: whatever `int()`
takes). So `1.5`, `true` and out-of-range numbers pass and the field keeps its protobuf default;
strings `int()` cannot read are 400. Each case puts the field last in its object (ParseDict
stops at the first bad field and leaves the later ones unset; clients send the usual fields
first), then reads back what was stored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.compat import surface
from tests.compat.cases._build import RUN_SETS, T0, case, get, get_run, post, run_setup
from tests.compat.model import Case, Step, step_endpoint

# JSON spellings of a number that a JSON integer field may receive.
JSON_VALUES: dict[str, Any] = {
    "fraction": 1.5,
    "negative-fraction": -2.5,
    "integral-float": 2.0,
    "numeric-string": "7",
    "negative-string": "-3",
    "exponent-string": "1e2",
    "fraction-string": "1.5",
    "word-string": "x",
    "spaced-string": " 7",
    "empty-string": "",
    "true": True,
    "false": False,
    "int64-overflow": 2**63,
    "int64-underflow": -(2**63) - 1,
    "int32-overflow": 2**31,
    "huge-float": 1e20,
    "list": [1],
}
# Query strings carry text only.
QUERY_VALUES: dict[str, str] = {
    "fraction": "1.5",
    "numeric": "7",
    "exponent": "1e2",
    "true": "true",
    "spaced": " 7",
    "word": "x",
    "empty": "",
    "int64-overflow": "9223372036854775808",
    "int32-overflow": "2147483648",
    "negative": "-1",
}


@dataclass(frozen=True)
class Fixture:
    """How to call one route validly: setup steps, the request document, and reads that show
    what was stored (a response alone shows it for searches and creates)."""

    setup: tuple[Step, ...]
    doc: dict[str, Any]
    reads: tuple[Step, ...] = ()
    unordered: tuple[str, ...] = ()


def _history(key: str = "m") -> Step:
    return get("metrics/get-history", {"run_id": "${run}", "metric_key": key})


_LOGGED_MODEL = post(
    "logged-models",
    {"experiment_id": "${exp}", "name": "lm"},
    capture={"model": "model.info.model_id"},
)
_MODEL = post("registered-models/create", {"name": "${uid}"})
_VERSION = post(
    "model-versions/create", {"name": "${uid}", "source": "runs:/${run}/m", "run_id": "${run}"}
)
_METRIC = {"key": "m", "value": 1.0, "timestamp": T0, "step": 2}
_WEBHOOK = post(
    "webhooks",
    {
        "name": "w-${uid}",
        "url": "https://8.8.8.8/hook",
        "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}],
    },
)

FIXTURES: dict[tuple[str, str], Fixture] = {
    ("POST", "/mlflow/runs/log-batch"): Fixture(
        tuple(run_setup()), {"run_id": "${run}", "metrics": [_METRIC]}, (_history(), get_run())
    ),
    ("POST", "/mlflow/runs/log-metric"): Fixture(
        tuple(run_setup()), {"run_id": "${run}", **_METRIC}, (_history(), get_run())
    ),
    ("POST", "/mlflow/experiments/search"): Fixture(
        tuple(run_setup()), {"filter": "name = '${uid}'", "max_results": 1}
    ),
    ("GET", "/mlflow/experiments/search"): Fixture(
        tuple(run_setup()), {"filter": "name = '${uid}'", "max_results": "1"}
    ),
    ("POST", "/mlflow/runs/search"): Fixture(
        tuple(run_setup()), {"experiment_ids": ["${exp}"], "max_results": 1}, unordered=RUN_SETS
    ),
    ("POST", "/mlflow/runs/create"): Fixture(
        tuple(run_setup()[:1]),
        {"experiment_id": "${exp}", "run_name": "r", "start_time": T0},
        unordered=("run.data.tags",),
    ),
    ("POST", "/mlflow/runs/update"): Fixture(
        tuple(run_setup()), {"run_id": "${run}", "status": "FINISHED", "end_time": T0}, (get_run(),)
    ),
    ("GET", "/mlflow/metrics/get-history"): Fixture(
        (*run_setup(), post("runs/log-metric", {"run_id": "${run}", **_METRIC})),
        {"run_id": "${run}", "metric_key": "m", "max_results": "5"},
    ),
    ("GET", "/mlflow/metrics/get-history-bulk-interval"): Fixture(
        (*run_setup(), post("runs/log-metric", {"run_id": "${run}", **_METRIC})),
        {
            "run_ids": "${run}",
            "metric_key": "m",
            "start_step": "0",
            "end_step": "5",
            "max_results": "5",
        },
    ),
    ("POST", "/mlflow/runs/outputs"): Fixture(
        (*run_setup(), _LOGGED_MODEL),
        {"run_id": "${run}", "models": [{"model_id": "${model}", "step": 1}]},
        (get_run(),),
    ),
    ("GET", "/mlflow/registered-models/search"): Fixture(
        (_MODEL,), {"filter": "name = '${uid}'", "max_results": "1"}
    ),
    ("GET", "/mlflow/model-versions/search"): Fixture(
        (*run_setup(), _MODEL, _VERSION), {"filter": "name = '${uid}'", "max_results": "1"}
    ),
    ("POST", "/mlflow/logged-models/search"): Fixture(
        (*run_setup(), _LOGGED_MODEL), {"experiment_ids": ["${exp}"], "max_results": 1}
    ),
    ("GET", "/mlflow/webhooks"): Fixture((_WEBHOOK,), {"max_results": "1"}),
}

INTEGER_TYPES = ("int64", "int32")


def _put_last(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with the field at `path` (`a[].b` = the first item's `b`) set to
    `value` and moved last in its object, and that object last in its parents."""
    out = copy.deepcopy(doc)
    head, _, rest = path.partition(".")
    name = head.removesuffix("[]")
    if rest:
        inner = out.pop(name)
        first = inner[0] if head.endswith("[]") else inner
        first = _put_last(first, rest, value)
        out[name] = [first, *inner[1:]] if head.endswith("[]") else first
        return out
    out.pop(name, None)
    out[name] = value
    return out


def _request(endpoint: surface.Endpoint, doc: dict[str, Any], unordered: tuple[str, ...]) -> Step:
    path = endpoint.api_url
    if endpoint.route.method == "GET":
        return {"method": "GET", "path": path, "query": doc, "unordered": unordered}
    return {"method": endpoint.route.method, "path": path, "json": doc, "unordered": unordered}


def _cases_for(endpoint: surface.Endpoint) -> list[Case]:
    assert endpoint.request is not None
    integer_fields = [
        f for f in surface.fields(endpoint.request) if f.type in INTEGER_TYPES and not f.repeated
    ]
    if not integer_fields:
        return []
    key = (endpoint.route.method, endpoint.route.path)
    if key not in FIXTURES:
        raise KeyError(f"gen_numeric: no fixture for {key}, which has integer fields")
    fixture = FIXTURES[key]
    values: dict[str, Any] = QUERY_VALUES if endpoint.route.method == "GET" else JSON_VALUES
    slug = endpoint.route.path.removeprefix("/mlflow/").replace("/", "-")
    return [
        case(
            f"numeric/{endpoint.route.method.lower()}-{slug}/{field.path}/{label}",
            fixture.setup,
            _request(endpoint, _put_last(fixture.doc, field.path, value), fixture.unordered),
            fixture.reads,
        )
        for field in integer_fields
        for label, value in values.items()
    ]


def _generate(each: Callable[[surface.Endpoint], list[Case]]) -> list[Case]:
    return [c for e in surface.endpoints() if e.request for c in each(e)]


CASES: list[Case] = _generate(_cases_for)
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
