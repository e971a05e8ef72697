"""The Experiment entity as MLflow JSON (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.runs.render import Row, key_values

DEFAULT_WORKSPACE = "default"


def experiment(row: Row, tags: Iterable[Row]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "artifact_location": row["artifact_location"],
        "lifecycle_stage": row["lifecycle_stage"],
        "last_update_time": row["last_update_time"],
        "creation_time": row["creation_time"],
    }
    tag_list = key_values(tags)
    if tag_list:
        doc["tags"] = tag_list
    # MLflow 3.17 names the workspace of every experiment; without workspaces it is "default".
    doc["workspace"] = DEFAULT_WORKSPACE
    return doc
