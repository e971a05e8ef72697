"""OTLP/HTTP trace export bodies for the trace workloads, built once and stamped per request.

A request is ``traces`` traces of ``spans_per_trace`` spans each (a root and its children), in
the shape the mlflow client exports: attribute values are JSON texts (``mlflow.spanType``,
``mlflow.spanInputs``/``Outputs``), the root carries a ``mlflow.traceTag.group`` tag naming its
position in the request (``g00``..``g99``: each group holds 1/``traces`` of all traces).

Serialising a 100-span protobuf per request would cost the load generator more CPU than some of
the servers it measures, so a ``Template`` is serialised once with marker bytes where the
per-request values go -- the 6 sequence bytes of every trace id and the fixed64 span times --
and ``body(seq, start_ns)`` replaces them (same lengths: the encoding stays valid). Trace id =
8 bytes of the phase's prefix + 6 bytes of the request's sequence number + 2 bytes of the
trace's index, so the verifier knows every acknowledged trace id from the acknowledged
sequence numbers."""

from __future__ import annotations

import json
import struct

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_SEQ_MARK = b"\xa5\x5a\xc3\x3c\x96\x69"
_START_MARK = 0x15E7_A5A5_C3C3_0F01
_END_MARK = 0x15E7_A5A5_C3C3_0F02
SPAN_DURATION_NS = 40_000_000
OTLP_PATH = "/v1/traces"


def _attr(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=json.dumps(value)))


def _tag(key: str, value: str) -> KeyValue:
    return KeyValue(key=f"mlflow.traceTag.{key}", value=AnyValue(string_value=value))


def _span(trace_id: bytes, index: int, with_tag: str | None) -> Span:
    root = index == 0
    span = Span(
        trace_id=trace_id,
        span_id=(index + 1).to_bytes(8, "big"),
        parent_span_id=b"" if root else (1).to_bytes(8, "big"),
        name="agent" if root else f"step-{index}",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=_START_MARK,
        end_time_unix_nano=_END_MARK,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    span.attributes.extend(
        [
            _attr("mlflow.spanType", "CHAIN" if root else "LLM"),
            _attr("mlflow.spanInputs", {"query": "What is the capital of France?", "step": index}),
            _attr("mlflow.spanOutputs", {"answer": "Paris", "tokens": 7}),
        ]
    )
    if with_tag is not None:
        span.attributes.append(_tag("group", with_tag))
    return span


class Template:
    def __init__(self, prefix: bytes, traces: int, spans_per_trace: int) -> None:
        if len(prefix) != 8 or traces > 100:
            raise ValueError("prefix is 8 bytes; at most 100 traces a request")
        self.prefix = prefix
        self.traces = traces
        self.spans = traces * spans_per_trace
        request = ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        for t in range(traces):
            trace_id = prefix + _SEQ_MARK + t.to_bytes(2, "big")
            for i in range(spans_per_trace):
                spans.append(_span(trace_id, i, f"g{t:02d}" if i == 0 else None))
        self._raw = request.SerializeToString()
        counts = (
            self._raw.count(_SEQ_MARK),
            self._raw.count(struct.pack("<Q", _START_MARK)),
            self._raw.count(struct.pack("<Q", _END_MARK)),
        )
        if counts != (self.spans, self.spans, self.spans):  # a marker also occurs elsewhere
            raise ValueError(f"ambiguous template markers: {counts}")

    def body(self, seq: int, start_ns: int) -> bytes:
        return (
            self._raw.replace(_SEQ_MARK, seq.to_bytes(6, "big"))
            .replace(struct.pack("<Q", _START_MARK), struct.pack("<Q", start_ns))
            .replace(struct.pack("<Q", _END_MARK), struct.pack("<Q", start_ns + SPAN_DURATION_NS))
        )

    def trace_ids(self, seq: int) -> list[str]:
        """MLflow's ids ("tr-" + 32 hex) of the traces in request ``seq``."""
        middle = self.prefix + seq.to_bytes(6, "big")
        return ["tr-" + (middle + t.to_bytes(2, "big")).hex() for t in range(self.traces)]


def headers(experiment_id: str) -> bytes:
    """Header lines of an export (benchmarks/rawhttp.py form)."""
    return (
        b"Content-Type: application/x-protobuf\r\n"
        + f"x-mlflow-experiment-id: {experiment_id}\r\n".encode()
    )


def search_body(experiment_id: str, filter_string: str | None, max_results: int) -> bytes:
    """SearchTracesV3 as the mlflow client sends it (``mlflow.search_traces``)."""
    doc: dict[str, object] = {
        "locations": [
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
        ],
        "max_results": max_results,
    }
    if filter_string:
        doc["filter"] = filter_string
    return json.dumps(doc).encode()
