"""Run entities as MLflow JSON (pure): info, data (latest metrics, params, tags), inputs, outputs.

MLflow omits unset fields and empty lists, emits int64 as numbers and NaN as "NaN".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]


def run_info(row: Row) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": row["run_uuid"],
        "run_uuid": row["run_uuid"],
        "run_name": row["name"],
        "experiment_id": str(row["experiment_id"]),
        "user_id": row["user_id"],
        "status": row["status"],
        "start_time": row["start_time"] if row["start_time"] is not None else 0,
        "artifact_uri": row["artifact_uri"],
        "lifecycle_stage": row["lifecycle_stage"],
    }
    if row["end_time"] is not None:
        doc["end_time"] = row["end_time"]
    return doc


def metric(row: Row) -> dict[str, Any]:
    return {
        "key": row["key"],
        "value": "NaN" if row["is_nan"] else row["value"],
        "timestamp": row["timestamp"],
        "step": row["step"],
    }


def key_values(rows: Iterable[Row]) -> list[dict[str, str]]:
    return [{"key": r["key"], "value": r["value"]} for r in rows]


def run(
    info: Row,
    metrics: Iterable[Row],
    params: Iterable[Row],
    tags: Iterable[Row],
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, items in (
        ("metrics", [metric(m) for m in metrics]),
        ("params", key_values(params)),
        ("tags", key_values(tags)),
    ):
        if items:
            data[name] = items
    return {"info": run_info(info), "data": data, "inputs": inputs or {}, "outputs": outputs or {}}


def run_inputs(
    datasets: Iterable[Row], tags: Mapping[str, list[Row]], models: Iterable[Row]
) -> dict[str, Any]:
    """``RunInputs``: dataset inputs in logging order (tags by dataset uuid), model inputs."""
    doc: dict[str, Any] = {}
    dataset_inputs = [dataset_input(row, tags.get(row["dataset_uuid"], [])) for row in datasets]
    if dataset_inputs:
        doc["dataset_inputs"] = dataset_inputs
    model_inputs = [{"model_id": row["model_id"]} for row in models]
    if model_inputs:
        doc["model_inputs"] = model_inputs
    return doc


def dataset_input(row: Row, tags: Iterable[Row]) -> dict[str, Any]:
    dataset = {
        "name": row["name"],
        "digest": row["digest"],
        "source_type": row["source_type"],
        "source": row["source"],
    }
    for optional in ("schema", "profile"):
        if row[optional] is not None:
            dataset[optional] = row[optional]
    doc: dict[str, Any] = {}
    tag_list = key_values(tags)
    if tag_list:
        doc["tags"] = tag_list
    doc["dataset"] = dataset
    return doc


def run_outputs(models: Iterable[Row]) -> dict[str, Any]:
    outputs = [{"model_id": row["model_id"], "step": row["step"]} for row in models]
    return {"model_outputs": outputs} if outputs else {}
