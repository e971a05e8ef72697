"""The Kafka record contract between ingest (producer) and writer (consumer).

Topic ``sluice.metrics.v1``; key = run id (UTF-8), so one run's records share a partition and one
writer. Value = JSON object, version 1::

    {"v": 1, "type": "metrics", "run_id": "<32 hex>", "event_id": "<uuid hex>",
     "received_at_ms": 1732370000000,
     "metrics": [[key, value, timestamp_ms, step, is_nan], ...]}

A point is ``MetricPoint``'s fields in order. Version 2 is the same record whose points may
carry three more items, ``[..., is_nan, model_id, dataset_name, dataset_digest]`` (``ModelPoint``;
trailing items may be left out, null means absent): MLflow 3 metrics logged with a ``model_id``,
which are also the logged model's metrics. Ingest writes version 2 only for a record holding
such a point, so every other record stays readable by a version-1 writer; a version-1 writer
dead-letters a version-2 record instead of dropping its model fields unseen.

Values are already normalised as MLflow stores them: NaN is ``0.0`` with ``is_nan`` true and
±Infinity is ±1.7976931348623157e308, so the JSON never holds a non-finite number. Consumers
reject unknown versions (they go to the dead-letter topic), never guess.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

VERSION: Final = 1
MODEL_VERSION: Final = 2  # a record with points logged with a model_id
DOUBLE_MAX: Final = 1.7976931348623157e308
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Kafka record header carrying the id of the HTTP request that produced the record (for logs;
# not part of the value, so consumers that ignore it lose nothing).
REQUEST_ID_HEADER: Final = "request_id"

_Key = Annotated[str, msgspec.Meta(min_length=1)]
_Value = Annotated[float, msgspec.Meta(ge=-DOUBLE_MAX, le=DOUBLE_MAX)]
_Timestamp = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_Step = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class MetricPoint(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One point of a record, a JSON array on the wire in this field order.

    A slotted record msgspec builds and checks in C, as cheap as a tuple: a NamedTuple cost
    the writer's decode several times more (it stays tracked by the garbage collector)."""

    key: _Key
    value: _Value  # normalised: finite; NaN is 0.0 with is_nan
    timestamp: _Timestamp  # milliseconds since the epoch
    step: _Step
    is_nan: bool


class ModelPoint(MetricPoint, array_like=True, frozen=True, gc=False, forbid_unknown_fields=True):
    """A point of a version-2 record: a metric logged with a logged model (MLflow 3) and,
    optionally, the dataset it was evaluated on. A point without ``model_id`` is a plain one."""

    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


# What producers hand to ``encode``: MetricPoint's fields as a plain tuple, which orjson writes
# as the array (it cannot write a Struct, and msgspec's encoder spells exponents differently).
PointFields = tuple[str, float, int, int, bool]
# ModelPoint's fields: PointFields + (model_id, dataset_name, dataset_digest); version 2 only.
ModelPointFields = tuple[str, float, int, int, bool, str, str | None, str | None]


class InvalidRecord(Exception):
    """A record that no consumer can store; carries the reason for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MetricRecord:
    """A record as ``decode`` returns it."""

    run_id: str
    event_id: str
    received_at_ms: int
    metrics: list[MetricPoint]
    model_points: tuple[ModelPoint, ...] = ()  # the points that name a model (version 2)


def normalise_value(value: float) -> tuple[float, bool]:
    """MLflow's storage form of a metric value: (stored value, is_nan)."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (DOUBLE_MAX if value > 0 else -DOUBLE_MAX), False
    return value, False


def partition_for(run_id: str, partitions: int) -> int:
    """The partition of a run's records. Producers outside Sluice must use the same function."""
    return zlib.crc32(run_id.encode()) % partitions


def dlq_topic(topic: str) -> str:
    """Dead-letter topic of ``topic``: records no consumer could store, with a reason header."""
    return f"{topic}.dlq"


def encode(
    run_id: str,
    event_id: str,
    received_at_ms: int,
    points: Sequence[PointFields | ModelPointFields],
    *,
    models: bool = False,
) -> bytes:
    """The record value; ``models``: some point is a ModelPointFields (version 2)."""
    return orjson.dumps(
        {
            "v": MODEL_VERSION if models else VERSION,
            "type": "metrics",
            "run_id": run_id,
            "event_id": event_id,
            "received_at_ms": received_at_ms,
            "metrics": points,
        }
    )


class _Record(msgspec.Struct, tag_field="v", tag=VERSION):
    """Version 1, as msgspec checks it in C: the writer's hot path (5x the checks below)."""

    type: Literal["metrics"]
    run_id: Annotated[str, msgspec.Meta(min_length=1)]
    event_id: Annotated[str, msgspec.Meta(min_length=1)]
    received_at_ms: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
    metrics: list[MetricPoint]


class _ModelRecord(msgspec.Struct, tag_field="v", tag=MODEL_VERSION):
    """Version 2: version 1 whose points may name a model."""

    type: Literal["metrics"]
    run_id: Annotated[str, msgspec.Meta(min_length=1)]
    event_id: Annotated[str, msgspec.Meta(min_length=1)]
    received_at_ms: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
    metrics: list[ModelPoint]


_fast = msgspec.json.Decoder(_Record | _ModelRecord)


def decode(raw: bytes | None) -> MetricRecord:
    """Parse and check one record value; raise InvalidRecord with a reason otherwise.

    Valid records take msgspec's typed decoder; anything it refuses goes through the explicit
    checks, which say why (the dead-letter reason)."""
    if raw is None:
        raise InvalidRecord("empty record value")
    try:
        record = _fast.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        _explain(raw)
        raise InvalidRecord(str(exc)) from None  # refused by msgspec only: its reason
    if isinstance(record, _Record):
        return MetricRecord(record.run_id, record.event_id, record.received_at_ms, record.metrics)
    return MetricRecord(
        record.run_id,
        record.event_id,
        record.received_at_ms,
        list(record.metrics),
        tuple(p for p in record.metrics if p.model_id is not None),
    )


def _explain(raw: bytes) -> MetricRecord:
    """The explicit checks: raise InvalidRecord with a reason for an invalid record."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRecord("record is not a JSON object")
    version = doc.get("v")
    if version not in (VERSION, MODEL_VERSION) or isinstance(version, bool):
        raise InvalidRecord(f"unsupported record version {version!r}")
    if doc.get("type") != "metrics":
        raise InvalidRecord(f"unsupported record type {doc.get('type')!r}")
    points = [_point(p, version == MODEL_VERSION) for p in _require_list(doc, "metrics")]
    return MetricRecord(
        run_id=_require_str(doc, "run_id"),
        event_id=_require_str(doc, "event_id"),
        received_at_ms=_require_int(doc, "received_at_ms"),
        metrics=points,
    )


def _point(raw: Any, models: bool) -> MetricPoint:
    if models:
        if not isinstance(raw, list) or not 5 <= len(raw) <= 8:
            raise InvalidRecord("metric point is not a list of 5 to 8 items")
        if not all(item is None or isinstance(item, str) for item in raw[5:]):
            raise InvalidRecord("metric model_id/dataset_name/dataset_digest is not a string")
    elif not isinstance(raw, list) or len(raw) != 5:
        raise InvalidRecord("metric point is not a 5-item list")
    key, value, timestamp, step, is_nan = raw[:5]
    if not isinstance(key, str) or not key:
        raise InvalidRecord("metric key is not a non-empty string")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRecord("metric value is not a finite number")
    if not _is_int64(timestamp) or timestamp < 0 or not _is_int64(step):
        raise InvalidRecord("metric timestamp/step is not an int64")
    if not isinstance(is_nan, bool):
        raise InvalidRecord("metric is_nan is not a boolean")
    return MetricPoint(key, float(value), timestamp, step, is_nan)


def _is_int64(value: Any) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
    )


def _require_str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"{name} is not a non-empty string")
    return value


def _require_int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or not _is_int64(value):
        raise InvalidRecord(f"{name} is not an int64")
    return value


def _require_list(doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise InvalidRecord(f"{name} is not a list")
    return value
