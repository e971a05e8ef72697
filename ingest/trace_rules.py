"""Validation of StartTraceV3 (``POST /api/3.0/mlflow/traces``), pure: document in, call out.

MLflow requires ``trace`` and then takes whatever protobuf parsing left: an unparsable
``request_time`` becomes 1970, a missing experiment a 500. Sluice refuses those with a 400
(the same policy as ``schemas/protojson.py``): a trace needs an id, an experiment and a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.fields import expect_object, get_string
from schemas.mlflow_errors import invalid_parameter, missing_parameter
from schemas.protojson import invalid_value
from schemas.trace_json import parse_duration_ms, parse_timestamp_ms

Doc = Mapping[str, Any]
STATES: Final = ("STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")
MAX_TRACE_ID_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class StartTrace:
    trace_id: str
    experiment_id: int
    request_time_ms: int
    execution_ms: int | None
    state: str
    request_preview: str | None
    response_preview: str | None
    client_request_id: str | None
    tags: dict[str, str]
    metadata: dict[str, str]


def validate_start_trace(doc: Doc) -> StartTrace:
    trace = doc.get("trace")
    if trace is None or trace == {}:
        raise missing_parameter("trace")
    info = expect_object(expect_object(trace, "trace").get("trace_info"), "trace.trace_info")
    trace_id = get_string(info, "trace_id", path="trace.trace_info.trace_id", required=True)
    if len(trace_id) > MAX_TRACE_ID_CHARS or "/" in trace_id:
        raise invalid_value("trace.trace_info.trace_id", trace_id)
    return StartTrace(
        trace_id=trace_id,
        experiment_id=_experiment_id(info),
        request_time_ms=_time(info, "request_time", parse_timestamp_ms, required=True) or 0,
        execution_ms=_time(info, "execution_duration", parse_duration_ms, required=False),
        state=_state(info),
        request_preview=get_string(
            info, "request_preview", path="trace.trace_info.request_preview"
        ),
        response_preview=get_string(
            info, "response_preview", path="trace.trace_info.response_preview"
        ),
        client_request_id=get_string(
            info, "client_request_id", path="trace.trace_info.client_request_id"
        ),
        tags=_string_map(info, "tags"),
        metadata=_string_map(info, "trace_metadata"),
    )


def _experiment_id(info: Doc) -> int:
    path = "trace.trace_info.trace_location.mlflow_experiment.experiment_id"
    location = info.get("trace_location")
    experiment = expect_object(location, "trace.trace_info.trace_location").get("mlflow_experiment")
    if experiment is None:
        raise missing_parameter(path)
    raw = get_string(expect_object(experiment, path), "experiment_id", path=path, required=True)
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise invalid_value(path, raw)
    return int(raw)


def _time(info: Doc, name: str, parse: Any, *, required: bool) -> int | None:
    path = f"trace.trace_info.{name}"
    text = get_string(info, name, path=path, required=required)
    if text is None:
        return None
    try:
        value = int(parse(text))
    except ValueError:
        raise invalid_value(path, text) from None
    if value < 0:
        raise invalid_value(path, text)
    return value


def _state(info: Doc) -> str:
    state = info.get("state", "STATE_UNSPECIFIED")
    if state not in STATES:
        raise invalid_value("trace.trace_info.state", state)
    return str(state)


def _string_map(info: Doc, name: str) -> dict[str, str]:
    path = f"trace.trace_info.{name}"
    raw = info.get(name)
    if raw is None:
        return {}
    values = expect_object(raw, path)
    for key, value in values.items():
        if not isinstance(value, str) or "\x00" in key or "\x00" in value:
            raise invalid_parameter(f"Invalid value for '{path}.{key}': expected a string.")
    return dict(values)
