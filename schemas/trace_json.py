"""MLflow's JSON form of a TraceInfo (v3), shared by ingest (StartTraceV3's answer) and the api.

Timestamps and durations are protobuf well-known types, so their JSON is RFC 3339 text
("2026-12-03T09:44:43.370Z") and seconds ("0.131s"), as MLflow's server writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

ARTIFACT_LOCATION_TAG: Final = "mlflow.artifactLocation"
SPANS_LOCATION_TAG: Final = "mlflow.trace.spansLocation"
SPANS_IN_TRACKING_STORE: Final = "TRACKING_STORE"
INFO_FINALIZED_KEY: Final = "mlflow.trace.infoFinalized"
SOURCE_RUN_KEY: Final = "mlflow.sourceRun"


@dataclass(frozen=True, slots=True)
class TraceInfo:
    trace_id: str
    experiment_id: int
    request_time_ms: int
    execution_ms: int | None
    state: str
    request_preview: str | None = None
    response_preview: str | None = None
    client_request_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    assessments: tuple[Mapping[str, Any], ...] = ()


def timestamp_json(ms: int) -> str:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts.ToJsonString()


def duration_json(ms: int) -> str:
    d = Duration()
    d.FromMilliseconds(ms)
    return d.ToJsonString()


def parse_timestamp_ms(text: str) -> int:
    """Milliseconds of an RFC 3339 timestamp; ValueError when it is not one."""
    ts = Timestamp()
    ts.FromJsonString(text)
    return ts.ToMilliseconds()


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a protobuf JSON duration ("1.5s"); ValueError when it is not one."""
    d = Duration()
    d.FromJsonString(text)
    return d.ToMilliseconds()


def artifact_location(experiment_artifact_location: str, trace_id: str) -> str:
    """Where MLflow puts a trace's artifacts: below the experiment's, in traces/<id>/artifacts."""
    return f"{experiment_artifact_location.rstrip('/')}/traces/{trace_id}/artifacts"


def trace_info_json(info: TraceInfo) -> dict[str, Any]:
    """The TraceInfo message as MLflow's server renders it (unset fields left out)."""
    doc: dict[str, Any] = {
        "trace_id": info.trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": str(info.experiment_id)},
        },
        "request_time": timestamp_json(info.request_time_ms),
    }
    if info.execution_ms is not None:
        doc["execution_duration"] = duration_json(info.execution_ms)
    doc["state"] = info.state
    if info.client_request_id:
        doc["client_request_id"] = info.client_request_id
    if info.metadata:
        doc["trace_metadata"] = dict(info.metadata)
    if info.tags:
        doc["tags"] = dict(info.tags)
    if info.request_preview is not None:
        doc["request_preview"] = info.request_preview
    if info.response_preview is not None:
        doc["response_preview"] = info.response_preview
    if info.assessments:
        doc["assessments"] = list(info.assessments)
    return doc


_V2_STATUS: Final = {"STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED"}


def trace_info_v2_json(info: TraceInfo) -> dict[str, Any]:
    """The MLflow 2.x TraceInfo as StartTrace / EndTrace answer it: an unset duration is 0 (as
    MLflow renders it), key/value lists sorted by key, left out when empty."""
    doc: dict[str, Any] = {
        "request_id": info.trace_id,
        "experiment_id": str(info.experiment_id),
        "timestamp_ms": info.request_time_ms,
        "execution_time_ms": info.execution_ms or 0,
    }
    doc["status"] = _V2_STATUS.get(info.state, info.state)
    for name, values in (("request_metadata", info.metadata), ("tags", info.tags)):
        if values:
            doc[name] = [{"key": k, "value": values[k]} for k in sorted(values)]
    return doc
