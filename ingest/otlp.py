"""OTLP/HTTP trace export (``POST /v1/traces``), pure: request bytes in, trace records out.

Parsing uses the OpenTelemetry protobuf definitions (``opentelemetry-proto``). Errors copy what
MLflow 3.17.2's FastAPI endpoint answers (``OtlpError``: a status and a ``detail``, not MLflow's
error envelope), checked in its order: content type, decompression, parse, "no spans", then each
span. Decompression is bounded: a small gzip body cannot expand past the body limit.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from schemas.otlp_values import any_value
from schemas.trace_wire import SpanBatch, TraceRoot, WireSpan

# A Kafka record stays below the broker's 1 MB message limit: a trace's spans are split over
# records of at most this many proto bytes, and a single larger span is refused.
RECORD_SPAN_BYTES = 512 * 1024
MAX_SPAN_BYTES = 900 * 1024
PREVIEW_MAX_CHARS = 1000  # MLflow's TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS
INT64_MAX = 2**63 - 1  # OTLP times are unsigned 64-bit; stored as PostgreSQL bigint
REQUEST_ID_ATTRIBUTE = "mlflow.traceRequestId"
_TAG_PREFIX = "mlflow.traceTag."
_MEDIA_TYPES = ("application/x-protobuf", "application/json")
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_STATUS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}


class OtlpError(Exception):
    """A refused export: MLflow's FastAPI answer ``{"detail": ...}`` with this status."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def media_type(content_type: str | None) -> str:
    """The accepted media type of the request, or OtlpError(400)."""
    media = content_type.split(";")[0].strip() if content_type else None
    if media not in _MEDIA_TYPES:
        raise OtlpError(
            400,
            f"Invalid Content-Type: {content_type}. "
            "Expected: application/x-protobuf or application/json",
        )
    return media


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body after Content-Encoding (gzip, deflate, raw deflate), at most ``max_bytes``."""
    if not encoding:
        return body
    encoding = encoding.lower()
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, "gzip", max_bytes)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, "deflate", max_bytes)
        except OtlpError as exc:
            if exc.status == 413:
                raise
            return _inflate(body, -zlib.MAX_WBITS, "deflate", max_bytes)
    raise OtlpError(400, f"Unsupported Content-Encoding: {encoding}")


def _inflate(body: bytes, wbits: int, name: str, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise OtlpError(400, f"Failed to decompress {name} payload") from None
    if len(out) > max_bytes:
        raise OtlpError(413, f"Decompressed payload exceeds {max_bytes} bytes")
    if not inflater.eof:
        raise OtlpError(400, f"Failed to decompress {name} payload")
    return out


def parse(body: bytes, media: str) -> ExportTraceServiceRequest:
    """The export request; OtlpError(400) when it is not OTLP or holds no resource spans."""
    request = ExportTraceServiceRequest()
    try:
        if media == "application/json":
            json_format.Parse(_hex_ids_to_base64(body), request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, ValueError, TypeError):
        raise OtlpError(400, "Invalid OpenTelemetry format") from None
    if not request.resource_spans:
        raise OtlpError(400, "Invalid OpenTelemetry format - no spans found")
    return request


def _hex_ids_to_base64(body: bytes) -> bytes:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping reads bytes as base64."""
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    for resource_spans in _list(doc.get("resourceSpans")):
        for scope_spans in _list(_dict(resource_spans).get("scopeSpans")):
            for item in _list(_dict(scope_spans).get("spans")):
                span = _dict(item)
                for name in _HEX_ID_FIELDS:
                    if value := span.get(name):
                        if not isinstance(value, str):
                            raise ValueError(f"{name} is not a string")
                        try:
                            span[name] = base64.b64encode(bytes.fromhex(value)).decode()
                        except ValueError:
                            raise ValueError(f"{name} is not hex") from None
    return orjson.dumps(doc)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


# -- spans -> records ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Trace:
    spans: list[WireSpan] = field(default_factory=list)
    root: TraceRoot | None = None
    tags: dict[str, str] = field(default_factory=dict)


def to_batches(
    request: ExportTraceServiceRequest, experiment_id: int, event_id: str, received_at_ms: int
) -> list[SpanBatch]:
    """One record per trace of the request, spans in request order; OtlpError(422) for a span
    MLflow cannot convert (missing or malformed ids)."""
    traces: dict[str, _Trace] = {}
    for resource_spans in request.resource_spans:
        resource_tags = _resource_tags(resource_spans.resource.attributes)
        for span in _spans(resource_spans):
            trace_id, wire_span, root = convert_span(span)
            trace = traces.setdefault(trace_id, _Trace())
            trace.spans.append(wire_span)
            trace.tags.update(resource_tags)
            if root is not None:
                trace.root = root
    pieces = [
        (trace_id, trace, i, piece)
        for trace_id, trace in traces.items()
        for i, piece in enumerate(_pieces(trace.spans))
    ]
    return [
        SpanBatch(
            v=1,
            trace_id=trace_id,
            experiment_id=experiment_id,
            event_id=f"{event_id}-{n}",
            received_at_ms=received_at_ms,
            spans=piece,
            root=trace.root if i == 0 else None,
            tags=trace.tags if i == 0 else {},
        )
        for n, (trace_id, trace, i, piece) in enumerate(pieces)
    ]


def _pieces(spans: list[WireSpan]) -> Iterator[list[WireSpan]]:
    """``spans`` in runs of at most RECORD_SPAN_BYTES of protos (at least one span each)."""
    piece: list[WireSpan] = []
    size = 0
    for span in spans:
        if piece and size + len(span.proto) > RECORD_SPAN_BYTES:
            yield piece
            piece, size = [], 0
        piece.append(span)
        size += len(span.proto)
    if piece:
        yield piece


def _spans(resource_spans: Any) -> Iterator[Span]:
    for scope_spans in resource_spans.scope_spans:
        yield from scope_spans.spans


def convert_span(span: Span) -> tuple[str, WireSpan, TraceRoot | None]:
    """(MLflow trace id, wire span, root summary or None) of one OTLP span.

    The trace id is derived from the OTLP trace id as MLflow's server does ("tr-" + 32 hex),
    never taken from the client's ``mlflow.traceRequestId`` attribute, which is overwritten."""
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or len(span.parent_span_id) not in (0, 8):
        raise OtlpError(422, "Cannot convert OpenTelemetry span to MLflow span")
    trace_id = "tr-" + span.trace_id.hex()
    attributes = _set_request_id(span, trace_id)
    if span.ByteSize() > MAX_SPAN_BYTES:
        raise OtlpError(413, f"A span of {span.ByteSize()} bytes exceeds {MAX_SPAN_BYTES} bytes")
    if span.start_time_unix_nano > INT64_MAX or span.end_time_unix_nano > INT64_MAX:
        raise OtlpError(400, "Span times must fit a signed 64-bit integer")
    parent = span.parent_span_id.hex() or None
    span_type = attributes.get("mlflow.spanType")
    wire_span = WireSpan(
        span_id=span.span_id.hex(),
        parent_span_id=parent,
        name=span.name,
        span_type=span_type if isinstance(span_type, str) else None,
        status=_STATUS.get(span.status.code, "UNSET"),  # type: ignore[arg-type]
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano or None,
        proto=span.SerializeToString(),
    )
    root = _root(attributes) if parent is None else None
    _storable(wire_span.name, wire_span.span_type, *(root.tags.items() if root else ()))
    if root is not None:
        _storable(root.request_preview, root.response_preview)
    return trace_id, wire_span, root


def _storable(*values: object) -> None:
    """Texts that become PostgreSQL text or jsonb must not hold NUL (neither can)."""
    for value in values:
        texts = value if isinstance(value, tuple) else (value,)
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise OtlpError(400, "Span names, types, tags and previews must not contain NUL")


def _set_request_id(span: Span, trace_id: str) -> dict[str, Any]:
    """Decoded attributes of ``span``, after pointing its request-id attribute at ``trace_id``."""
    attributes: dict[str, Any] = {}
    for kv in span.attributes:
        if kv.key == REQUEST_ID_ATTRIBUTE:  # kept in place, as MLflow's dict update does
            kv.value.CopyFrom(AnyValue(string_value=trace_id))
        attributes[kv.key] = any_value(kv.value)
    if REQUEST_ID_ATTRIBUTE not in attributes:
        request_id = KeyValue(key=REQUEST_ID_ATTRIBUTE, value=AnyValue(string_value=trace_id))
        span.attributes.append(request_id)
    attributes.pop(REQUEST_ID_ATTRIBUTE, None)
    return attributes


def _root(attributes: dict[str, Any]) -> TraceRoot:
    tags = {
        key[len(_TAG_PREFIX) :]: value if isinstance(value, str) else _dump(value)
        for key, value in attributes.items()
        if key.startswith(_TAG_PREFIX) and len(key) > len(_TAG_PREFIX)
    }
    return TraceRoot(
        request_preview=preview(attributes.get("mlflow.spanInputs")),
        response_preview=preview(attributes.get("mlflow.spanOutputs")),
        tags=tags,
    )


def _resource_tags(attributes: Any) -> dict[str, str]:
    """Resource attributes become trace tags, except the SDK's and MLflow's own (as MLflow)."""
    tags = {
        kv.key: value if isinstance(value := any_value(kv.value), str) else _dump(value)
        for kv in attributes
        if not kv.key.startswith(("telemetry.sdk.", "mlflow."))
    }
    _storable(*tags.items())
    return tags


def preview(value: Any) -> str | None:
    """The stored preview of a root span's inputs or outputs: its JSON, cut to 1000 chars."""
    if value is None:
        return None
    text = _dump(value)
    return text if len(text) <= PREVIEW_MAX_CHARS else text[: PREVIEW_MAX_CHARS - 3] + "..."


def _dump(value: Any) -> str:
    """JSON text as MLflow dumps attribute values (json.dumps: ", " and ": ", not ASCII-only)."""
    return json.dumps(value, ensure_ascii=False, default=str)
