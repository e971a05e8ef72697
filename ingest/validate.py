"""Validation of the ingest write calls: request document in, frozen value out (pure; no I/O).

Each ``validate_x`` takes the document from ``schemas.protojson`` (body or query) and either
returns what the I/O shell stores or raises ``MlflowError`` with MLflow 3.17.2's error code and
message, checked in MLflow's order: the handler schema first (presence, JSON types), then the
store rules (``mlflow/utils/validation.py``: names, timestamps, lengths, batch limits). Existence
and state of the run (404, "must be in the 'active' state") are the shell's job, after this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.fields import expect_object, get_double, get_list, get_string, get_unchecked_string
from schemas.int_fields import get_int64, get_nested_int64
from schemas.mlflow_errors import invalid_parameter, missing_parameter
from schemas.mlflow_names import (
    MAX_ENTITIES_PER_BATCH,
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    truncate_param_value,
    truncate_tag_value,
    validate_key,
    validate_length,
    validate_run_id_format,
)
from schemas.protojson import invalid_value
from schemas.wire import ModelPointFields, PointFields, normalise_value

Doc = Mapping[str, Any]
# A point as ingest produces it: with the model fields when the metric names a logged model.
Point = PointFields | ModelPointFields


@dataclass(frozen=True, slots=True)
class LogBatch:
    run_id: str
    metrics: list[Point]  # normalised (NaN -> 0.0 + is_nan), request order, duplicates kept
    params: list[tuple[str, str]]  # values truncated to 6000; keys unique
    tags: list[tuple[str, str]]  # one per key: last value, first position; values truncated

    @property
    def model_ids(self) -> set[str]:
        """The logged models the metrics name (each point of them is a ModelPointFields)."""
        return {p[5] for p in self.metrics if len(p) > 5}


@dataclass(frozen=True, slots=True)
class LogMetric:
    run_id: str
    point: Point

    @property
    def model_ids(self) -> set[str]:
        return {self.point[5]} if len(self.point) > 5 else set()


@dataclass(frozen=True, slots=True)
class LogParam:
    run_id: str
    key: str
    value: str  # truncated to 6000


@dataclass(frozen=True, slots=True)
class SetTag:
    run_id: str
    key: str
    value: str  # truncated to 8000


@dataclass(frozen=True, slots=True)
class DeleteTag:
    run_id: str
    key: str


# -- log-batch ----------------------------------------------------------------------------------


def validate_log_batch(doc: Doc) -> LogBatch:
    """``POST runs/log-batch``. Order (MLflow's): run_id present; metrics/params/tags are lists of
    objects with their required fields; dataset name/digest pairs; run_id shape; each metric,
    param, tag; counts; duplicate param keys. An empty batch is valid. Cost: about 6 us a metric."""
    run_id = _batch_run_id(doc)
    raw_metrics = _items(doc, "metrics", ("key", "value", "timestamp"))
    raw_params = _items(doc, "params", ("key",))
    raw_tags = _items(doc, "tags", ("key",))
    for index, item in enumerate(raw_metrics):
        _check_dataset_pair(item, f"metrics[{index}]")
    validate_run_id_format(run_id)
    metrics = [_batch_metric(item, f"metrics[{i}]") for i, item in enumerate(raw_metrics)]
    params = [_param(item, f"params[{i}]") for i, item in enumerate(raw_params)]
    tags = [_tag(item, f"tags[{i}]") for i, item in enumerate(raw_tags)]
    _check_batch_limits(len(metrics), len(params), len(tags))
    _check_unique_param_keys(params)
    return LogBatch(run_id, metrics, params, _last_value_wins(tags))


def _batch_run_id(doc: Doc) -> str:
    """LogBatch has no ``run_uuid`` field, yet MLflow's presence check accepts one in place of
    ``run_id``: the request then carries the proto default "", which the run-id regex refuses
    (``Invalid value "" for parameter 'run_id' supplied.``)."""
    # The schema's type check runs only when protobuf parsing failed, and LogBatch ignores the
    # unknown run_uuid, so any non-empty run_uuid (even 5) passes (checked on 3.17.2).
    if doc.get("run_id") is None and doc.get("run_uuid") not in (None, ""):
        return ""
    # get_unchecked_string: the run-id regex rejects NUL and surrogates with MLflow's own message.
    return get_unchecked_string(doc, "run_id", required=True)


def _items(doc: Doc, name: str, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The objects of a repeated field, each with its required fields present (non-empty)."""
    items = [expect_object(v, f"{name}[{i}]") for i, v in enumerate(get_list(doc, name))]
    for index, item in enumerate(items):
        for field in required:
            if item.get(field) is None or item.get(field) == "":
                raise missing_parameter(f"{name}[{index}].{field}")
    return items


def _batch_metric(item: Doc, prefix: str) -> Point:
    key, value, timestamp, step = _metric_fields(item, prefix)
    model = get_string(item, "model_id", path=_path(prefix, "model_id"), default="")
    return _with_model(_metric_point(key, value, timestamp, step, prefix), model, item, prefix)


def _check_batch_limits(metrics: int, params: int, tags: int) -> None:
    _check_limit("metrics", MAX_METRICS_PER_BATCH, metrics)
    _check_limit("params", MAX_PARAMS_TAGS_PER_BATCH, params)
    _check_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)
    _check_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags)


def _check_limit(entity: str, limit: int, count: int) -> None:
    if count > limit:
        raise invalid_parameter(
            f"A batch logging request can contain at most {limit} {entity}. Got {count} {entity}."
            f" Please split up {entity} across multiple requests and try again."
        )


def _check_unique_param_keys(params: list[tuple[str, str]]) -> None:
    # Refused even when the values agree; every repeat is listed (three "a" give ['a', 'a']).
    seen: set[str] = set()
    repeats: list[str] = []
    for key, _ in params:
        if key in seen:
            repeats.append(key)
        seen.add(key)
    if repeats:
        raise invalid_parameter(
            f"Duplicate parameter keys have been submitted: {repeats}. Please ensure the request"
            " contains only one param value per param key."
        )


def _last_value_wins(tags: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # MLflow's _set_tags keeps one row per key with the last value; a dict keeps first positions.
    return list(dict(tags).items())


# -- single calls -------------------------------------------------------------------------------


def validate_log_metric(doc: Doc) -> LogMetric:
    """``POST runs/log-metric``. With a ``model_id`` the point is also the logged model's
    metric, with its dataset (name and digest together, or neither)."""
    run_id = _run_id_or_uuid(doc)
    key, value, timestamp, step = _metric_fields(doc, "")
    model = get_string(doc, "model_id", default="")
    _check_dataset_pair(doc, "")
    point = _metric_point(key, value, timestamp, step, "")
    return LogMetric(run_id, _with_model(point, model, doc, ""))


def validate_log_param(doc: Doc) -> LogParam:
    """``POST runs/log-parameter``; a missing value is "" (the proto default, as MLflow)."""
    run_id = _run_id_or_uuid(doc)
    key, value = _param(doc, "")
    return LogParam(run_id, key, value)


def validate_set_tag(doc: Doc) -> SetTag:
    """``POST runs/set-tag``; a missing value is ""."""
    run_id = _run_id_or_uuid(doc)
    key, value = _tag(doc, "")
    return SetTag(run_id, key, value)


def validate_delete_tag(doc: Doc) -> DeleteTag:
    """``POST runs/delete-tag``. MLflow checks no key rule here: an invalid key is simply not
    found (404, the shell's answer). ``run_uuid`` is not accepted: DeleteTag has no such field."""
    run_id = get_string(doc, "run_id", required=True)
    key = get_string(doc, "key", required=True)
    return DeleteTag(run_id, key)


def _run_id_or_uuid(doc: Doc) -> str:
    # MLflow's schema reads run_uuid only when run_id is absent or null ("" stays missing), and
    # names the field run_id in its messages either way.
    if doc.get("run_id") is None and "run_uuid" in doc:
        return get_string(doc, "run_uuid", path="run_id", required=True)
    return get_string(doc, "run_id", required=True)


# -- metric, param and tag rules ----------------------------------------------------------------


def _path(prefix: str, field: str) -> str:
    # MLflow's append_to_json_path: "timestamp" alone, "metrics[3].timestamp" in a batch.
    return f"{prefix}.{field}" if prefix else field


def _metric_fields(doc: Doc, prefix: str) -> tuple[str, float, int, int]:
    """The typed fields of a metric: (key, value, timestamp, step); step defaults to 0."""
    # get_unchecked_string: validate_key refuses NUL and surrogates with MLflow's own message.
    key = get_unchecked_string(doc, "key", path=_path(prefix, "key"), required=True)
    value = get_double(doc, "value", path=_path(prefix, "value"), required=True)
    # log-metric's schema type-checks timestamp and step; nothing checks a batch's metrics, so
    # there any value protobuf refuses silently reads as 0 (schemas/int_fields.py).
    int64 = get_nested_int64 if prefix else get_int64
    timestamp = int64(doc, "timestamp", path=_path(prefix, "timestamp"), required=True)
    step = int64(doc, "step", path=_path(prefix, "step"), default=0)
    return key, value, timestamp, step


def _check_dataset_pair(doc: Doc, prefix: str) -> None:
    # MLflow's Metric constructor, which runs after the schema and before the store rules
    # (in log-batch, before the run-id regex); "" counts as not given.
    name = get_string(doc, "dataset_name", path=_path(prefix, "dataset_name"))
    digest = get_string(doc, "dataset_digest", path=_path(prefix, "dataset_digest"))
    if bool(name) != bool(digest):
        raise invalid_parameter(
            "Both dataset_name and dataset_digest must be provided if one is provided"
        )


def _with_model(point: PointFields, model_id: str, doc: Doc, prefix: str) -> Point:
    """The point with its model fields when it names a model ("" is the proto default: none).
    Without a model MLflow keeps no dataset either: it is only stored with model metrics."""
    if not model_id:
        return point
    name = get_string(doc, "dataset_name", path=_path(prefix, "dataset_name")) or None
    digest = get_string(doc, "dataset_digest", path=_path(prefix, "dataset_digest")) or None
    return (*point, model_id, name, digest)


def _metric_point(key: str, value: float, timestamp: int, step: int, prefix: str) -> PointFields:
    """MLflow's ``_validate_metric`` order (name, timestamp, then length), then storage form."""
    validate_key(key, _path(prefix, "name"))
    if timestamp < 0:
        # Python's str(float) in the text (value=1.0, value=nan, value=-inf) and the trailing
        # space are MLflow's.
        detail = f"metric '{key}' (value={value}). "
        detail += "Timestamp must be a nonnegative long (64-bit integer) "
        raise invalid_value(_path(prefix, "timestamp"), timestamp, detail)
    validate_length("Metric name", MAX_ENTITY_KEY_LENGTH, key)
    stored, is_nan = normalise_value(value)
    return key, stored, timestamp, step, is_nan


def _param(doc: Doc, prefix: str) -> tuple[str, str]:
    key = get_unchecked_string(doc, "key", path=_path(prefix, "key"), required=True)
    value = get_string(doc, "value", path=_path(prefix, "value"), default="")
    validate_key(key, _path(prefix, "key"))
    validate_length("Param key", MAX_ENTITY_KEY_LENGTH, key)
    return key, truncate_param_value(value)


def _tag(doc: Doc, prefix: str) -> tuple[str, str]:
    key = get_unchecked_string(doc, "key", path=_path(prefix, "key"), required=True)
    value = get_string(doc, "value", path=_path(prefix, "value"), default="")
    validate_key(key, _path(prefix, "key"))
    # Unlike params, MLflow names the tag key by its path here: 'key' or 'tags[2].key'.
    validate_length(_path(prefix, "key"), MAX_ENTITY_KEY_LENGTH, key)
    return key, truncate_tag_value(value)
