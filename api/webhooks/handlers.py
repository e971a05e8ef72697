"""Webhook endpoints (MLflow's WebhookService): create, list, get, update, delete, test.

Only admins may call them when access control is on (schemas/access.py), as in MLflow's auth
app. Answers never carry the secret.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from api.deps import deps_key, request_doc
from api.page_tokens import decode_offset, encode_offset
from api.webhooks import rules, store
from api.webhooks.context import box_key, sender_key, settings_key
from api.webhooks.events import EXAMPLES, now_iso
from api.webhooks.secrets import SecretUnreadable
from api.webhooks.signing import body_of, headers
from api.webhooks.targets import check_public
from schemas.fields import get_list, get_string
from schemas.int_fields import read_int
from schemas.mlflow_errors import invalid_parameter
from schemas.webhook_events import EventRecord
from sluice.clock import now_ms
from sluice.http import json_response


async def _checked_url(request: web.Request, url: str) -> str:
    cfg = request.app[settings_key]
    target = rules.parse_url(url, cfg.schemes)
    if not cfg.allow_private:
        await check_public(target, cfg.resolve_timeout_s)
    return url


async def _webhook_json(conn: Any, webhook_id: str) -> dict[str, Any]:
    row = await store.fetch(conn, webhook_id)
    return rules.webhook_json(row, store.events_of(row))


async def create_webhook(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    # MLflow's schema checks first (types, required), then name, URL and events, in that order.
    name = get_string(doc, "name", required=True)
    url = get_string(doc, "url", required=True)
    raw_events = get_list(doc, "events", required=True)
    description = get_string(doc, "description") or None
    secret = get_string(doc, "secret") or None
    status = rules.status_of(doc) or "ACTIVE"
    rules.validate_name(name)
    await _checked_url(request, url)
    events = rules.parse_events(raw_events)
    webhook_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "webhook_id": webhook_id,
        "name": name,
        "description": description,
        "url": url,
        "secret": None if secret is None else request.app[box_key].seal(secret),
        "status": status,
        "now": now_ms(),
    }
    async with request.app[deps_key].pool.acquire() as conn:
        async with conn.transaction():
            await store.insert(conn, fields, events)
        body = await _webhook_json(conn, webhook_id)
    return json_response({"webhook": body})


async def list_webhooks(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    limit = read_int(doc, "max_results", 32).parsed or rules.MAX_RESULTS_DEFAULT
    if not 1 <= limit <= rules.MAX_RESULTS_LIMIT:
        raise invalid_parameter("max_results must be between 1 and 1000.")
    offset = decode_offset(get_string(doc, "page_token"))
    rows = await store.page(request.app[deps_key].pool, offset, limit + 1)
    body: dict[str, Any] = {}
    if rows:
        body["webhooks"] = [rules.webhook_json(r, store.events_of(r)) for r in rows[:limit]]
    if len(rows) > limit:
        body["next_page_token"] = encode_offset(offset + limit)
    return json_response(body)


async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhook_id"]
    return json_response({"webhook": await _webhook_json(request.app[deps_key].pool, webhook_id)})


async def update_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhook_id"]
    doc = await request_doc(request)
    changes = await _changes(request, doc)
    async with request.app[deps_key].pool.acquire() as conn:
        async with conn.transaction():
            await store.lock(conn, webhook_id)
            await store.update(conn, webhook_id, changes, now_ms())
        body = await _webhook_json(conn, webhook_id)
    return json_response({"webhook": body})


async def _changes(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    """What an update sets, as MLflow reads it: an empty name, URL or event list means
    "unchanged"; a present description or secret is set even when empty; an unknown status
    is ignored."""
    name = get_string(doc, "name")
    description = get_string(doc, "description")
    url = get_string(doc, "url")
    raw_events = get_list(doc, "events")
    secret = get_string(doc, "secret")
    status = rules.status_of(doc)
    changes: dict[str, Any] = {}
    if name:
        rules.validate_name(name)
        changes["name"] = name
    if url:
        changes["url"] = await _checked_url(request, url)
    if raw_events:
        changes["events"] = rules.parse_events(raw_events)
    if description is not None:
        changes["description"] = description
    if secret is not None:
        changes["secret"] = request.app[box_key].seal(secret)
    if status is not None:
        changes["status"] = status
    return changes


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["webhook_id"]
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        await store.lock(conn, webhook_id)
        await store.soft_delete(conn, webhook_id, now_ms())
    return json_response({})


async def test_webhook(request: web.Request) -> web.Response:
    """One POST of MLflow's example payload for the event (default: the webhook's first),
    answered with what the receiver said. Synchronous, as in MLflow: the caller waits for it
    (one attempt, bounded by the request deadline; no retries)."""
    webhook_id = request.match_info["webhook_id"]
    doc = await request_doc(request)
    event = rules.parse_event(doc["event"], "event") if doc.get("event") is not None else None
    pool = request.app[deps_key].pool
    row = await store.fetch(pool, webhook_id)
    event = event or store.events_of(row)[0]
    record = EventRecord(str(uuid.uuid4()), event, now_iso(), EXAMPLES[event], "")
    body = body_of(record)
    stored = await store.secret_of(pool, webhook_id)
    try:
        secret = None if stored is None else request.app[box_key].open(stored)
    except SecretUnreadable as exc:
        failed = rules.test_result_json(False, None, None, f"Failed to test webhook: {exc}")
        return json_response({"result": failed})
    sent = await request.app[sender_key].post(
        row["url"], body, headers(secret, record.event_id, int(time.time()), body)
    )
    error = None if sent.status is not None else f"Failed to test webhook: {sent.error}"
    result = rules.test_result_json(sent.delivered, sent.status, sent.body, error)
    return json_response({"result": result})
