"""The fast path for the high-volume calls: plain metric batches and single metrics.

Profiling showed the general validator (``ingest/validate.py``) spending ~75 % of ingest's CPU
on per-field generality. Nearly all traffic is the same shape: ``{"run_id", "metrics": [{"key",
"value", "timestamp", "step"}]}`` with finite numbers, int64 steps and a handful of distinct
keys. This module accepts exactly that shape, with orjson and one tight loop, and returns None
for anything else -- the caller then runs the general validator, which produces MLflow's exact
error or its exact acceptance. Contract: whatever this returns, the general validator would
have returned the same value for the same body (tested in tests/unit/test_fastpath.py).
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Final

import msgspec

from schemas.mlflow_errors import MlflowError
from schemas.mlflow_names import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    validate_key,
    validate_run_id_format,
)
from schemas.wire import INT64_MAX, INT64_MIN, PointFields

Timestamp = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Step = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class _Metric(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    value: float  # msgspec rejects bools and strings here: "NaN" spellings take the general path
    timestamp: Timestamp
    step: Step = 0


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    run_id: str
    metrics: Annotated[list[_Metric], msgspec.Meta(max_length=MAX_METRICS_PER_BATCH)] = []
    params: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=0)] = []
    tags: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=0)] = []


class _Single(msgspec.Struct, forbid_unknown_fields=True):
    run_id: str
    key: str
    value: float
    timestamp: Timestamp
    step: Step = 0
    run_uuid: str | None = None


_BATCH: Final = msgspec.json.Decoder(_Batch)
_SINGLE: Final = msgspec.json.Decoder(_Single)


@functools.lru_cache(maxsize=65_536)
def _key_ok(key: str) -> bool:
    """Memoised: a batch repeats a few keys a thousand times, runs repeat them for hours."""
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        return False
    try:
        validate_key(key, "name")
    except MlflowError:
        return False
    return True


def _json(content_type: str | None) -> bool:
    return (
        content_type is not None
        and content_type.split(";", 1)[0].strip().lower() == "application/json"
    )


def _run_id_ok(run_id: str) -> bool:
    try:
        validate_run_id_format(run_id)
    except MlflowError:
        return False
    return True


def _values_ok(values: list[float]) -> bool:
    # One C-level pass: a NaN/Inf (or an overflowing sum, harmlessly) sends the batch to the
    # general path, which knows MLflow's spellings and clamps. fsum raises on some finite
    # values whose partial sums overflow (two 9e307): the general path takes those too.
    try:
        return math.isfinite(math.fsum(values))
    except OverflowError:
        return False


def log_batch(raw: bytes, content_type: str | None) -> tuple[str, list[PointFields]] | None:
    """(run_id, points) for a metrics-only batch of the common shape, else None."""
    if not _json(content_type):
        return None
    try:
        batch = _BATCH.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    metrics = batch.metrics
    keys = {m.key for m in metrics}
    if not _run_id_ok(batch.run_id) or not all(_key_ok(k) for k in keys):
        return None
    if not _values_ok([m.value for m in metrics]):
        return None
    return batch.run_id, [(m.key, m.value, m.timestamp, m.step, False) for m in metrics]


def log_metric(raw: bytes, content_type: str | None) -> tuple[str, PointFields] | None:
    """(run_id, point) for a plain single metric, else None."""
    if not _json(content_type):
        return None
    try:
        call = _SINGLE.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    if not call.run_id or call.run_uuid not in (None, call.run_id) or not _key_ok(call.key):
        return None
    if not _values_ok([call.value]):
        return None
    return call.run_id, (call.key, call.value, call.timestamp, call.step, False)
