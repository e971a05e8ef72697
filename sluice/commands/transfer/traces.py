"""Pure: MLflow's trace rows <-> Sluice's (``schemas/sql/0009_traces.sql``).

MLflow keeps a trace in ``trace_info`` (a few tags and metadata keys promoted to columns:
the trace name, the session, token usage and cost), ``trace_tags``,
``trace_request_metadata``, ``spans`` (each span's dict as JSON text), ``assessments`` (one
column per field) and ``entity_associations`` (trace -> run links). Sluice keeps tags and
metadata as jsonb on ``trace_info``, each span as its OTLP message, each assessment as the
Assessment message's JSON. The conversions here rebuild, in both directions, what MLflow's
store reads back from its rows, so a client sees the same trace on both servers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

from schemas.span_dict import span_dict, span_proto
from schemas.trace_json import parse_timestamp_ms, timestamp_json

Row = tuple[Any, ...]

TRACE_NAME_TAG: Final = "mlflow.traceName"
SESSION_KEY: Final = "mlflow.trace.session"
TOKEN_USAGE_KEY: Final = "mlflow.trace.tokenUsage"
COST_KEY: Final = "mlflow.trace.cost"
PROMOTED_METADATA: Final = frozenset({SESSION_KEY, TOKEN_USAGE_KEY, COST_KEY})
# MLflow's trace_info columns holding the token usage and cost JSON, by JSON key (in its order).
TOKEN_COLUMNS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr",
)
COST_COLUMNS: Final = ("input_cost", "output_cost", "total_cost")
# MLflow 2.x wrote the trace status by TraceStatus name.
_STATES: Final = {"UNSPECIFIED": "STATE_UNSPECIFIED"}
ASSESSMENT_TYPES: Final = ("feedback", "expectation", "issue")
_JSON_FORMAT: Final = "JSON_FORMAT"
SOURCE_RUN_KEY: Final = "mlflow.assessment.sourceRunId"


def _json_map(text: str | None) -> dict[str, str]:
    """A JSON object of key -> value text (NULL values, which MLflow allows, as '')."""
    return {k: "" if v is None else str(v) for k, v in json.loads(text or "{}").items()}


# -- import: MLflow -> Sluice ------------------------------------------------------------------


def trace_info_row(row: Row) -> Row:
    """(request_id, experiment_id, timestamp_ms, execution_ms, status, request_preview,
    response_preview, client_request_id, span_start_ms, span_end_ms, tags JSON, metadata JSON,
    trace_name, session_id, *TOKEN_COLUMNS, *COST_COLUMNS) -> a Sluice trace_info row."""
    (trace_id, exp, ts, duration, status, req, resp, client_id, first, last, tags, meta) = row[:12]
    trace_name, session = row[12:14]
    tokens = dict(zip(TOKEN_COLUMNS, row[14 : 14 + len(TOKEN_COLUMNS)], strict=True))
    costs = dict(zip(COST_COLUMNS, row[14 + len(TOKEN_COLUMNS) :], strict=True))
    tag_map = {k: v for k, v in _json_map(tags).items() if k != TRACE_NAME_TAG}
    if trace_name is not None:
        tag_map[TRACE_NAME_TAG] = trace_name
    metadata = {k: v for k, v in _json_map(meta).items() if k not in PROMOTED_METADATA}
    if session is not None:
        metadata[SESSION_KEY] = session
    usage = {k: int(v) for k, v in tokens.items() if v is not None}
    if usage:
        metadata[TOKEN_USAGE_KEY] = json.dumps(usage)
    cost = {k: float(v) for k, v in costs.items() if v is not None}
    if cost:
        metadata[COST_KEY] = json.dumps(cost)
    state = _STATES.get(status, status)
    return (
        *(trace_id, exp, ts, duration, state, req, resp, client_id, True, first, last),
        json.dumps(tag_map),
        json.dumps(metadata),
    )


def span_row(row: Row) -> Row:
    """(trace_id, span_id, parent_span_id, name, type, status, start_ns, end_ns, content) ->
    a Sluice trace_spans row: the content (MLflow's span dict) becomes the OTLP message."""
    *columns, content = row
    return (*columns, span_proto(json.loads(content)))


def assessment_row(row: Row) -> Row:
    """MLflow's assessment columns (``ASSESSMENT_COLUMNS`` order) -> (trace_id, assessment_id,
    created_ms, doc JSON): the Assessment message as MLflow's store reads it back."""
    a = dict(zip(ASSESSMENT_COLUMNS, row, strict=True))
    source = {"source_type": a["source_type"]}
    if a["source_id"] is not None:
        source["source_id"] = a["source_id"]
    doc: dict[str, Any] = {
        "assessment_id": a["assessment_id"],
        "assessment_name": a["name"],
        "trace_id": a["trace_id"],
        "source": source,
        "create_time": timestamp_json(a["created_timestamp"]),
        "last_update_time": timestamp_json(a["last_updated_timestamp"]),
    }
    value = json.loads(a["value"])
    kind = a["assessment_type"]
    if kind == "feedback":
        doc["feedback"] = {"value": value}
        if a["error"] is not None:
            doc["feedback"]["error"] = json.loads(a["error"])
    elif kind == "expectation":
        doc["expectation"] = (
            {"value": value}
            if value is None or isinstance(value, int | float | str)
            else {"serialized_value": {"serialization_format": _JSON_FORMAT, "value": a["value"]}}
        )
    else:
        doc["issue"] = value
    for field in ("span_id", "rationale", "overrides"):
        if a[field]:
            doc[field] = a[field]
    if a["assessment_metadata"]:
        doc["metadata"] = {k: str(v) for k, v in json.loads(a["assessment_metadata"]).items()}
    doc["valid"] = bool(a["valid"])
    return (a["trace_id"], a["assessment_id"], a["created_timestamp"], json.dumps(doc))


ASSESSMENT_COLUMNS: Final = (
    "assessment_id",
    "trace_id",
    "name",
    "assessment_type",
    "value",
    "error",
    "created_timestamp",
    "last_updated_timestamp",
    "source_type",
    "source_id",
    "span_id",
    "rationale",
    "overrides",
    "valid",
    "assessment_metadata",
)


# -- export: Sluice -> MLflow ------------------------------------------------------------------


def mlflow_trace_info(row: Row) -> Row:
    """(trace_id, experiment_id, request_time_ms, execution_ms, state, client_request_id,
    request_preview, response_preview, tags, metadata) -> MLflow's trace_info row
    (``MLFLOW_TRACE_INFO_COLUMNS``): the promoted tag and metadata keys become columns."""
    *plain, tags, metadata = row
    meta = _as_map(metadata)
    usage = _json_object(meta.get(TOKEN_USAGE_KEY))
    cost = _json_object(meta.get(COST_KEY))
    return (
        *plain,
        _as_map(tags).get(TRACE_NAME_TAG),
        meta.get(SESSION_KEY),
        *(_int_or_none(usage.get(c)) for c in TOKEN_COLUMNS),
        *(_float_or_none(cost.get(c)) for c in COST_COLUMNS),
    )


MLFLOW_TRACE_INFO_COLUMNS: Final = (
    "request_id",
    "experiment_id",
    "timestamp_ms",
    "execution_time_ms",
    "status",
    "client_request_id",
    "request_preview",
    "response_preview",
    "trace_name",
    "session_id",
    *TOKEN_COLUMNS,
    *COST_COLUMNS,
)


def span_content(row: Row) -> Row:
    """(trace_id, experiment_id, span_id, parent, name, type, status, start, end, proto) ->
    MLflow's spans row: the OTLP message becomes the span dict's JSON (``content``)."""
    *columns, proto = row
    return (*columns, json.dumps(span_dict(proto)))


def mlflow_assessment(row: Row) -> Row:
    """(doc, experiment_id, trace request time) -> MLflow's assessments row
    (``MLFLOW_ASSESSMENT_COLUMNS``)."""
    doc, experiment_id, trace_ms = row
    doc = _as_map(doc)
    kind = next((k for k in ASSESSMENT_TYPES if doc.get(k) is not None), "feedback")
    body = doc.get(kind) or {}
    if kind == "expectation" and "serialized_value" in body:
        value = json.loads(body["serialized_value"]["value"])
    elif kind == "issue":
        value = body
    else:
        value = body.get("value")
    error = body.get("error") if kind == "feedback" else None
    metadata = doc.get("metadata") or {}
    aggregate, numeric = _aggregate(value)
    source = doc.get("source") or {}
    return (
        doc["assessment_id"],
        doc["trace_id"],
        doc.get("assessment_name") or "",
        kind,
        json.dumps(value),
        json.dumps(error) if error else None,
        parse_timestamp_ms(doc["create_time"]),
        parse_timestamp_ms(doc.get("last_update_time") or doc["create_time"]),
        source.get("source_type") or "SOURCE_TYPE_UNSPECIFIED",
        source.get("source_id"),
        metadata.get(SOURCE_RUN_KEY),
        doc.get("span_id"),
        doc.get("rationale"),
        doc.get("overrides"),
        bool(doc.get("valid", True)),
        json.dumps(metadata) if metadata else None,
        experiment_id,
        trace_ms,
        aggregate,
        numeric,
    )


MLFLOW_ASSESSMENT_COLUMNS: Final = (
    "assessment_id",
    "trace_id",
    "name",
    "assessment_type",
    "value",
    "error",
    "created_timestamp",
    "last_updated_timestamp",
    "source_type",
    "source_id",
    "run_id",
    "span_id",
    "rationale",
    "overrides",
    "valid",
    "assessment_metadata",
    "experiment_id",
    "trace_timestamp_ms",
    "aggregate_value",
    "is_numeric_value",
)


def _aggregate(value: Any) -> tuple[float | None, bool]:
    """The numeric summary MLflow keeps beside an assessment value (its trace analytics)."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), False
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None, False
        return (number, True) if math.isfinite(number) else (None, False)
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return (1.0 if value.strip().lower() == "yes" else 0.0), False
    return None, False


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value) if isinstance(value, Mapping) else {}


def _json_object(text: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
