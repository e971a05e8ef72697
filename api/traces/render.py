"""Stored spans (OTLP Span messages) and trace rows into MLflow's JSON forms (pure).

Two forms: GetTrace/BatchGetTraces return spans as the OTLP message in protobuf's JSON mapping
(ids base64, enums by name) with int64 fields as numbers, as MLflow's ``message_to_json``
writes them; the ``get-trace-artifact`` form is MLflow's span dict (``Span.to_dict``: the
``traces.json`` artifact), whose attribute values are JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from schemas.span_dict import span_dict
from schemas.trace_json import TraceInfo, trace_info_json

__all__ = ["span_dict", "span_proto_json", "trace_info"]  # span_dict: shared with export

# Fields protobuf's JSON mapping writes as strings (64-bit) that MLflow writes as numbers.
_INT64_FIELDS: Final = frozenset(
    {"start_time_unix_nano", "end_time_unix_nano", "time_unix_nano", "int_value"}
)


def span_proto_json(proto: bytes) -> dict[str, Any]:
    """One span as GetTrace returns it."""
    span = Span.FromString(proto)
    doc = json_format.MessageToDict(span, preserving_proto_field_name=True)
    return _numbers(doc)  # type: ignore[no-any-return]


def _numbers(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: int(v) if k in _INT64_FIELDS and isinstance(v, str) else _numbers(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_numbers(v) for v in node]
    return node


def trace_info(row: Mapping[str, Any], assessments: list[dict[str, Any]]) -> dict[str, Any]:
    """A trace_info row (plus its assessments) as MLflow's TraceInfo JSON."""
    return trace_info_json(
        TraceInfo(
            trace_id=row["trace_id"],
            experiment_id=row["experiment_id"],
            request_time_ms=row["request_time_ms"],
            execution_ms=row["execution_ms"],
            state=row["state"],
            request_preview=row["request_preview"],
            response_preview=row["response_preview"],
            client_request_id=row["client_request_id"],
            tags=_json_map(row["tags"]),
            metadata=_json_map(row["metadata"]),
            assessments=tuple(assessments),
        )
    )


def _json_map(value: Any) -> dict[str, str]:
    if isinstance(value, str | bytes):
        loaded: dict[str, str] = orjson.loads(value)
        return loaded
    return dict(value)
