"""Validation of StartTraceV3 (``POST /api/3.0/mlflow/traces``) and of the MLflow 2.x clients'
StartTrace / EndTrace (``POST /api/2.0/mlflow/traces``, ``PATCH .../traces/{request_id}``),
pure: document in, call out.

MLflow requires ``trace`` and then takes whatever protobuf parsing left: an unparsable
``request_time`` becomes 1970, a missing experiment a 500. Sluice refuses those with a 400
(the same policy as ``schemas/protojson.py``): a trace needs an id, an experiment and a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.fields import expect_object, get_enum, get_string, raw_value
from schemas.int_fields import get_int64
from schemas.mlflow_errors import invalid_parameter, missing_parameter
from schemas.mlflow_names import validate_experiment_id
from schemas.protojson import invalid_value, schema_error
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


# -- MLflow 2.x: StartTrace and EndTrace (deprecated in MLflow, still served) -----------------

# MLflow's TraceStatus enum: name -> number; each is stored as the v3 state of the same name.
V2_STATUSES: Final = {"TRACE_STATUS_UNSPECIFIED": 0, "OK": 1, "ERROR": 2, "IN_PROGRESS": 3}
_V2_TO_STATE: Final = {"TRACE_STATUS_UNSPECIFIED": "STATE_UNSPECIFIED"}
TRACE_NAME_TAG: Final = "mlflow.traceName"
MAX_TRACE_NAME_CHARS: Final = 4096  # MLflow's limit for a trace name (a tag value)


@dataclass(frozen=True, slots=True)
class TraceV2Call:
    """StartTrace (``experiment_id`` set) or EndTrace (``state`` set): times in ms."""

    experiment_id: int | None
    timestamp_ms: int
    state: str | None
    metadata: dict[str, str]
    tags: dict[str, str]


def validate_start_trace_v2(doc: Doc) -> TraceV2Call:
    """MLflow's schema: ``experiment_id`` a string holding an integer, ``timestamp_ms``
    int-like, and key/value lists whose entries name a key. MLflow crashes (a 500) on a
    missing experiment id: a 400 here."""
    return TraceV2Call(
        experiment_id=validate_experiment_id(get_string(doc, "experiment_id") or ""),
        timestamp_ms=_v2_timestamp(doc),
        state=None,
        metadata=_key_values(doc, "request_metadata"),
        tags=_trace_name_checked(_key_values(doc, "tags")),
    )


def validate_end_trace_v2(doc: Doc) -> TraceV2Call:
    """An end needs a status: MLflow crashes (a 500) on an unset or unknown one, whose
    TRACE_STATUS_UNSPECIFIED it cannot store."""
    status = get_enum(doc, "status", V2_STATUSES, default="TRACE_STATUS_UNSPECIFIED")
    if status == "TRACE_STATUS_UNSPECIFIED":
        raw = raw_value(doc, "status", required=False)
        raise missing_parameter("status") if raw is None else invalid_value("status", raw)
    return TraceV2Call(
        experiment_id=None,
        timestamp_ms=_v2_timestamp(doc),
        state=_V2_TO_STATE.get(status, status),
        metadata=_key_values(doc, "request_metadata"),
        tags=_trace_name_checked(_key_values(doc, "tags")),
    )


def _v2_timestamp(doc: Doc) -> int:
    value = get_int64(doc, "timestamp_ms", default=0)
    if value < 0:  # a stored trace time is never negative (schemas/trace_wire.py)
        raise invalid_value("timestamp_ms", value)
    return value


def _key_values(doc: Doc, name: str) -> dict[str, str]:
    """``[{"key": k, "value": v}, ...]`` as a dict, a later key winning (MLflow builds a dict
    too). MLflow's ``_assert_map_key_present``: a list whose entries each have a non-empty key;
    a missing value is protobuf's "". An entry that is no object crashes MLflow: a 400 here."""
    raw = raw_value(doc, name, required=False)
    if raw is None:
        return {}
    if not isinstance(raw, list) or any(
        not isinstance(e, dict) or e.get("key") in (None, "") for e in raw
    ):
        raise schema_error(name, raw, f" Hint: Value was of type '{type(raw).__name__}'.")
    out: dict[str, str] = {}
    for i, entry in enumerate(raw):
        key = get_string(entry, "key", path=f"{name}[{i}].key", required=True)
        value = get_string(entry, "value", path=f"{name}[{i}].value") or ""
        if "\x00" in key or "\x00" in value:
            raise invalid_parameter(f"Invalid value for '{name}[{i}]': NUL is not allowed.")
        out[key] = value
    return out


def _trace_name_checked(tags: dict[str, str]) -> dict[str, str]:
    name = tags.get(TRACE_NAME_TAG)
    if name is not None and len(name) > MAX_TRACE_NAME_CHARS:
        raise invalid_parameter(
            f"'Trace name' exceeds the maximum length of {MAX_TRACE_NAME_CHARS} characters"
        )
    return tags
