"""What one delivery POST carries (pure): MLflow's body, headers and HMAC signature, so a
receiver written for MLflow verifies Sluice's deliveries unchanged.

MLflow's scheme (``mlflow/webhooks/delivery.py``, Standard Webhooks style): headers
``X-MLflow-Delivery-Id`` (a UUID), ``X-MLflow-Timestamp`` (Unix seconds, as text) and, when the
webhook has a secret, ``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
"<delivery id>.<timestamp>.<body>")>``. The body is ``json.dumps`` of ``{"entity", "action",
"timestamp", "data"}``.

One difference by design: MLflow draws a new delivery id per send; Sluice derives it from the
event and the webhook, so every retry and every re-delivery of one event to one webhook carries
the same id and a receiver can drop duplicates (deliveries are at least once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Final

from schemas.webhook_events import EventRecord

SIGNATURE_HEADER: Final = "X-MLflow-Signature"
TIMESTAMP_HEADER: Final = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER: Final = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION: Final = "v1"
_DELIVERY_NAMESPACE: Final = uuid.UUID("6f1d5a4e-2b0c-4c8e-9f4a-5d1e3c7b9a20")


def body_of(record: EventRecord) -> str:
    """The JSON body, spaced as Python's ``json.dumps`` (MLflow's) spaces it."""
    return json.dumps(
        {
            "entity": record.event.entity,
            "action": record.event.action,
            "timestamp": record.timestamp,
            "data": record.data,
        }
    )


def delivery_id(event_id: str, webhook_id: str) -> str:
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{event_id}/{webhook_id}"))


def signature(secret: str, delivery: str, timestamp: str, body: str) -> str:
    signed = f"{delivery}.{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str | None, delivery: str, unix_seconds: int, body: str) -> dict[str, str]:
    """The headers of one attempt; the timestamp is the attempt's (receivers check its age)."""
    timestamp = str(unix_seconds)
    out = {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery,
        TIMESTAMP_HEADER: timestamp,
    }
    if secret:
        out[SIGNATURE_HEADER] = signature(secret, delivery, timestamp, body)
    return out
