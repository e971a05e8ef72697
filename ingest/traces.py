"""Trace write handlers: OTLP span export, StartTraceV3 and the MLflow 2.x clients' StartTrace /
EndTrace, answered after Kafka's ack.

Every check runs before anything is produced: a refused request leaves no record behind.
An export becomes one record per partition its traces map to, all produced at once and
acknowledged together (``schemas/trace_wire.py``); the writer merges spans and trace info in
whatever order they arrive.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import otlp, trace_rules
from ingest.deps import Deps, deps_key
from schemas import trace_wire
from schemas.access import Level
from schemas.mlflow_errors import does_not_exist, no_such_experiment
from schemas.protojson import invalid_value, parse_json_body
from schemas.trace_json import (
    ARTIFACT_LOCATION_TAG,
    INFO_FINALIZED_KEY,
    SPANS_IN_TRACKING_STORE,
    SPANS_LOCATION_TAG,
    TraceInfo,
    artifact_location,
    trace_info_json,
    trace_info_v2_json,
)
from sluice import metrics
from sluice.auth import require_experiment
from sluice.clock import now_ms
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
        envelope = otlp.Envelope(_experiment_number(experiment), uuid.uuid4().hex, now_ms())
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
        raise no_such_experiment(header)
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
        received_at_ms=now_ms(),
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


# -- MLflow 2.x clients: StartTrace / EndTrace ---------------------------------------------------


async def start_trace_v2(request: web.Request) -> web.Response:
    """``POST /api/2.0/mlflow/traces``: a new IN_PROGRESS trace whose request id the server
    makes (a random 32-hex id, as MLflow's)."""
    deps = request.app[deps_key]
    raw = await read_body(request, deps.max_body_bytes)
    doc = parse_json_body(raw, request.headers.get("Content-Type"), request.method)
    call = trace_rules.validate_start_trace_v2(doc)
    assert call.experiment_id is not None
    experiment_id = call.experiment_id
    experiment = await deps.experiments.require(experiment_id, active=True)
    trace_id = uuid.uuid4().hex
    location = artifact_location(experiment.artifact_location, trace_id)
    info = TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment_id,
        request_time_ms=call.timestamp_ms,
        execution_ms=None,
        state="IN_PROGRESS",
        tags={**call.tags, ARTIFACT_LOCATION_TAG: location},
        metadata=call.metadata,
    )
    await _produce_info(deps, info)
    return json_response({"trace_info": trace_info_v2_json(info)})


async def end_trace_v2(request: web.Request) -> web.Response:
    """``PATCH /api/2.0/mlflow/traces/{request_id}``: the end time and status of a started
    trace; its metadata and tags merge into the stored ones. The record carries only what this
    call sets (the writer merges), so a tag deleted meanwhile is not brought back; a retried
    call writes the same values again."""
    deps = request.app[deps_key]
    trace_id = request.match_info["request_id"]
    raw = await read_body(request, deps.max_body_bytes)
    doc = parse_json_body(raw, request.headers.get("Content-Type"), request.method)
    call = trace_rules.validate_end_trace_v2(doc)
    stored = await deps.stored_traces.get(trace_id) if _storable_id(trace_id) else None
    if stored is None:
        raise does_not_exist(f"Trace with ID '{trace_id}' not found.")
    # The route's access rule could not see a trace stored only now (sluice/auth.py).
    await require_experiment(request, stored.experiment_id, Level.EDIT)
    execution_ms = call.timestamp_ms - stored.request_time_ms
    if execution_ms < 0:  # MLflow stores a negative duration; a trace record cannot hold one
        raise invalid_value("timestamp_ms", call.timestamp_ms, "the trace ends before it started.")
    change = TraceInfo(
        trace_id=trace_id,
        experiment_id=stored.experiment_id,
        request_time_ms=stored.request_time_ms,
        execution_ms=execution_ms,
        state=call.state or "STATE_UNSPECIFIED",
        client_request_id=stored.client_request_id,  # a final info replaces it (writer)
        tags=call.tags,
        metadata=call.metadata,
    )
    await _produce_info(deps, change)
    merged = TraceInfo(
        trace_id=trace_id,
        experiment_id=stored.experiment_id,
        request_time_ms=stored.request_time_ms,
        execution_ms=execution_ms,
        state=change.state,
        tags={**stored.tags, **call.tags},
        metadata={**stored.metadata, **call.metadata},
    )
    return json_response({"trace_info": trace_info_v2_json(merged)})


def _storable_id(trace_id: str) -> bool:
    """Whether a trace could be stored under this id (schemas/trace_wire.py): others are
    unknown without a lookup."""
    return 0 < len(trace_id) <= trace_rules.MAX_TRACE_ID_CHARS and "/" not in trace_id


async def _produce_info(deps: Deps, info: TraceInfo) -> None:
    """A v2 start or end as a trace-info record: final, like StartTraceV3's, so the writer
    takes its time, duration and state; tags and metadata accumulate with the stored ones."""
    record = trace_wire.TraceStart(
        v=trace_wire.VERSION,
        trace_id=info.trace_id,
        experiment_id=info.experiment_id,
        event_id=uuid.uuid4().hex,
        received_at_ms=now_ms(),
        request_time_ms=info.request_time_ms,
        execution_ms=info.execution_ms,
        state=info.state,  # type: ignore[arg-type]
        request_preview=None,
        response_preview=None,
        client_request_id=info.client_request_id,
        tags=dict(info.tags),
        metadata=dict(info.metadata),
    )
    await deps.trace_producer.send_values([(info.trace_id, trace_wire.encode(record))])
