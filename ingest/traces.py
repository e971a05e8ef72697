"""Trace write handlers: OTLP span export and StartTraceV3, answered after Kafka's ack.

Every check runs before anything is produced: a refused request leaves no record behind.
An export becomes one record per partition its traces map to, all produced at once and
acknowledged together (``schemas/trace_wire.py``); the writer merges spans and trace info in
whatever order they arrive.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import otlp, trace_rules
from ingest.deps import Deps, deps_key
from schemas import trace_wire
from schemas.mlflow_errors import does_not_exist
from schemas.protojson import parse_json_body
from schemas.trace_json import (
    ARTIFACT_LOCATION_TAG,
    INFO_FINALIZED_KEY,
    SPANS_IN_TRACKING_STORE,
    SPANS_LOCATION_TAG,
    TraceInfo,
    artifact_location,
    trace_info_json,
)
from sluice import metrics
from sluice.http import BodyNotDecodable, json_response, read_body

EXPERIMENT_HEADER = "x-mlflow-experiment-id"
RUN_HEADER = "x-mlflow-run-id"
_EMPTY_EXPORT_RESPONSE = ExportTraceServiceResponse().SerializeToString()
_LINK_RUN = (
    "INSERT INTO trace_run_links (trace_id, run_id)"
    " SELECT t, $2 FROM unnest($1::text[]) AS t ON CONFLICT DO NOTHING"
)


def _otlp_error(err: otlp.OtlpError) -> web.Response:
    return json_response({"detail": err.detail}, status=err.status)


async def export_otlp_traces(request: web.Request) -> web.Response:
    """``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON, optionally gzip/deflate)."""
    deps = request.app[deps_key]
    experiment = request.headers.get(EXPERIMENT_HEADER)
    if experiment is None:  # FastAPI's answer for a missing required header, as MLflow's
        missing = {"type": "missing", "loc": ["header", EXPERIMENT_HEADER], "msg": "Field required"}
        return json_response({"detail": [{**missing, "input": None}]}, status=422)
    try:
        media = otlp.media_type(request.headers.get("Content-Type"))
        body = await _read(request, deps.max_body_bytes)
        export = otlp.parse(body, media)
        envelope = otlp.Envelope(
            _experiment_number(experiment), uuid.uuid4().hex, int(time.time() * 1000)
        )
        traces = otlp.to_traces(export)
        if traces:
            found = await deps.experiments.require(envelope.experiment_id, active=False)
            records = otlp.to_records(
                traces, envelope, found.artifact_location, deps.trace_producer.partitions
            )
            await _produce(deps, records)
    except otlp.OtlpError as err:
        return _otlp_error(err)
    roots = sorted(trace_id for trace_id, trace in traces.items() if trace.root is not None)
    run_id = request.headers.get(RUN_HEADER)
    if run_id and roots:
        await deps.pool.execute(_LINK_RUN, roots, run_id)
    return web.Response(body=_EMPTY_EXPORT_RESPONSE, content_type="application/x-protobuf")


async def _read(request: web.Request, max_bytes: int) -> bytes:
    """The decompressed body. aiohttp itself decodes gzip, deflate (and br/zstd when their
    libraries are installed) while reading, bounded by the app's client_max_size; only other
    encodings reach ``otlp.decompress`` (which refuses them, as MLflow does)."""
    encoding = (request.headers.get("Content-Encoding") or "").lower()
    try:
        raw = await read_body(request, max_bytes)
    except BodyNotDecodable:
        raise otlp.OtlpError(400, f"Failed to decompress {encoding} payload") from None
    except web.HTTPRequestEntityTooLarge:
        raise otlp.OtlpError(413, f"Decompressed payload exceeds {max_bytes} bytes") from None
    return otlp.decompress(raw, None if encoding in _DECODED_BY_AIOHTTP else encoding, max_bytes)


_DECODED_BY_AIOHTTP = frozenset({"gzip", "deflate", "br", "zstd"})


def _experiment_number(header: str) -> int:
    if not (header.isascii() and header.isdigit()) or len(header) > 18:
        raise does_not_exist(f"No Experiment with id={header} exists")
    return int(header)


async def _produce(deps: Deps, records: list[tuple[str, trace_wire.SpanRecord]]) -> None:
    await deps.trace_producer.send_values([(key, trace_wire.encode(r)) for key, r in records])
    metrics.ingest_spans_total.inc(sum(trace_wire.span_count(r) for _, r in records))


async def start_trace_v3(request: web.Request) -> web.Response:
    """``POST /api/3.0/mlflow/traces``: the client's final trace info, after the root span."""
    deps = request.app[deps_key]
    raw = await read_body(request, deps.max_body_bytes)
    doc = parse_json_body(raw, request.headers.get("Content-Type"), request.method)
    call = trace_rules.validate_start_trace(doc)
    experiment = await deps.experiments.require(call.experiment_id, active=True)
    tags = {
        **call.tags,
        ARTIFACT_LOCATION_TAG: artifact_location(experiment.artifact_location, call.trace_id),
        # Spans reach Sluice through OTLP, so the client need not upload a traces.json artifact
        # and readers fetch spans from the server (MLflow sets this once spans were logged).
        SPANS_LOCATION_TAG: SPANS_IN_TRACKING_STORE,
    }
    metadata = {**call.metadata, INFO_FINALIZED_KEY: "true"}
    record = trace_wire.TraceStart(
        v=trace_wire.VERSION,
        trace_id=call.trace_id,
        experiment_id=call.experiment_id,
        event_id=uuid.uuid4().hex,
        received_at_ms=int(time.time() * 1000),
        request_time_ms=call.request_time_ms,
        execution_ms=call.execution_ms,
        state=call.state,  # type: ignore[arg-type]
        request_preview=call.request_preview,
        response_preview=call.response_preview,
        client_request_id=call.client_request_id,
        tags=tags,
        metadata=metadata,
    )
    await deps.trace_producer.send_values([(call.trace_id, trace_wire.encode(record))])
    info = TraceInfo(
        trace_id=call.trace_id,
        experiment_id=call.experiment_id,
        request_time_ms=call.request_time_ms,
        execution_ms=call.execution_ms,
        state=call.state,
        request_preview=call.request_preview,
        response_preview=call.response_preview,
        client_request_id=call.client_request_id,
        tags=tags,
        metadata=metadata,
    )
    return json_response({"trace": {"trace_info": trace_info_json(info)}})
