"""Transport rules: Content-Type, unparsable and double-encoded bodies, camelCase aliases, unknown
paths (404, which the client's fallbacks rely on), wrong methods, and server-info."""

from __future__ import annotations

import json

from tests.compat.cases._build import API, api, case, create_experiment, get, get_experiment, post
from tests.compat.deviations import FIELD_DEVIATIONS
from tests.compat.model import UNKNOWN_ENDPOINT, Case, Step

ENDPOINTS = api(
    "experiments/create",
    "experiments/get",
    "runs/get",
    "runs/log-batch",
    "runs/log-metric",
    "metrics/get-history",
) | {
    "/api/3.0/mlflow/server-info",
    "/ajax-api/3.0/mlflow/server-info",
    UNKNOWN_ENDPOINT,
}

# server-info: compared whole, but for the flags documented in deviations.FIELD_DEVIATIONS.
SERVER_INFO_IGNORED = tuple(FIELD_DEVIATIONS)


def raw_create(data: str, headers: dict[str, str] | None = None, expect: int = 400) -> Step:
    step: Step = {
        "method": "POST",
        "path": API + "experiments/create",
        "data": data,
        "expect": expect,
    }
    if headers is not None:
        step["headers"] = headers
    return step


def unknown(method: str, path: str) -> Step:
    return {"method": method, "path": path, "expect": 404, "unknown_endpoint": True}


def wrong_method(method: str, endpoint: str) -> Step:
    step: Step = {"method": method, "path": API + endpoint, "expect": 405}
    if method != "GET":
        step["json"] = {}
    return step


_BODIES: list[Case] = [
    case("transport/content-type-missing", raw_create('{"name": "${uid}"}', headers={})),
    case(
        "transport/content-type-text-plain",
        raw_create('{"name": "${uid}"}', headers={"Content-Type": "text/plain"}),
    ),
    case(
        "transport/content-type-with-charset",
        raw_create(
            '{"name": "${uid}"}',
            headers={"Content-Type": "application/json; charset=utf-8"},
            expect=200,
        ),
    ),
    case("transport/truncated-json", raw_create('{"name": "${uid}"')),
    case("transport/not-json", raw_create("name=${uid}")),
    case("transport/empty-body", raw_create("")),
    case(
        "transport/double-encoded-json",
        {
            **raw_create(json.dumps(json.dumps({"name": "${uid}"})), expect=200),
            "capture": {"exp": "experiment_id"},
        },
        get_experiment(),
        doc="legacy clients post a JSON string holding the JSON object",
    ),
    case(
        "transport/camelcase-field-accepted",
        post(
            "experiments/create",
            {"name": "${uid}", "artifactLocation": "s3://b/${uid}"},
            capture={"exp": "experiment_id"},
        ),
        get_experiment(),
    ),
    case(
        "transport/get-with-unknown-query-params",
        create_experiment(),
        get("experiments/get", {"experiment_id": "${exp}", "colour": "blue"}),
    ),
    case(
        "transport/get-with-repeated-scalar-param",
        create_experiment(),
        get("experiments/get", {"experiment_id": ["${exp}", "987654321"]}),
        doc="a scalar given twice: the first value counts",
    ),
]

_UNKNOWN: list[Case] = [
    case("transport/unknown-api-path", unknown("GET", "/api/2.0/mlflow/no-such-endpoint")),
    case("transport/unknown-ajax-path", unknown("GET", "/ajax-api/2.0/mlflow/no-such-endpoint")),
    case(
        "transport/unknown-post-path",
        {**unknown("POST", "/api/2.0/mlflow/runs/no-such-thing"), "json": {}},
    ),
    case("transport/unknown-api-version", unknown("GET", "/api/9.0/mlflow/experiments/get")),
    case(
        "transport/endpoint-under-wrong-version", unknown("GET", "/api/3.0/mlflow/experiments/get")
    ),
    case("transport/server-info-under-2.0", unknown("GET", "/api/2.0/mlflow/server-info")),
    case("transport/extra-path-segment", unknown("GET", "/api/2.0/mlflow/runs/get/extra")),
    case("transport/unknown-top-level", unknown("GET", "/no-such-page")),
    case(
        "transport/trace-v3-start-unknown-to-sluice-is-404",
        {**unknown("POST", "/api/2.0/mlflow/traces-v9"), "json": {}},
        doc="the client falls back on any 404 (e.g. StartTraceV3 -> v2)",
    ),
]

_METHODS: list[Case] = [
    case("transport/get-on-post-endpoint", wrong_method("GET", "runs/log-batch")),
    case("transport/post-on-get-endpoint", wrong_method("POST", "runs/get")),
    case("transport/put-on-post-endpoint", wrong_method("PUT", "runs/log-metric")),
    case("transport/delete-on-get-endpoint", wrong_method("DELETE", "metrics/get-history")),
    case("transport/get-on-create", wrong_method("GET", "experiments/create")),
]

_SERVER_INFO: list[Case] = [
    case(
        "server-info/api",
        get("", {}, prefix="/api/3.0/mlflow/server-info", ignore=SERVER_INFO_IGNORED),
    ),
    case(
        "server-info/ajax",
        get("", {}, prefix="/ajax-api/3.0/mlflow/server-info", ignore=SERVER_INFO_IGNORED),
    ),
]

CASES = _BODIES + _UNKNOWN + _METHODS + _SERVER_INFO
