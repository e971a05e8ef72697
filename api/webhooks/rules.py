"""Webhook request rules (pure): names, URLs, events, statuses, and the answer's JSON.

Messages follow MLflow 3.17.2 (``mlflow/utils/validation.py``, ``mlflow/entities/webhook.py``),
checked against the real server (tests/compat/cases/webhooks.py). Where MLflow crashes (an
unspecified or unknown event entity: its 500) Sluice answers a 400 INVALID_PARAMETER_VALUE.
Address checks that need DNS are in api/webhooks/targets.py; the pure part is here.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas.fields import expect_object, get_enum
from schemas.mlflow_errors import invalid_parameter
from schemas.webhook_events import VALID_ACTIONS, Event

# protobuf enum numbers (mlflow/protos/webhooks.proto), which ParseDict also accepts.
ENTITY_NUMBERS: Final[Mapping[str, int]] = {
    "ENTITY_UNSPECIFIED": 0,
    "REGISTERED_MODEL": 1,
    "MODEL_VERSION": 2,
    "MODEL_VERSION_TAG": 3,
    "MODEL_VERSION_ALIAS": 4,
    "PROMPT": 5,
    "PROMPT_VERSION": 6,
    "PROMPT_TAG": 7,
    "PROMPT_VERSION_TAG": 8,
    "PROMPT_ALIAS": 9,
    "BUDGET_POLICY": 10,
}
ACTION_NUMBERS: Final[Mapping[str, int]] = {
    "ACTION_UNSPECIFIED": 0,
    "CREATED": 1,
    "UPDATED": 2,
    "DELETED": 3,
    "SET": 4,
    "EXCEEDED": 5,
}
STATUS_NUMBERS: Final[Mapping[str, int]] = {"ACTIVE": 1, "DISABLED": 2}

_NAME: Final = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)
# MLflow's list-webhooks bounds (sqlalchemy_store.list_webhooks).
MAX_RESULTS_DEFAULT: Final = 100
MAX_RESULTS_LIMIT: Final = 1000


def validate_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise invalid_parameter(
            f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, "
            "be less than 63 characters long, and contain only letters, digits, dots (.), "
            "underscores (_), and hyphens (-)."
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where a webhook URL points, once its syntax passed: the host to resolve and check."""

    url: str
    hostname: str
    port: int


def parse_url(url: str, allowed_schemes: Sequence[str]) -> Target:
    """MLflow's ``_validate_webhook_url`` up to (not including) the DNS check, in its order:
    blank, unparsable, scheme, hostname. Python's ``urlparse`` is MLflow's parser, so what it
    strips (leading whitespace) and what it refuses (``[::1``) are the same here."""
    if not url.strip():
        raise invalid_parameter(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError as exc:
        raise invalid_parameter(f"Invalid webhook URL {url!r}: {exc!r}") from exc
    if parsed.scheme not in allowed_schemes:
        raise invalid_parameter(
            f"Invalid webhook URL scheme: {parsed.scheme!r}. "
            f"Allowed schemes are: {', '.join(allowed_schemes)}."
        )
    hostname = parsed.hostname
    if not hostname:
        raise invalid_parameter(f"Webhook URL must include a hostname: {url!r}")
    try:
        port = parsed.port
    except ValueError:
        port = None  # MLflow accepts an out-of-range port here; delivery then fails
    return Target(url, hostname, port or (443 if parsed.scheme == "https" else 80))


def is_public(address: str) -> bool:
    """A resolved address is a legal target: globally routable, also when wrapped in an IPv6
    transition format (IPv4-mapped, 6to4, NAT64) that would hide a private IPv4 inside."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return ip.is_global


def non_public_error(hostname: str, address: str) -> Exception:
    return invalid_parameter(
        "Webhook URL must not resolve to a non-public IP address. "
        f"{hostname!r} resolves to {ipaddress.ip_address(address.split('%', 1)[0])}."
    )


def unresolvable_error(hostname: str, exc: BaseException) -> Exception:
    return invalid_parameter(f"Cannot resolve Webhook URL hostname {hostname!r}: {exc}")


# -- events -------------------------------------------------------------------------------------


def parse_event(value: Any, path: str) -> Event:
    """One ``WebhookEvent`` message: both enums named, and a combination MLflow allows."""
    obj = expect_object(value, path)
    entity = get_enum(obj, "entity", ENTITY_NUMBERS, path=f"{path}.entity")
    action = get_enum(obj, "action", ACTION_NUMBERS, path=f"{path}.action")
    if entity in (None, "ENTITY_UNSPECIFIED") or action in (None, "ACTION_UNSPECIFIED"):
        # MLflow: a ValueError out of WebhookEntity/WebhookAction, answered as a 500.
        raise invalid_parameter(
            f"Invalid webhook event {path}: entity and action must name one of MLflow's "
            "webhook entities and actions."
        )
    event = Event(entity.lower(), action.lower())
    valid = VALID_ACTIONS.get(event.entity, frozenset())
    if event.action not in valid:
        raise invalid_parameter(
            f"Invalid action '{event.action}' for entity '{event.entity}'. "
            f"Valid actions are: {sorted(valid)}"
        )
    return event


def parse_events(values: Sequence[Any]) -> list[Event]:
    """The ``events`` list, at least one, no repeats (MLflow: a unique-key error, a 400)."""
    events = [parse_event(v, f"events[{i}]") for i, v in enumerate(values)]
    if not events:
        raise invalid_parameter(
            "Webhook events must be a non-empty list of WebhookEvent objects: []."
        )
    if len(set(events)) != len(events):
        raise invalid_parameter("Webhook events must not repeat an event.")
    return events


def status_of(doc: Mapping[str, Any]) -> str | None:
    """``status`` as a name; a value naming no member is ignored, as ParseDict's swallowed
    error leaves the field unset in MLflow."""
    return get_enum(doc, "status", STATUS_NUMBERS)


# -- rendering ----------------------------------------------------------------------------------


def webhook_json(row: Mapping[str, Any], events: Sequence[Event]) -> dict[str, Any]:
    """MLflow's ``Webhook`` message. The secret is never part of it."""
    doc: dict[str, Any] = {"webhook_id": row["webhook_id"], "name": row["name"]}
    if row["description"]:
        doc["description"] = row["description"]
    doc["url"] = row["url"]
    doc["events"] = [{"entity": e.entity.upper(), "action": e.action.upper()} for e in events]
    doc["status"] = row["status"]
    doc["creation_timestamp"] = row["creation_timestamp"]
    doc["last_updated_timestamp"] = row["last_updated_timestamp"]
    return doc


def test_result_json(
    success: bool, status: int | None, body: str | None, error: str | None
) -> dict[str, Any]:
    """MLflow's ``WebhookTestResult``: unset (zero, empty) fields are left out."""
    doc: dict[str, Any] = {"success": success}  # set explicitly, so rendered even when false
    if status:
        doc["response_status"] = status
    if body:
        doc["response_body"] = body
    if error:
        doc["error_message"] = error
    return doc
