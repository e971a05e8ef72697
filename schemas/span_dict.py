"""MLflow's span dict (``Span.to_dict``: the ``traces.json`` artifact form, and the ``content``
column of MLflow's ``spans`` table) from and to the OTLP Span message Sluice stores (pure).

In the dict, ids are base64 of the OTLP bytes and span attribute values are JSON text; event
attributes are plain values. In the OTLP message every value is an AnyValue holding the decoded
value, as the MLflow client exports spans: a span read through the dict and written back as a
message is the message the client would have sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from schemas.otlp_values import any_value

_STATUS_NAMES: Final = {
    Status.STATUS_CODE_UNSET: "STATUS_CODE_UNSET",
    Status.STATUS_CODE_OK: "STATUS_CODE_OK",
    Status.STATUS_CODE_ERROR: "STATUS_CODE_ERROR",
}
_STATUS_CODES: Final = {name: code for code, name in _STATUS_NAMES.items()}
TRACE_ID_PREFIX: Final = "tr-"


def span_dict(proto: bytes) -> dict[str, Any]:
    """One span as MLflow's span dict (the traces.json artifact form)."""
    span = Span.FromString(proto)
    return {
        "trace_id": _b64(span.trace_id),
        "span_id": _b64(span.span_id),
        "parent_span_id": _b64(span.parent_span_id) if span.parent_span_id else None,
        "name": span.name,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano or None,
        "events": [
            {
                "name": event.name,
                "time_unix_nano": event.time_unix_nano,
                "attributes": {kv.key: any_value(kv.value) for kv in event.attributes},
            }
            for event in span.events
        ],
        "status": {"code": _STATUS_NAMES.get(span.status.code, "STATUS_CODE_UNSET"), "message": ""}
        | ({"message": span.status.message} if span.status.message else {}),
        "attributes": {kv.key: _dump(any_value(kv.value)) for kv in span.attributes},
        "links": [],
    }


def span_proto(doc: Mapping[str, Any]) -> bytes:
    """The OTLP Span message of one span dict; ValueError/KeyError when it is not one."""
    span = Span(
        trace_id=base64.b64decode(doc["trace_id"]),
        span_id=base64.b64decode(doc["span_id"]),
        name=doc.get("name") or "",
        start_time_unix_nano=int(doc["start_time_unix_nano"]),
    )
    if doc.get("parent_span_id"):
        span.parent_span_id = base64.b64decode(doc["parent_span_id"])
    if doc.get("end_time_unix_nano"):
        span.end_time_unix_nano = int(doc["end_time_unix_nano"])
    status = doc.get("status") or {}
    span.status.code = _STATUS_CODES.get(status.get("code", ""), Status.STATUS_CODE_UNSET)
    if status.get("message"):
        span.status.message = status["message"]
    for key, text in (doc.get("attributes") or {}).items():
        span.attributes.append(KeyValue(key=key, value=to_any_value(_load(text))))
    for event in doc.get("events") or []:
        span.events.add(
            name=event.get("name") or "",
            time_unix_nano=int(event.get("time_unix_nano") or 0),
            attributes=[
                KeyValue(key=k, value=to_any_value(v))
                for k, v in (event.get("attributes") or {}).items()
            ],
        )
    for link in doc.get("links") or []:
        span.links.add(
            trace_id=bytes.fromhex(str(link["trace_id"]).removeprefix(TRACE_ID_PREFIX)),
            span_id=bytes.fromhex(str(link["span_id"])),
            attributes=[
                KeyValue(key=k, value=to_any_value(v))
                for k, v in (link.get("attributes") or {}).items()
            ],
        )
    return span.SerializeToString()


def to_any_value(value: Any) -> AnyValue:
    """A Python value as the MLflow client puts it into an OTLP AnyValue (None: unset)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return AnyValue(int_value=value)
        return AnyValue(double_value=float(value))  # what json text of it means to a reader
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    out = AnyValue()
    if isinstance(value, list | tuple):
        out.array_value.SetInParent()  # an empty list is still a list
        out.array_value.values.extend(to_any_value(v) for v in value)
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        out.kvlist_value.values.extend(
            KeyValue(key=str(k), value=to_any_value(v)) for k, v in value.items()
        )
    else:
        out.string_value = str(value)
    return out


def _load(text: Any) -> Any:
    """A span attribute's JSON text as its value (text that is not JSON stays text)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _dump(value: Any) -> str:
    """JSON text as MLflow dumps attribute values (json.dumps: ", " and ": ", not ASCII-only)."""
    return json.dumps(value, ensure_ascii=False, default=str)
