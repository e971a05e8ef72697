"""Registry rows to MLflow JSON (pure). Field presence follows the entities' ``to_proto``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]


def model_version(row: Row, *, with_aliases: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": row["name"],
        "version": str(row["version"]),
        "creation_timestamp": row["creation_timestamp"],
        "last_updated_timestamp": row["last_updated_timestamp"],
    }
    for field in ("description", "user_id", "current_stage", "source", "run_id", "run_link"):
        if row[field] is not None:
            doc[field] = row[field]
    doc["status"] = row["status"]
    if row["status_message"]:
        doc["status_message"] = row["status_message"]
    tags = [{"key": k, "value": v} for k, v in zip(row["tag_keys"], row["tag_values"], strict=True)]
    if tags:
        doc["tags"] = tags
    if with_aliases and row["aliases"]:
        doc["aliases"] = list(row["aliases"])
    return doc


def registered_model(
    row: Row, latest: Iterable[Row], tags: Iterable[Row], aliases: Iterable[Row]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": row["name"],
        "creation_timestamp": row["creation_timestamp"],
        "last_updated_timestamp": row["last_updated_timestamp"],
    }
    if row["description"]:
        doc["description"] = row["description"]
    for name, items in (
        ("latest_versions", [model_version(v, with_aliases=False) for v in latest]),
        ("tags", [{"key": t["key"], "value": t["value"]} for t in tags]),
        ("aliases", [{"alias": a["alias"], "version": str(a["version"])} for a in aliases]),
    ):
        if items:
            doc[name] = items
    return doc


def in_request_order(doc: dict[str, Any], tags: list[tuple[str, str]]) -> dict[str, Any]:
    """A created entity with its ``tags`` in the order the request listed them: MLflow's
    create answers render the request's tags, later reads the stored ones."""
    if doc.get("tags"):
        rank = {key: i for i, (key, _value) in enumerate(tags)}
        doc["tags"] = sorted(doc["tags"], key=lambda t: rank.get(t["key"], len(rank)))
    return doc
