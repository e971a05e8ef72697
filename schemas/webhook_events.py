"""Webhook events: MLflow's event names, and the Kafka record that carries one registry change
from the api that made it to the deliverer (topic ``SLUICE_KAFKA_WEBHOOKS_TOPIC``).

The record is internal (only the api produces and consumes it), versioned all the same so that
an old deliverer meets a new record with a clear refusal: JSON
``{"v": 1, "event_id", "entity", "action", "timestamp", "data"}``, key = the registered model's
name (one partition per model keeps a model's events in order). ``timestamp`` is the change's
time, ISO 8601 UTC as MLflow writes it; ``data`` is MLflow's payload of the event type
(``mlflow/webhooks/types.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

RECORD_VERSION: Final = 1

# MLflow's entity -> the actions a webhook may subscribe to (mlflow/entities/webhook.py).
VALID_ACTIONS: Final[dict[str, frozenset[str]]] = {
    "registered_model": frozenset({"created"}),
    "model_version": frozenset({"created"}),
    "model_version_tag": frozenset({"set", "deleted"}),
    "model_version_alias": frozenset({"created", "deleted"}),
    "prompt": frozenset({"created"}),
    "prompt_version": frozenset({"created"}),
    "prompt_tag": frozenset({"set", "deleted"}),
    "prompt_version_tag": frozenset({"set", "deleted"}),
    "prompt_alias": frozenset({"created", "deleted"}),
    "budget_policy": frozenset({"exceeded"}),
}


@dataclass(frozen=True, slots=True, order=True)
class Event:
    """An event type as MLflow names it: ``entity.action`` (lower case)."""

    entity: str
    action: str

    def __str__(self) -> str:
        return f"{self.entity}.{self.action}"


@dataclass(frozen=True, slots=True)
class EventRecord:
    event_id: str  # uuid4; with the webhook id it makes the stable delivery id
    event: Event
    timestamp: str  # ISO 8601, UTC
    data: dict[str, Any]
    key: str  # the registered model's name


class InvalidEventRecord(ValueError):
    """A record the deliverer cannot read (another version, not JSON): skipped and counted."""


def encode(record: EventRecord) -> bytes:
    return orjson.dumps(
        {
            "v": RECORD_VERSION,
            "event_id": record.event_id,
            "entity": record.event.entity,
            "action": record.event.action,
            "timestamp": record.timestamp,
            "data": record.data,
        }
    )


def decode(value: bytes, key: bytes | None) -> EventRecord:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventRecord(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != RECORD_VERSION:
        raise InvalidEventRecord("unknown record version")
    fields = ("event_id", "entity", "action", "timestamp")
    if not all(isinstance(doc.get(f), str) for f in fields) or not isinstance(
        doc.get("data"), dict
    ):
        raise InvalidEventRecord("missing fields")
    return EventRecord(
        event_id=doc["event_id"],
        event=Event(doc["entity"], doc["action"]),
        timestamp=doc["timestamp"],
        data=doc["data"],
        key=(key or b"").decode("utf-8", "replace"),
    )
