"""The LoggedModel entity as MLflow JSON (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def logged_model(
    row: Mapping[str, Any], tags: Sequence[Any], params: Sequence[Any], points: Sequence[Any]
) -> dict[str, Any]:
    """``points``: every metric point logged with the model (MLflow lists them all, not a
    latest value per key)."""
    info: dict[str, Any] = {
        "model_id": row["model_id"],
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "creation_timestamp_ms": row["creation_timestamp"],
        "last_updated_timestamp_ms": row["last_updated_timestamp"],
        "artifact_uri": row["artifact_location"],
        "status": row["status"],
    }
    # MLflow renders model_type and source_run_id even when unset (""): its create handler
    # stores the request's protobuf default "" for them. status_message only when set.
    info["model_type"] = row["model_type"] or ""
    info["source_run_id"] = row["source_run_id"] or ""
    if row["status_message"]:
        info["status_message"] = row["status_message"]
    if tags:
        info["tags"] = [{"key": t["key"], "value": t["value"]} for t in tags]
    data: dict[str, Any] = {}
    if params:
        data["params"] = [{"key": p["key"], "value": p["value"]} for p in params]
    if points:
        data["metrics"] = [_metric(row["model_id"], p) for p in points]
    return {"info": info, "data": data}


def _metric(model_id: str, point: Mapping[str, Any]) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "key": point["key"],
        "value": point["value"],
        "timestamp": point["timestamp"],
        "step": point["step"],
    }
    if point["dataset_name"] is not None:
        metric["dataset_name"] = point["dataset_name"]
    if point["dataset_digest"] is not None:
        metric["dataset_digest"] = point["dataset_digest"]
    metric["model_id"] = model_id
    metric["run_id"] = point["run_uuid"]
    return metric
