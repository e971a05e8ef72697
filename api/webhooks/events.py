"""The registry's side of webhooks: which event a change is, its MLflow payload, and
publishing it: staged in the change's transaction (``api/webhooks/outbox.py``), produced to
Kafka after the commit (never a delivery on the request path).

Payloads follow MLflow 3.17.2's handlers (``mlflow/server/handlers.py`` with
``mlflow/webhooks/types.py``): a registered model or version whose model carries the tag
``mlflow.prompt.is_prompt=true`` produces the prompt events instead, with the prompt's internal
tags left out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from api.deps import deps_key
from api.webhooks import outbox
from schemas.webhook_events import Event, EventRecord, encode
from sluice import metrics

log = logging.getLogger(__name__)

PROMPT_TAG: Final = "mlflow.prompt.is_prompt"
_PROMPT_TYPE_TAG: Final = "_mlflow_prompt_type"
_PROMPT_TEXT_TAG: Final = "mlflow.prompt.text"


def is_prompt(tags: Mapping[str, str]) -> bool:
    return tags.get(PROMPT_TAG, "false").lower() == "true"


def _entity(prompt: bool, model_entity: str, prompt_entity: str) -> str:
    return prompt_entity if prompt else model_entity


def model_created(
    name: str, tags: Sequence[tuple[str, str]], description: str
) -> tuple[Event, dict[str, Any]]:
    tag_map = dict(tags)
    if is_prompt(tag_map):
        hidden = {PROMPT_TAG, _PROMPT_TYPE_TAG}
        shown = {k: v for k, v in tag_map.items() if k not in hidden}
        return Event("prompt", "created"), {"name": name, "tags": shown, "description": description}
    return Event("registered_model", "created"), {
        "name": name,
        "tags": tag_map,
        "description": description,
    }


def version_created(
    name: str,
    version: int,
    fields: Mapping[str, Any],
    tags: Sequence[tuple[str, str]],
) -> tuple[Event, dict[str, Any]]:
    tag_map = dict(tags)
    description = fields["description"] or None
    if is_prompt(tag_map):
        template = tag_map.pop(_PROMPT_TEXT_TAG, None)
        tag_map.pop(PROMPT_TAG, None)
        tag_map.pop(_PROMPT_TYPE_TAG, None)
        return Event("prompt_version", "created"), {
            "name": name,
            "version": str(version),
            "template": template,
            "tags": tag_map,
            "description": description,
        }
    return Event("model_version", "created"), {
        "name": name,
        "version": str(version),
        "source": fields["source"],
        "run_id": fields["run_id"] or None,
        "tags": tag_map,
        "description": description,
    }


def version_tag_set(
    prompt: bool, name: str, version: str, key: str, value: str
) -> tuple[Event, dict[str, Any]]:
    entity = _entity(prompt, "model_version_tag", "prompt_version_tag")
    return Event(entity, "set"), {"name": name, "version": version, "key": key, "value": value}


def version_tag_deleted(
    prompt: bool, name: str, version: str, key: str
) -> tuple[Event, dict[str, Any]]:
    entity = _entity(prompt, "model_version_tag", "prompt_version_tag")
    return Event(entity, "deleted"), {"name": name, "version": version, "key": key}


def alias_created(
    prompt: bool, name: str, alias: str, version: str
) -> tuple[Event, dict[str, Any]]:
    entity = _entity(prompt, "model_version_alias", "prompt_alias")
    return Event(entity, "created"), {"name": name, "alias": alias, "version": version}


def alias_deleted(prompt: bool, name: str, alias: str) -> tuple[Event, dict[str, Any]]:
    entity = _entity(prompt, "model_version_alias", "prompt_alias")
    return Event(entity, "deleted"), {"name": name, "alias": alias}


def model_tag_set(
    prompt: bool, name: str, key: str, value: str
) -> tuple[Event, dict[str, Any]] | None:
    """Only prompts have a tag event (MLflow fires none for a registered model's tags)."""
    data = {"name": name, "key": key, "value": value}
    return (Event("prompt_tag", "set"), data) if prompt else None


def model_tag_deleted(prompt: bool, name: str, key: str) -> tuple[Event, dict[str, Any]] | None:
    return (Event("prompt_tag", "deleted"), {"name": name, "key": key}) if prompt else None


# MLflow's example payloads (``<Payload>.example()``), which the test route sends.
EXAMPLES: Final[dict[Event, dict[str, Any]]] = {
    Event("registered_model", "created"): {
        "name": "example_model",
        "tags": {"example_key": "example_value"},
        "description": "An example registered model",
    },
    Event("model_version", "created"): {
        "name": "example_model",
        "version": "1",
        "source": "models:/123",
        "run_id": "abcd1234abcd5678",
        "tags": {"example_key": "example_value"},
        "description": "An example model version",
    },
    Event("model_version_tag", "set"): {
        "name": "example_model",
        "version": "1",
        "key": "example_key",
        "value": "example_value",
    },
    Event("model_version_tag", "deleted"): {
        "name": "example_model",
        "version": "1",
        "key": "example_key",
    },
    Event("model_version_alias", "created"): {
        "name": "example_model",
        "alias": "example_alias",
        "version": "1",
    },
    Event("model_version_alias", "deleted"): {"name": "example_model", "alias": "example_alias"},
    Event("prompt", "created"): {
        "name": "example_prompt",
        "tags": {"example_key": "example_value"},
        "description": "An example prompt",
    },
    Event("prompt_version", "created"): {
        "name": "example_prompt",
        "version": "1",
        "template": "Hello {{name}}!",
        "tags": {"example_key": "example_value"},
        "description": "An example prompt version",
    },
    Event("prompt_tag", "set"): {
        "name": "example_prompt",
        "key": "example_key",
        "value": "example_value",
    },
    Event("prompt_tag", "deleted"): {"name": "example_prompt", "key": "example_key"},
    Event("prompt_version_tag", "set"): {
        "name": "example_prompt",
        "version": "1",
        "key": "example_key",
        "value": "example_value",
    },
    Event("prompt_version_tag", "deleted"): {
        "name": "example_prompt",
        "version": "1",
        "key": "example_key",
    },
    Event("prompt_alias", "created"): {
        "name": "example_prompt",
        "alias": "example_alias",
        "version": "1",
    },
    Event("prompt_alias", "deleted"): {"name": "example_prompt", "alias": "example_alias"},
    Event("budget_policy", "exceeded"): {
        "budget_policy_id": "bp-abc123",
        "budget_unit": "USD",
        "budget_amount": 100.0,
        "current_spend": 105.5,
        "duration_unit": "MONTHS",
        "duration_value": 1,
        "target_scope": "ENDPOINT",
        "workspace": "default",
        "target_value": "ep-abc123",
        "window_start": 1704067200000,
    },
}


def now_iso() -> str:
    """The event time as MLflow writes it (``datetime.now(timezone.utc).isoformat()``)."""
    return datetime.now(UTC).isoformat()


def record_of(key: str, event: Event, data: dict[str, Any]) -> EventRecord:
    return EventRecord(str(uuid.uuid4()), event, now_iso(), data, key)


# -- the I/O shell ------------------------------------------------------------------------------


class Publisher:
    """Produces event records to the webhooks topic (acks=all) within the deadline."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, deadline_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._deadline_s = deadline_s

    async def send(self, key: str, value: bytes) -> None:
        """Raises when Kafka does not take the record within the deadline."""
        await asyncio.wait_for(
            self._producer.send_and_wait(self._topic, value, key=key.encode()), self._deadline_s
        )


publisher_key = web.AppKey("webhook_publisher", Publisher)


async def stage(
    request: web.Request,
    conn: asyncpg.Connection,
    change: tuple[Event, dict[str, Any]] | None,
    key: str,
) -> EventRecord | None:
    """The change's event, written to the outbox in the change's transaction (``conn``'s);
    None when the change has no event or the app publishes none."""
    if change is None or request.app.get(publisher_key) is None:
        return None
    record = record_of(key, *change)
    await outbox.stage(conn, record)
    return record


async def publish(request: web.Request, record: EventRecord | None) -> None:
    """Publish a committed change's staged event and take it out of the outbox. The change is
    the caller's answer: when Kafka does not take the event, it stays for the outbox relay
    (logged and counted), never an error for a write that already happened (MLflow, too,
    never fails a registry call over its webhooks)."""
    publisher = request.app.get(publisher_key)
    if record is None or publisher is None:
        return
    try:
        await publisher.send(record.key, encode(record))
    except Exception as exc:  # a timeout or any Kafka error: the relay publishes it later
        metrics.webhook_events_total.labels(outcome="deferred").inc()
        log.warning(
            "webhook event left to the outbox relay",
            extra={"event": str(record.event), "event_id": record.event_id, "error": repr(exc)},
        )
        return
    metrics.webhook_events_total.labels(outcome="published").inc()
    await outbox.remove(request.app[deps_key].pool, record.event_id)
