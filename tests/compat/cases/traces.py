"""Traces (issue 13): OTLP span export (JSON form, so a case can write it), StartTraceV3, the
reads (trace info v2/v3, get trace, batch get, get-trace-artifact, search v2/v3), tags, deletes,
run links and assessments, each with its error paths.

Every trace gets its spans through /v1/traces before StartTraceV3, as the client's exporter
usually does; MLflow then marks it ``spansLocation: TRACKING_STORE`` exactly as Sluice does.
Trace ids are fixed per case (OTLP needs 32 hex digits); each server's database is fresh per
session, and the normaliser maps the hex to a placeholder on both sides alike.
"""

from __future__ import annotations

import json
from typing import Any

from tests.compat.cases._build import case, create_experiment, get, post
from tests.compat.model import Case, Step, step_endpoint

V3 = "/api/3.0/mlflow/"
V2 = "/api/2.0/mlflow/"
AJAX = "/ajax-api/2.0/mlflow/"
START_NS = 1_600_000_000_000_000_000  # T0 in nanoseconds: far from "now", echoed exactly
REQUEST_TIME = "2020-09-13T12:26:40Z"  # the same instant in the JSON form


def _hex(n: int) -> str:
    return f"{n:032x}"


def _otlp_body(trace_hex: str, *, error: bool = False, tags: dict[str, str] | None = None) -> str:
    q_one = {"key": "q", "value": {"intValue": "1"}}
    attributes = [
        {"key": "mlflow.spanType", "value": {"stringValue": "CHAIN"}},
        # as the client sends them: JSON values decoded into OTLP values
        {"key": "mlflow.spanInputs", "value": {"kvlistValue": {"values": [q_one]}}},
        {"key": "mlflow.spanOutputs", "value": {"stringValue": "ok"}},
    ] + [
        {"key": f"mlflow.traceTag.{k}", "value": {"stringValue": v}}
        for k, v in (tags or {}).items()
    ]
    root = {
        "traceId": trace_hex,
        "spanId": "00000000000000a1",
        "name": "root",
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 5_000_000),
        "attributes": attributes,
        "status": {"code": 2 if error else 1},
    }
    child = {
        "traceId": trace_hex,
        "spanId": "00000000000000b2",
        "parentSpanId": "00000000000000a1",
        "name": "child",
        "startTimeUnixNano": str(START_NS + 1_000_000),
        "endTimeUnixNano": str(START_NS + 2_000_000),
        "attributes": [{"key": "n", "value": {"intValue": "7"}}],
        "status": {"code": 1},
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [root, child]}]}]})


def otlp(
    body: str, *, exp: str = "${exp}", content_type: str = "application/json", expect: int = 200
) -> Step:
    headers = {"Content-Type": content_type, "x-mlflow-experiment-id": exp}
    return {
        "method": "POST",
        "path": "/v1/traces",
        "data": body,
        "headers": headers,
        "expect": expect,
    }


def start(trace_hex: str, *, var: str = "trace", expect: int = 200, **info: Any) -> Step:
    trace_info: dict[str, Any] = {
        "trace_id": f"tr-{trace_hex}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": "${exp}"},
        },
        "request_time": REQUEST_TIME,
        "execution_duration": "0.005s",
        "state": "OK",
        "trace_metadata": {"mlflow.user": "alice", "mlflow.traceInputs": '{"q": 1}'},
        "tags": {"mlflow.traceName": "root", "team": "search"},
        "request_preview": '{"q": 1}',
        "response_preview": '"ok"',
        **info,
    }
    # MLflow's answer misses tags merged into a trace its spans created (it reads the row back
    # before the merge is visible); the reads after it are compared in full.
    step = post(
        "traces",
        {"trace": {"trace_info": trace_info}},
        prefix=V3,
        expect=expect,
        ignore=["trace.trace_info.tags"],
    )
    if expect == 200:
        step["capture"] = {var: "trace.trace_info.trace_id"}
    return step


def traced(n: int, **tags: str) -> list[Step]:
    """An experiment ${exp} with one finished trace ${trace} (two spans)."""
    return [create_experiment(), otlp(_otlp_body(_hex(n), tags=tags)), start(_hex(n))]


def trace_info(var: str = "trace", **options: Any) -> Step:
    return get(f"traces/${{{var}}}", prefix=V3, **options)


def search(body: dict[str, Any] | None = None, expect: int = 200, **options: Any) -> Step:
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "${exp}"}}]
    return post(
        "traces/search",
        {"locations": locations, **(body or {})},
        prefix=V3,
        expect=expect,
        **options,
    )


def _search_both(body: dict[str, Any], **options: Any) -> Step:
    locations = [
        {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}
        for exp in ("${exp}", "${exp2}")
    ]
    return post("traces/search", {"locations": locations, **body}, prefix=V3, **options)


_WRITES: list[Case] = [
    case("traces/otlp-then-start", traced(1), trace_info()),
    case("traces/otlp-only", create_experiment(), otlp(_otlp_body(_hex(2))), search()),
    case(
        "traces/otlp-error-root",
        create_experiment(),
        otlp(_otlp_body(_hex(3), error=True)),
        search(),
    ),
    case(
        "traces/otlp-root-tags",
        create_experiment(),
        otlp(_otlp_body(_hex(4), tags={"color": "blue"})),
        search(),
    ),
    case(
        "traces/otlp-wrong-content-type",
        create_experiment(),
        otlp(_otlp_body(_hex(5)), content_type="text/plain", expect=400),
    ),
    case("traces/otlp-not-json", create_experiment(), otlp("{nope", expect=400)),
    case("traces/otlp-no-spans", create_experiment(), otlp('{"resourceSpans": []}', expect=400)),
    case(
        "traces/otlp-missing-experiment-header",
        create_experiment(),
        {
            "method": "POST",
            "path": "/v1/traces",
            "data": _otlp_body(_hex(6)),
            "headers": {"Content-Type": "application/json"},
            "expect": 422,
        },
    ),
    case(
        "traces/otlp-unknown-experiment",
        create_experiment(),
        otlp(_otlp_body(_hex(7)), exp="987654321", expect=404),
    ),
    case("traces/start-missing-trace", post("traces", {}, prefix=V3, expect=400)),
    case(
        "traces/start-unknown-experiment",
        create_experiment(),
        post(
            "traces",
            {
                "trace": {
                    "trace_info": {
                        "trace_id": "tr-x",
                        "trace_location": {
                            "type": "MLFLOW_EXPERIMENT",
                            "mlflow_experiment": {"experiment_id": "987654321"},
                        },
                        "request_time": REQUEST_TIME,
                        "state": "OK",
                    }
                }
            },
            prefix=V3,
            expect=404,
        ),
    ),
]

_READS: list[Case] = [
    case("traces/get-trace", traced(10), get("traces/get", {"trace_id": "${trace}"}, prefix=V3)),
    case(
        "traces/get-trace-artifact",
        traced(11),
        get("get-trace-artifact", {"request_id": "${trace}"}, prefix=AJAX),
    ),
    case(
        "traces/get-trace-info-v2",
        traced(12),
        get(
            "traces/${trace}/info",
            prefix=V2,
            unordered=["trace_info.tags", "trace_info.request_metadata"],
        ),
    ),
    case(
        "traces/batch-get",
        traced(13),
        get("traces/batchGet", {"trace_ids": ["${trace}", "tr-missing"]}, prefix=V3),
    ),
    case(
        "traces/batch-get-infos",
        traced(14),
        post("traces/batchGetInfos", {"trace_ids": ["${trace}"]}, prefix=V3),
    ),
    case("traces/get-unknown", get("traces/tr-nope", prefix=V3, expect=404)),
    case(
        "traces/get-trace-unknown",
        get("traces/get", {"trace_id": "tr-nope"}, prefix=V3, expect=404),
    ),
    case("traces/get-trace-missing-id", get("traces/get", prefix=V3, expect=400)),
    case("traces/batch-get-missing-ids", get("traces/batchGet", prefix=V3, expect=400)),
    case(
        "traces/get-trace-artifact-missing-id", get("get-trace-artifact", prefix=AJAX, expect=400)
    ),
    case(
        "traces/get-trace-artifact-unknown",
        get("get-trace-artifact", {"request_id": "tr-nope"}, prefix=AJAX, expect=404),
    ),
    case("traces/get-info-v2-unknown", get("traces/tr-nope/info", prefix=V2, expect=404)),
]

_SEARCH: list[Case] = [
    case("traces/search-tag", traced(20), search({"filter": "tags.team = 'search'"})),
    case("traces/search-tag-miss", traced(21), search({"filter": "tags.team = 'other'"})),
    case("traces/search-status", traced(22), search({"filter": "attributes.status = 'OK'"})),
    case(
        "traces/search-metadata", traced(23), search({"filter": "metadata.`mlflow.user` = 'alice'"})
    ),
    case("traces/search-name", traced(24), search({"filter": "name = 'root'"})),
    case("traces/search-timestamp", traced(25), search({"filter": "timestamp_ms > 1500000000000"})),
    case("traces/search-span-name", traced(26), search({"filter": "span.name = 'child'"})),
    case(
        "traces/search-order-paging",
        create_experiment(),
        otlp(_otlp_body(_hex(27))),
        otlp(_otlp_body(_hex(28))),
        search({"max_results": 1, "order_by": ["timestamp_ms ASC", "request_id ASC"]}),
    ),
    case(
        # Several experiments: Sluice merges per-experiment ordered scans (a UNION ALL).
        "traces/search-two-experiments-paging",
        create_experiment(),
        create_experiment("exp2", name="${uid}-2"),
        otlp(_otlp_body(_hex(30))),
        otlp(_otlp_body(_hex(31)), exp="${exp2}"),
        otlp(_otlp_body(_hex(32))),
        otlp(_otlp_body(_hex(33)), exp="${exp2}"),
        _search_both({"max_results": 3}, capture={"token": "next_page_token"}),
        _search_both({"max_results": 3, "page_token": "${token}"}),
        _search_both({"order_by": ["request_id DESC"], "filter": "attributes.status = 'OK'"}),
    ),
    case(
        "traces/search-v2",
        traced(29),
        get(
            "traces",
            {"experiment_ids": "${exp}"},
            prefix=V2,
            unordered=["traces[*].tags", "traces[*].request_metadata"],
        ),
    ),
    case("traces/search-missing-locations", post("traces/search", {}, prefix=V3, expect=400)),
    case(
        "traces/search-bad-key",
        create_experiment(),
        search(
            {"filter": "bogus = 1"},
            expect=400,
            message_prefix="Invalid attribute key 'bogus' specified.",
        ),
    ),
    case(
        "traces/search-max-results-zero",
        create_experiment(),
        search({"max_results": 0}, expect=400),
    ),
]

_WRITES_API: list[Case] = [
    case(
        "traces/set-and-delete-tag",
        traced(40),
        {
            "method": "PATCH",
            "path": V3 + "traces/${trace}/tags",
            "json": {"key": "k", "value": "v"},
        },
        trace_info(),
        {"method": "DELETE", "path": V3 + "traces/${trace}/tags", "json": {"key": "k"}},
        trace_info(),
    ),
    case(
        "traces/set-tag-missing-key",
        traced(41),
        {"method": "PATCH", "path": V3 + "traces/${trace}/tags", "json": {}, "expect": 400},
    ),
    case(
        "traces/delete-unknown-tag",
        traced(42),
        {
            "method": "DELETE",
            "path": V3 + "traces/${trace}/tags",
            "json": {"key": "zz"},
            "expect": 404,
        },
    ),
    case(
        "traces/delete-by-id",
        traced(43),
        post("traces/delete-traces", {"experiment_id": "${exp}", "request_ids": ["${trace}"]}),
        search(),
    ),
    case(
        "traces/delete-by-time",
        traced(44),
        post(
            "traces/delete-traces",
            {"experiment_id": "${exp}", "max_timestamp_millis": 1700000000000},
        ),
        search(),
    ),
    case("traces/delete-missing-experiment", post("traces/delete-traces", {}, expect=400)),
    case(
        "traces/delete-missing-selector",
        create_experiment(),
        post("traces/delete-traces", {"experiment_id": "${exp}"}, expect=400),
    ),
    case("traces/link-missing-ids", post("traces/link-to-run", {}, expect=400)),
    case(
        "traces/assessment-lifecycle",
        traced(45),
        post(
            "traces/${trace}/assessments",
            {
                "assessment": {
                    "assessment_name": "correct",
                    "trace_id": "${trace}",
                    "source": {"source_type": "HUMAN", "source_id": "alice"},
                    "create_time": REQUEST_TIME,
                    "last_update_time": REQUEST_TIME,
                    "feedback": {"value": True},
                }
            },
            prefix=V3,
            capture={"a": "assessment.assessment_id"},
        ),
        get("traces/${trace}/assessments/${a}", prefix=V3),
        trace_info(),
        {"method": "DELETE", "path": V3 + "traces/${trace}/assessments/${a}"},
        trace_info(),
    ),
    case(
        "traces/assessment-get-unknown",
        traced(46),
        get("traces/${trace}/assessments/a-nope", prefix=V3, expect=404),
    ),
    case(
        "traces/assessment-missing",
        traced(47),
        post("traces/${trace}/assessments", {}, prefix=V3, expect=400),
    ),
    case(
        "traces/assessment-no-kind",
        traced(48),
        post(
            "traces/${trace}/assessments",
            {"assessment": {"assessment_name": "x"}},
            prefix=V3,
            expect=400,
        ),
    ),
]

_SPANS: list[Case] = [
    # span.attributes.<key>: MLflow matches a pattern around "<key>" in the span's JSON text
    case(
        "traces/search-span-attributes",
        traced(90),
        search({"filter": "span.attributes.n LIKE '%7%'"}),
        search({"filter": "span.attributes.n LIKE '%8%'"}),
        search({"filter": "span.attributes.`mlflow.spanType` ILIKE '%chain%'"}),
        search({"filter": "span.attributes.mlflow.spanOutputs RLIKE 'o.'"}),
        search({"filter": "span.attributes.mlflow.spanOutputs RLIKE '^ok$'"}),
        search({"filter": "span.attributes.n = '7'"}),
        search({"filter": "span.attributes.n != '7'"}),
    ),
    case(
        "traces/search-span-same-span",
        traced(91),
        search({"filter": "span.name = 'child' AND span.attributes.n LIKE '%7%'"}),
        search({"filter": "span.name = 'root' AND span.attributes.n LIKE '%7%'"}),
        search({"filter": "span.name = 'root' AND span.type = 'CHAIN'"}),
        search({"filter": "span.name = 'child' AND span.type = 'CHAIN'"}),
    ),
    case(
        "traces/search-span-variants",
        traced(92),
        search({"filter": "span.name ILIKE 'ROO%'"}),
        search({"filter": "span.type IN ('LLM', 'CHAIN')"}),
        search({"filter": "span.name NOT IN ('root', 'child')"}),
        search({"filter": "span.status = 'OK'"}),
        search({"filter": "span.name RLIKE '^ch'"}),
    ),
    case(
        "traces/search-text",
        traced(93),
        search({"filter": "trace.text ILIKE '%OK%'"}),
        search({"filter": "trace.text LIKE '%nothing-like-this%'"}),
        search({"filter": "span.content LIKE '%child%'"}),
        search({"filter": "attributes.text LIKE '%root%' AND tags.team = 'search'"}),
    ),
    case(
        "traces/search-text-paging",
        create_experiment(),
        otlp(_otlp_body(_hex(94))),
        otlp(_otlp_body(_hex(95))),
        otlp(_otlp_body(_hex(96))),
        search(
            {
                "filter": "trace.text LIKE '%child%'",
                "max_results": 2,
                "order_by": ["request_id ASC"],
            },
            capture={"token": "next_page_token"},
        ),
        search(
            {
                "filter": "trace.text LIKE '%child%'",
                "max_results": 2,
                "order_by": ["request_id ASC"],
                "page_token": "${token}",
            }
        ),
    ),
    case(
        "traces/search-text-bad-comparator",
        create_experiment(),
        search(
            {"filter": "trace.text = 'x'"},
            expect=400,
            message_prefix="span.content comparator '=' not one of '{",
        ),
    ),
    case(
        "traces/search-span-attribute-bad-comparator",
        create_experiment(),
        search(
            {"filter": "span.attributes.n > 'a'"},
            expect=400,
            message_prefix="span.attributes.n comparator '>' not one of '{",
        ),
    ),
    case(
        "traces/search-span-attribute-empty",
        create_experiment(),
        search({"filter": "span.attributes. LIKE 'a'"}, expect=400),
    ),
    case(
        "traces/search-span-bad-key",
        create_experiment(),
        search({"filter": "span.bogus = 'a'"}, expect=400),
    ),
]

_PROMPTS: list[Case] = [
    case(
        "traces/link-prompts",
        traced(97),
        post(
            "traces/link-prompts",
            {
                "trace_id": "${trace}",
                "prompt_versions": [{"name": "qa", "version": "1"}, {"name": "qa", "version": "2"}],
            },
        ),
        post(
            "traces/link-prompts",
            {"trace_id": "${trace}", "prompt_versions": [{"name": "qa", "version": "1"}]},
        ),
        search({"filter": "prompt = 'qa/2'"}),
        search({"filter": "prompt = 'qa/3'"}),
        trace_info(),
    ),
    case(
        "traces/link-prompts-unknown-trace",
        post(
            "traces/link-prompts",
            {"trace_id": "tr-nope", "prompt_versions": [{"name": "qa", "version": "1"}]},
            expect=404,
        ),
    ),
    case(
        "traces/link-prompts-none",
        post("traces/link-prompts", {"trace_id": "tr-nope", "prompt_versions": []}),
    ),
    case(
        "traces/link-prompts-missing-trace-id",
        post("traces/link-prompts", {"prompt_versions": []}, expect=400),
    ),
    case(
        "traces/link-prompts-missing-versions",
        post("traces/link-prompts", {"trace_id": "tr-x"}, expect=400),
    ),
    case(
        "traces/link-prompts-versions-not-a-list",
        post("traces/link-prompts", {"trace_id": "tr-x", "prompt_versions": "p"}, expect=400),
    ),
    case(
        "traces/search-prompt-bad-value",
        create_experiment(),
        search({"filter": "prompt = 'qa'"}, expect=400),
    ),
    case(
        "traces/search-prompt-bad-comparator",
        create_experiment(),
        search({"filter": "prompt LIKE 'qa/1'"}, expect=400),
    ),
]

CASES = [*_WRITES, *_READS, *_SEARCH, *_WRITES_API, *_SPANS, *_PROMPTS]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
