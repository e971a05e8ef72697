"""Traces of MLflow 2.x clients (issue 13): StartTrace (``POST /api/2.0/mlflow/traces``) and
EndTrace (``PATCH /api/2.0/mlflow/traces/{request_id}``), with every read of the traces they
make (v2 info and search, v3 info and search), the /ajax-api forms, repeated ends, and bad
input. The server makes the request id (32 hex digits): captured per server, normalised alike.
"""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import T0, ajax_case, case, create_experiment, get, kv, post
from tests.compat.model import Case, Step, step_endpoint

V2 = "/api/2.0/mlflow/"
V3 = "/api/3.0/mlflow/"
# Tag and metadata lists: MLflow reads them without an ORDER BY.
INFO_SETS = ("trace_info.tags", "trace_info.request_metadata")
V3_SETS = ("trace.trace_info.tags", "trace.trace_info.trace_metadata")


def start(body: dict[str, Any] | None = None, expect: int = 200, **options: Any) -> Step:
    doc = {
        "experiment_id": "${exp}",
        "timestamp_ms": T0,
        "request_metadata": [kv("mlflow.trace_schema.version", "2"), kv("origin", "client")],
        "tags": [kv("mlflow.traceName", "predict"), kv("team", "a")],
        **(body or {}),
    }
    step = post("traces", doc, prefix=V2, expect=expect, unordered=INFO_SETS, **options)
    if expect == 200:
        step["capture"] = {"req": "trace_info.request_id"}
    return step


def end(body: dict[str, Any] | None = None, request_id: str = "${req}", expect: int = 200) -> Step:
    doc = {
        "timestamp_ms": T0 + 25,
        "status": "OK",
        "request_metadata": [kv("mlflow.traceOutputs", '"ok"')],
        "tags": [kv("team", "b"), kv("extra", "x")],
        **(body or {}),
    }
    return {
        "method": "PATCH",
        "path": V2 + f"traces/{request_id}",
        "json": doc,
        "expect": expect,
        "unordered": INFO_SETS,
    }


def info_v2(expect: int = 200) -> Step:
    return get("traces/${req}/info", prefix=V2, expect=expect, unordered=INFO_SETS)


def info_v3() -> Step:
    return get("traces/${req}", prefix=V3, unordered=V3_SETS)


def search_v2(**query: str) -> Step:
    return get(
        "traces",
        {"experiment_ids": "${exp}", **query},
        prefix=V2,
        unordered=["traces[*].tags", "traces[*].request_metadata"],
    )


def search_v3(body: dict[str, Any] | None = None) -> Step:
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "${exp}"}}]
    return post(
        "traces/search",
        {"locations": locations, **(body or {})},
        prefix=V3,
        unordered=["traces[*].tags", "traces[*].trace_metadata"],
    )


_LIFECYCLE: list[Case] = [
    case(
        "traces-v2/start-end-read",
        create_experiment(),
        start(),
        end(),
        info_v2(),
        search_v2(),
        info_v3(),
        search_v3(),
    ),
    case("traces-v2/start-in-progress", create_experiment(), start(), info_v2(), search_v2()),
    case(
        "traces-v2/start-minimal",
        create_experiment(),
        post(
            "traces",
            {"experiment_id": "${exp}"},
            prefix=V2,
            capture={"req": "trace_info.request_id"},
        ),
        info_v2(),
        end({"request_metadata": [], "tags": []}),
        info_v2(),
    ),
    case(
        "traces-v2/end-repeated",
        create_experiment(),
        start(),
        end(),
        end(),
        info_v2(),
        search_v2(),
    ),
    case(
        "traces-v2/end-error-status",
        create_experiment(),
        start(),
        end({"status": "ERROR"}),
        info_v2(),
        search_v3({"filter": "attributes.status = 'ERROR'"}),
    ),
    case(
        "traces-v2/end-status-number",
        create_experiment(),
        start(),
        end({"status": 2}),
        info_v2(),
    ),
    case(
        "traces-v2/end-in-progress",
        create_experiment(),
        start(),
        end({"status": "IN_PROGRESS"}),
        info_v2(),
    ),
    case(
        "traces-v2/end-overrides-tag",
        create_experiment(),
        start(),
        end({"tags": [kv("team", "c"), kv("team", "d")]}),
        info_v2(),
    ),
    case(
        "traces-v2/tags-and-delete-after-end",
        create_experiment(),
        start(),
        end(),
        {
            "method": "PATCH",
            "path": V2 + "traces/${req}/tags",
            "json": {"key": "later", "value": "1"},
        },
        {"method": "DELETE", "path": V2 + "traces/${req}/tags", "json": {"key": "extra"}},
        info_v2(),
        post("traces/delete-traces", {"experiment_id": "${exp}", "request_ids": ["${req}"]}),
        search_v2(),
        info_v2(expect=404),
    ),
    case(
        "traces-v2/search-filters",
        create_experiment(),
        start(),
        end(),
        search_v2(filter="tags.team = 'b'"),
        search_v2(filter="tags.team = 'a'"),
        search_v2(filter="attributes.status = 'OK'"),
        search_v2(filter="attributes.execution_time_ms = 25"),
        search_v3({"filter": "metadata.origin = 'client'"}),
    ),
    case(
        # Last in the body: MLflow leaves the fields after a refused one unset (Sluice keeps
        # them, schemas/int_fields.py).
        "traces-v2/fraction-timestamp-reads-as-zero",
        create_experiment(),
        post(
            "traces",
            {"experiment_id": "${exp}", "tags": [kv("team", "a")], "timestamp_ms": 1.5},
            prefix=V2,
            capture={"req": "trace_info.request_id"},
            unordered=INFO_SETS,
        ),
        info_v2(),
    ),
    case(
        "traces-v2/numeric-string-timestamp",
        create_experiment(),
        start({"timestamp_ms": str(T0)}),
        end({"timestamp_ms": str(T0 + 7)}),
        info_v2(),
    ),
]

_BAD: list[Case] = [
    # MLflow crashes (a JSON 500 with Python's text) where Sluice answers 400.
    case("traces-v2/start-missing-experiment", post("traces", {}, prefix=V2, expect=500)),
    case(
        "traces-v2/end-status-unknown-name",
        create_experiment(),
        start(),
        end({"status": "BOGUS"}, expect=500),
    ),
    case(
        "traces-v2/end-without-status",
        create_experiment(),
        start(),
        end({"status": None}, expect=500),
    ),
    case(
        "traces-v2/end-status-unspecified",
        create_experiment(),
        start(),
        end({"status": "TRACE_STATUS_UNSPECIFIED"}, expect=500),
    ),
    case(
        "traces-v2/start-metadata-not-objects",
        create_experiment(),
        start({"request_metadata": [5]}, expect=500),
    ),
    case(
        "traces-v2/start-unknown-experiment",
        create_experiment(),
        start({"experiment_id": "987654321"}, expect=404),
    ),
    case(
        "traces-v2/start-experiment-not-a-number",
        create_experiment(),
        start({"experiment_id": "abc"}, expect=400),
    ),
    case(
        "traces-v2/start-experiment-an-integer",
        create_experiment(),
        start({"experiment_id": 5}, expect=400),
    ),
    case(
        "traces-v2/start-deleted-experiment",
        create_experiment(),
        post("experiments/delete", {"experiment_id": "${exp}"}),
        start(expect=400),
    ),
    case(
        "traces-v2/start-timestamp-word",
        create_experiment(),
        start({"timestamp_ms": "soon"}, expect=400),
    ),
    case(
        "traces-v2/start-tags-not-a-list",
        create_experiment(),
        start({"tags": {"team": "a"}}, expect=400),
    ),
    case(
        "traces-v2/start-tag-without-key",
        create_experiment(),
        start({"tags": [{"value": "a"}]}, expect=400),
    ),
    case(
        "traces-v2/start-metadata-empty-key",
        create_experiment(),
        start({"request_metadata": [kv("", "a")]}, expect=400),
    ),
    case(
        "traces-v2/start-trace-name-too-long",
        create_experiment(),
        start({"tags": [kv("mlflow.traceName", "n" * 4097)]}, expect=400),
    ),
    case(
        "traces-v2/start-wrong-content-type",
        create_experiment(),
        {
            "method": "POST",
            "path": V2 + "traces",
            "data": '{"experiment_id": "${exp}"}',
            "headers": {"Content-Type": "text/plain"},
            "expect": 400,
        },
    ),
    case("traces-v2/end-unknown-trace", end(request_id="0123456789abcdef", expect=404)),
    case(
        "traces-v2/end-timestamp-word",
        create_experiment(),
        start(),
        end({"timestamp_ms": "later"}, expect=400),
    ),
    case(
        "traces-v2/end-tags-without-key",
        create_experiment(),
        start(),
        end({"tags": [{"value": "x"}]}, expect=400),
    ),
    case(
        "traces-v2/end-deleted-trace",
        create_experiment(),
        start(),
        post("traces/delete-traces", {"experiment_id": "${exp}", "request_ids": ["${req}"]}),
        end(expect=404),
    ),
]

# The /ajax-api twins of a full lifecycle and of one refusal.
_AJAX_OF = ("traces-v2/start-end-read", "traces-v2/start-unknown-experiment")
_AJAX: list[Case] = [ajax_case(c) for c in [*_LIFECYCLE, *_BAD] if c["id"] in _AJAX_OF]

CASES = [*_LIFECYCLE, *_BAD, *_AJAX]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
