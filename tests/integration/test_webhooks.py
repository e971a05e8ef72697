"""Model registry webhooks end to end: registry changes -> Kafka -> the api's deliverer ->
signed POSTs to a local receiver, which verifies each one the way a receiver written for
MLflow does (HMAC-SHA256 over "<delivery id>.<timestamp>.<body>", base64, "v1," prefix).

Two extra api processes share a database of their own (webhooks are global: the compat suite's
list-webhooks cases compare the whole list, so the session's database holds only theirs): a
permissive one (private targets and http allowed, fast back-off) and a strict one (private
targets refused), each with its own webhooks topic and consumer group.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import pytest
import requests
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.fernet import Fernet
from mlflow import MlflowClient

from api.webhooks.deliverer import Deliverer
from api.webhooks.sender import Sender
from schemas.webhook_events import Event, EventRecord, encode
from sluice.config import WebhooksConfig
from tests.integration.webhook_apis import create_topic, start_api
from tests.stack import Ports, Stack

TIMEOUT = 30
DELIVERY_DEADLINE_S = 30.0
SECRET = "whsec-test-secret"
SECRET_KEY = Fernet.generate_key().decode()


# ---------------------------------------------------------------- a receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """An aiohttp server on its own thread and loop; ``plans`` give per-path status lists
    (consumed one per request, the last one repeating)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    plans: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self.lock:
            self.received.append(Received(request.path, dict(request.headers), body))
            plan = self.plans.get(request.path, [200])
            status = plan.pop(0) if len(plan) > 1 else plan[0]
        return web.Response(status=status, text=f"answer {status}")

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self, path: str, count: int, where: Callable[[Received], bool] = lambda r: True
    ) -> list[Received]:
        deadline = time.monotonic() + DELIVERY_DEADLINE_S
        while time.monotonic() < deadline:
            found = [r for r in self.on(path) if where(r)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.on(path))} requests, expected {count}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    ready.wait(10)
    try:
        yield rec
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ---------------------------------------------------------------- two api processes


@dataclass(frozen=True)
class Apis:
    permissive: str
    strict: str
    strict_name: str
    permissive_name: str
    dsn: str  # their database


def _api(stack: Stack, name: str, dsn: str, **settings: str) -> str:
    topic = f"sluice.test-{stack.tag}.{name}"
    stack.run_cli("migrate", SLUICE_PG_DSN=dsn, SLUICE_KAFKA_WEBHOOKS_TOPIC=topic)
    return start_api(
        stack,
        name,
        dsn,
        topic,
        SLUICE_WEBHOOKS_GROUP_ID=f"{name}-{stack.tag}",
        SLUICE_WEBHOOKS_DELIVER="true",
        SLUICE_WEBHOOKS_ALLOWED_SCHEMES="http,https",
        SLUICE_WEBHOOKS_BACKOFF_BASE_S="0.05",
        SLUICE_WEBHOOKS_BACKOFF_MAX_S="0.5",
        SLUICE_WEBHOOKS_REQUEST_TIMEOUT_S="5",
        **settings,
    )


@pytest.fixture(scope="module")
def apis(stack: Stack) -> Iterator[Apis]:
    dsn = asyncio.run(stack.create_database(f"{stack.database}_webhooks"))
    # Secrets encrypted at rest: every signed delivery below opened its secret with this key.
    keys = {"SLUICE_WEBHOOKS_SECRET_KEYS": SECRET_KEY}
    permissive = _api(stack, "api-webhooks", dsn, SLUICE_WEBHOOKS_ALLOW_PRIVATE="true", **keys)
    strict = _api(stack, "api-webhooks-strict", dsn, SLUICE_WEBHOOKS_ALLOW_PRIVATE="false", **keys)
    try:
        yield Apis(permissive, strict, "api-webhooks-strict", "api-webhooks", dsn)
    finally:
        for name in ("api-webhooks", "api-webhooks-strict"):
            stack.kill(name)


def _call(base: str, method: str, endpoint: str, body: Any = None) -> dict[str, Any]:
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    if method == "GET":
        response = requests.get(url, params=body, timeout=TIMEOUT)
    else:
        response = requests.request(method, url, json=body or {}, timeout=TIMEOUT)
    assert response.status_code == 200, (endpoint, response.text)
    doc = response.json()
    assert isinstance(doc, dict)
    return doc


def _webhook(
    base: str, url: str, events: list[tuple[str, str]], secret: str | None = SECRET
) -> str:
    body: dict[str, Any] = {
        "name": f"hook-{uuid.uuid4().hex[:8]}",
        "url": url,
        "events": [{"entity": e.upper(), "action": a.upper()} for e, a in events],
    }
    if secret is not None:
        body["secret"] = secret
    doc = _call(base, "POST", "webhooks", body)
    assert secret is None or secret not in json.dumps(doc)
    return str(doc["webhook"]["webhook_id"])


def _verify(received: Received, secret: str = SECRET) -> dict[str, Any]:
    """What a receiver written for MLflow checks, then the parsed body."""
    delivery = received.headers["X-MLflow-Delivery-Id"]
    timestamp = received.headers["X-MLflow-Timestamp"]
    assert uuid.UUID(delivery)
    assert abs(int(timestamp) - time.time()) < 300  # replay window
    signed = f"{delivery}.{timestamp}.{received.body}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    version, _, signature = received.headers["X-MLflow-Signature"].partition(",")
    assert version == "v1"
    assert hmac.compare_digest(signature.encode(), expected)
    assert received.headers["Content-Type"] == "application/json"
    doc = json.loads(received.body)
    assert isinstance(doc, dict)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", doc["timestamp"])
    return doc


def _run(base: str) -> str:
    exp = _call(base, "POST", "experiments/create", {"name": f"wh-{uuid.uuid4().hex}"})
    run = _call(base, "POST", "runs/create", {"experiment_id": exp["experiment_id"]})
    return str(run["run"]["info"]["run_id"])


MODEL_EVENTS = [
    ("registered_model", "created"),
    ("model_version", "created"),
    ("model_version_tag", "set"),
    ("model_version_tag", "deleted"),
    ("model_version_alias", "created"),
    ("model_version_alias", "deleted"),
]
PROMPT_EVENTS = [
    ("prompt", "created"),
    ("prompt_version", "created"),
    ("prompt_tag", "set"),
    ("prompt_tag", "deleted"),
    ("prompt_version_tag", "set"),
    ("prompt_version_tag", "deleted"),
    ("prompt_alias", "created"),
    ("prompt_alias", "deleted"),
]


def test_every_registry_event_is_delivered_signed_with_mlflow_payloads(
    apis: Apis, receiver: Receiver
) -> None:
    base = apis.permissive
    _webhook(base, receiver.url("/all"), MODEL_EVENTS + PROMPT_EVENTS)
    name, run_id = f"m-{uuid.uuid4().hex[:8]}", _run(base)
    tags = [{"key": "team", "value": "a"}]
    _call(base, "POST", "registered-models/create", {"name": name, "tags": tags})
    _call(base, "POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"})
    source = f"runs:/{run_id}/model"
    version = {"name": name, "source": source, "run_id": run_id, "description": "d", "tags": tags}
    _call(base, "POST", "model-versions/create", version)
    tag = {"name": name, "version": "1", "key": "stage", "value": "ok"}
    _call(base, "POST", "model-versions/set-tag", tag)
    _call(
        base, "DELETE", "model-versions/delete-tag", {"name": name, "version": "1", "key": "stage"}
    )
    _call(base, "POST", "registered-models/alias", {"name": name, "alias": "champ", "version": "1"})
    _call(base, "DELETE", "registered-models/alias", {"name": name, "alias": "champ"})
    expected = [
        ("registered_model", "created", {"name": name, "tags": {"team": "a"}, "description": ""}),
        (
            "model_version",
            "created",
            {
                "name": name,
                "version": "1",
                "source": source,
                "run_id": run_id,
                "tags": {"team": "a"},
                "description": "d",
            },
        ),
        ("model_version_tag", "set", {**tag}),
        ("model_version_tag", "deleted", {"name": name, "version": "1", "key": "stage"}),
        ("model_version_alias", "created", {"name": name, "alias": "champ", "version": "1"}),
        ("model_version_alias", "deleted", {"name": name, "alias": "champ"}),
    ]
    got = receiver.wait_for("/all", len(expected), lambda r: f'"name": "{name}"' in r.body)
    docs = [_verify(r) for r in got]
    # One model's events come in order (one partition per model); a registered model's own
    # tag is no event (MLflow fires none for it).
    assert [(d["entity"], d["action"], d["data"]) for d in docs] == expected
    assert len({r.headers["X-MLflow-Delivery-Id"] for r in got}) == len(got)


def test_prompt_events(apis: Apis, receiver: Receiver) -> None:
    base = apis.permissive
    _webhook(base, receiver.url("/prompts"), PROMPT_EVENTS)
    name = f"p-{uuid.uuid4().hex[:8]}"
    prompt_tags = [
        {"key": "mlflow.prompt.is_prompt", "value": "true"},
        {"key": "_mlflow_prompt_type", "value": "text"},
        {"key": "team", "value": "a"},
    ]
    _call(
        base,
        "POST",
        "registered-models/create",
        {"name": name, "tags": prompt_tags, "description": "p"},
    )
    _call(base, "POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"})
    _call(base, "DELETE", "registered-models/delete-tag", {"name": name, "key": "k"})
    version_tags = [
        {"key": "mlflow.prompt.is_prompt", "value": "true"},
        {"key": "mlflow.prompt.text", "value": "Hello {{x}}"},
        {"key": "team", "value": "b"},
    ]
    source = "dummy-source"
    _call(
        base,
        "POST",
        "model-versions/create",
        {"name": name, "source": source, "tags": version_tags},
    )
    _call(
        base,
        "POST",
        "model-versions/set-tag",
        {"name": name, "version": "1", "key": "t", "value": "1"},
    )
    _call(base, "DELETE", "model-versions/delete-tag", {"name": name, "version": "1", "key": "t"})
    _call(base, "POST", "registered-models/alias", {"name": name, "alias": "prod", "version": "1"})
    _call(base, "DELETE", "registered-models/alias", {"name": name, "alias": "prod"})
    expected = [
        ("prompt", "created", {"name": name, "tags": {"team": "a"}, "description": "p"}),
        ("prompt_tag", "set", {"name": name, "key": "k", "value": "v"}),
        ("prompt_tag", "deleted", {"name": name, "key": "k"}),
        (
            "prompt_version",
            "created",
            {
                "name": name,
                "version": "1",
                "template": "Hello {{x}}",
                "tags": {"team": "b"},
                "description": None,
            },
        ),
        ("prompt_version_tag", "set", {"name": name, "version": "1", "key": "t", "value": "1"}),
        ("prompt_version_tag", "deleted", {"name": name, "version": "1", "key": "t"}),
        ("prompt_alias", "created", {"name": name, "alias": "prod", "version": "1"}),
        ("prompt_alias", "deleted", {"name": name, "alias": "prod"}),
    ]
    got = receiver.wait_for("/prompts", len(expected), lambda r: f'"name": "{name}"' in r.body)
    assert [(d["entity"], d["action"], d["data"]) for d in map(_verify, got)] == expected


def _metric(base: str, name: str, labels: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=TIMEOUT).text
    match = re.search(rf"^{name}{{{labels}}} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_500_is_retried_until_the_receiver_takes_it(apis: Apis, receiver: Receiver) -> None:
    base = apis.permissive
    receiver.plans["/flaky"] = [500, 503, 200]
    _webhook(base, receiver.url("/flaky"), [("registered_model", "created")], secret=None)
    name = f"r-{uuid.uuid4().hex[:8]}"
    retried = _metric(base, "sluice_webhook_attempts_total", 'result="retryable"')
    _call(base, "POST", "registered-models/create", {"name": name})
    got = receiver.wait_for("/flaky", 3, lambda r: name in r.body)
    assert len({r.headers["X-MLflow-Delivery-Id"] for r in got}) == 1  # one delivery, 3 tries
    assert all("X-MLflow-Signature" not in r.headers for r in got)  # no secret, no signature
    assert _metric(base, "sluice_webhook_attempts_total", 'result="retryable"') >= retried + 2


def test_a_delivery_is_given_up_after_max_attempts_and_the_next_event_flows(
    apis: Apis, receiver: Receiver, stack: Stack
) -> None:
    base = apis.permissive
    receiver.plans["/down"] = [500]
    _webhook(base, receiver.url("/down"), [("registered_model", "created")])
    given_up = _metric(base, "sluice_webhook_deliveries_total", 'outcome="given_up"')
    first, second = f"g1-{uuid.uuid4().hex[:8]}", f"g2-{uuid.uuid4().hex[:8]}"
    _call(base, "POST", "registered-models/create", {"name": first})
    _call(base, "POST", "registered-models/create", {"name": second})
    assert len(receiver.wait_for("/down", 4, lambda r: first in r.body)) == 4  # max_attempts
    receiver.wait_for("/down", 4, lambda r: second in r.body)
    deadline = time.monotonic() + 10
    while _metric(base, "sluice_webhook_deliveries_total", 'outcome="given_up"') < given_up + 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log = stack.log_path(apis.permissive_name).read_text()
    assert "webhook delivery given up" in log


def test_private_targets_are_refused_at_creation_and_at_delivery(
    apis: Apis, receiver: Receiver, stack: Stack
) -> None:
    for url, message in (
        (receiver.url("/x"), "Webhook URL must not resolve to a non-public IP address. "),
        (receiver.url("/x", "localhost"), "Webhook URL must not resolve to a non-public IP"),
        ("http://169.254.169.254/latest/meta-data", "Webhook URL must not resolve to a non-"),
    ):
        body = {"name": "w", "url": url, "events": [{"entity": "PROMPT", "action": "CREATED"}]}
        r = requests.post(f"{apis.strict}/api/2.0/mlflow/webhooks", json=body, timeout=TIMEOUT)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert r.json()["message"].startswith(message), r.text
    # A webhook stored while its target was allowed (here: through the permissive api; in
    # life, a name that resolved publicly and now points inside) is refused at delivery.
    for path, host in (("/rebind-literal", "127.0.0.1"), ("/rebind-name", "localhost")):
        _webhook(apis.permissive, receiver.url(path, host), [("model_version_alias", "created")])
    refused = _metric(apis.strict, "sluice_webhook_deliveries_total", 'outcome="refused"')
    name = f"s-{uuid.uuid4().hex[:8]}"
    _call(apis.strict, "POST", "registered-models/create", {"name": name})
    _set_alias_with_a_version(apis.strict, name)
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while (
        _metric(apis.strict, "sluice_webhook_deliveries_total", 'outcome="refused"') < refused + 2
    ):
        assert time.monotonic() < deadline, "the strict deliverer did not refuse both targets"
        time.sleep(0.1)
    assert not [r for r in receiver.received if r.path.startswith("/rebind")]


def _given_up(stack: Stack, api: str, webhook_id: str) -> list[dict[str, Any]]:
    lines = stack.log_path(api).read_text().splitlines()
    docs = [json.loads(line) for line in lines if "webhook delivery given up" in line]
    return [d for d in docs if d.get("webhook_id") == webhook_id]


def test_a_name_that_does_not_resolve_is_retried_not_refused(
    apis: Apis, receiver: Receiver, stack: Stack
) -> None:
    # A lookup that fails (here for good: .invalid never resolves; in life EAI_AGAIN or the
    # resolve deadline) is a connection error, retried up to max_attempts; a name resolving
    # to a private address is still refused at once. Stored through the permissive api,
    # delivered by the strict one (its CheckedResolver).
    events = [("model_version_tag", "set")]
    unresolved = _webhook(apis.permissive, "http://sluice-no-such-host.invalid/x", events)
    private = _webhook(apis.permissive, receiver.url("/resolves-private", "localhost"), events)
    name = f"d-{uuid.uuid4().hex[:8]}"
    _call(apis.strict, "POST", "registered-models/create", {"name": name})
    run_id = _run(apis.strict)
    body = {"name": name, "source": f"runs:/{run_id}/m", "run_id": run_id}
    version = _call(apis.strict, "POST", "model-versions/create", body)["model_version"]
    tag = {"name": name, "version": version["version"], "key": "k", "value": "v"}
    _call(apis.strict, "POST", "model-versions/set-tag", tag)
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while not (
        _given_up(stack, apis.strict_name, unresolved)
        and _given_up(stack, apis.strict_name, private)
    ):
        assert time.monotonic() < deadline, "the strict deliverer did not end both deliveries"
        time.sleep(0.1)
    (dns,) = _given_up(stack, apis.strict_name, unresolved)
    assert dns["attempts"] == 4, dns  # max_attempts: retried
    assert not dns["error"].startswith("refused"), dns
    assert "sluice-no-such-host.invalid" in dns["error"], dns
    (refused,) = _given_up(stack, apis.strict_name, private)
    assert refused["attempts"] == 1, refused  # not retried
    assert refused["error"].startswith("refused: localhost resolves to"), refused
    assert not [r for r in receiver.received if r.path == "/resolves-private"]


def _set_alias_with_a_version(base: str, name: str) -> None:
    run_id = _run(base)
    _call(
        base,
        "POST",
        "model-versions/create",
        {"name": name, "source": f"runs:/{run_id}/m", "run_id": run_id},
    )
    _call(base, "POST", "registered-models/alias", {"name": name, "alias": "a", "version": "1"})


def test_the_test_route_posts_the_example_payload(apis: Apis, receiver: Receiver) -> None:
    base = apis.permissive
    hook = _webhook(base, receiver.url("/probe"), [("model_version_tag", "set")])
    result = _call(base, "POST", f"webhooks/{hook}/test")["result"]
    assert result == {"success": True, "response_status": 200, "response_body": "answer 200"}
    sent = _verify(receiver.on("/probe")[-1])
    assert (sent["entity"], sent["action"]) == ("model_version_tag", "set")
    assert sent["data"] == {
        "name": "example_model",
        "version": "1",
        "key": "example_key",
        "value": "example_value",
    }
    event = {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}
    _call(base, "POST", f"webhooks/{hook}/test", {"event": event})
    assert _verify(receiver.on("/probe")[-1])["data"] == {
        "name": "example_model",
        "alias": "example_alias",
    }
    receiver.plans["/probe-500"] = [500]
    failing = _webhook(base, receiver.url("/probe-500"), [("prompt", "created")])
    result = _call(base, "POST", f"webhooks/{failing}/test")["result"]
    assert result == {"success": False, "response_status": 500, "response_body": "answer 500"}
    closed = _webhook(base, f"http://127.0.0.1:{Ports.free().api}/", [("prompt", "created")])
    result = _call(base, "POST", f"webhooks/{closed}/test")["result"]
    assert result["success"] is False and "response_status" not in result
    assert result["error_message"].startswith("Failed to test webhook: ")


async def _stored_secret(dsn: str, webhook_id: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        value = await conn.fetchval("SELECT secret FROM webhooks WHERE webhook_id = $1", webhook_id)
    finally:
        await conn.close()
    return str(value)


def test_secrets_are_encrypted_at_rest(apis: Apis, receiver: Receiver) -> None:
    hook = _webhook(apis.permissive, receiver.url("/at-rest"), [("prompt", "created")])
    stored = asyncio.run(_stored_secret(apis.dsn, hook))
    assert stored.startswith("fernet:") and SECRET not in stored
    assert Fernet(SECRET_KEY.encode()).decrypt(stored.removeprefix("fernet:")) == SECRET.encode()
    _call(apis.permissive, "PATCH", f"webhooks/{hook}", {"secret": "rotated-secret-value"})
    rotated = asyncio.run(_stored_secret(apis.dsn, hook))
    assert rotated.startswith("fernet:") and "rotated-secret-value" not in rotated
    # The test route signs with the opened secret (the receiver checks the signature).
    result = _call(apis.permissive, "POST", f"webhooks/{hook}/test", {})["result"]
    assert result["success"] is True, result
    got = receiver.wait_for("/at-rest", 1)
    _verify(got[0], "rotated-secret-value")


def test_secrets_are_never_returned(apis: Apis, receiver: Receiver) -> None:
    base = apis.permissive
    hook = _webhook(base, receiver.url("/s"), [("prompt", "created")])
    _call(base, "PATCH", f"webhooks/{hook}", {"secret": "rotated-secret-value"})
    for doc in (
        _call(base, "GET", f"webhooks/{hook}"),
        _call(base, "GET", "webhooks", {"max_results": "1000"}),
        _call(base, "PATCH", f"webhooks/{hook}", {"description": "x"}),
    ):
        assert SECRET not in json.dumps(doc) and "rotated-secret-value" not in json.dumps(doc)
        assert "secret" not in json.dumps(doc)


def test_bad_input_is_never_a_500(apis: Apis) -> None:
    """Random documents at the create, update and test routes: MLflow's 400s, never a 500."""
    rng = random.Random(14)
    values: list[Any] = [None, "", " ", "x", 0, 1, -1, 2**70, 1.5, True, [], {}, [{}], ["x"]]
    events: list[Any] = [[{"entity": rng.choice(["A", 1, None, "PROMPT"]), "action": "SET"}]]
    fields = ("name", "url", "events", "description", "secret", "status", "event")
    base = f"{apis.strict}/api/2.0/mlflow/webhooks"
    hook = _webhook(apis.strict, "https://8.8.8.8/x", [("prompt", "created")])
    for _ in range(150):
        doc = {f: rng.choice(values + events) for f in rng.sample(fields, rng.randint(0, 5))}
        calls = [("POST", base), ("PATCH", f"{base}/{hook}")]
        if doc.get("event") is not None:  # without one, the test route would really POST
            calls.append(("POST", f"{base}/{hook}/test"))
        for method, url in calls:
            r = requests.request(method, url, json=doc, timeout=TIMEOUT)
            assert r.status_code in (200, 400), (method, doc, r.status_code, r.text)


def test_the_mlflow_client_manages_webhooks_and_its_changes_are_delivered(
    apis: Apis, receiver: Receiver
) -> None:
    """MLflow 3.17.2's own client (MlflowClient's webhook methods), unchanged."""
    client = MlflowClient(tracking_uri=apis.permissive, registry_uri=apis.permissive)
    hook = client.create_webhook(
        name="client-hook",
        url=receiver.url("/client"),
        events=["registered_model.created", "model_version_alias.created"],
        secret=SECRET,
        description="from the client",
    )
    assert client.get_webhook(hook.webhook_id).description == "from the client"
    assert [str(e) for e in hook.events] == [
        "model_version_alias.created",
        "registered_model.created",
    ]
    updated = client.update_webhook(hook.webhook_id, status="DISABLED")
    assert str(updated.status) == "DISABLED"
    client.update_webhook(hook.webhook_id, status="ACTIVE")
    first = client.list_webhooks(max_results=1)
    assert len(first) == 1 and first.token
    assert len(client.list_webhooks(max_results=1, page_token=first.token)) == 1
    result = client.test_webhook(hook.webhook_id, event="model_version_alias.created")
    assert result.success and result.response_status == 200
    name = f"c-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name, tags={"via": "client"})
    delivered = receiver.wait_for("/client", 1, lambda r: f'"name": "{name}"' in r.body)
    assert _verify(delivered[0])["data"] == {
        "name": name,
        "tags": {"via": "client"},
        "description": "",
    }
    client.delete_webhook(hook.webhook_id)
    assert hook.webhook_id not in [w.webhook_id for w in client.list_webhooks(max_results=1000)]


class _Revoking(Deliverer):
    """The real loop over a real consumer; delivering the first event 'loses' the partition
    (the consumer leaves the group), as a rebalance during a slow delivery does."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        cfg = WebhooksConfig()
        super().__init__(cfg, cast(asyncpg.Pool, None), Sender(cfg))
        self.consumer = consumer
        self.handled: list[bytes] = []

    async def handle(self, value: bytes, key: bytes | None) -> None:
        self.handled.append(value)
        self.consumer.unsubscribe()


async def _one_partition_topic(stack: Stack, topic: str, records: list[bytes]) -> None:
    await create_topic(stack, topic)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(topic, value, key=b"m")
    finally:
        await producer.stop()


async def _group_consumer(stack: Stack, topic: str, group: str) -> AIOKafkaConsumer:
    """A started member of ``group`` on ``topic``, committing only when told (as the deliverer)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe([topic])
    await consumer.start()
    return consumer


async def _committed(stack: Stack, group: str, tp: TopicPartition) -> Any:
    reader = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=group)
    await reader.start()
    try:
        return await reader.committed(tp)
    finally:
        await reader.stop()


async def _deliver_after_losing_the_partition(stack: Stack, when: str) -> tuple[list[bytes], Any]:
    topic, group = f"sluice.test-{stack.tag}.revoked-{when}", f"revoked-{when}-{stack.tag}"
    await _one_partition_topic(stack, topic, [f"event-{n}".encode() for n in range(3)])
    consumer = await _group_consumer(stack, topic, group)
    try:
        tp, fetched = TopicPartition(topic, 0), list[Any]()
        deadline = time.monotonic() + DELIVERY_DEADLINE_S
        while len(fetched) < 3:  # one batch of three, as the old loop took up to 100
            assert time.monotonic() < deadline
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=3 - len(fetched))
            fetched += batches.get(tp, [])
        deliverer = _Revoking(consumer)
        if when == "before":  # lost between the fetch and the first delivery
            consumer.unsubscribe()
        await deliverer.handle_owned(consumer, tp, fetched)
    finally:
        await consumer.stop()
    committed = await _committed(stack, group, tp)
    return deliverer.handled, committed


@pytest.mark.parametrize(("when", "delivered"), [("before", []), ("during", [b"event-0"])])
def test_records_fetched_before_the_partition_was_lost_are_not_delivered(
    stack: Stack, when: str, delivered: list[bytes]
) -> None:
    handled, committed = asyncio.run(_deliver_after_losing_the_partition(stack, when))
    # Lost before: the assignment check delivers nothing; lost during event-0's delivery: its
    # commit is refused and event-1, event-2 are left to the next owner.
    assert handled == delivered
    assert committed is None  # the next owner starts at event-0


async def _deliver_while_postgresql_is_down(stack: Stack) -> tuple[list[int], Any, float]:
    topic, group = f"sluice.test-{stack.tag}.pg-down", f"pg-down-{stack.tag}"
    record = EventRecord(
        str(uuid.uuid4()), Event("registered_model", "created"), "2026-12-03T00:00:00Z", {}, "m"
    )
    await _one_partition_topic(stack, topic, [encode(record)])
    # A pool whose server does not exist: every read of the subscribers is refused.
    dead = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{Ports.free().api}/none", min_size=0
    )
    consumer = await _group_consumer(stack, topic, group)
    try:
        tp = TopicPartition(topic, 0)
        deliverer = Deliverer(
            WebhooksConfig(), dead, Sender(WebhooksConfig()), subscribers_deadline_s=1.0
        )
        offsets: list[int] = []
        started = time.monotonic()
        for _ in range(2):  # handed back, then fetched again by the next poll
            fetched = list[Any]()
            deadline = time.monotonic() + DELIVERY_DEADLINE_S
            while not fetched:
                assert time.monotonic() < deadline
                fetched = (await consumer.getmany(tp, timeout_ms=1000, max_records=1)).get(tp, [])
            offsets += [r.offset for r in fetched]
            await deliverer.handle_owned(consumer, tp, fetched)
        elapsed = time.monotonic() - started
    finally:
        await consumer.stop()
        await dead.close()
    committed = await _committed(stack, group, tp)
    return offsets, committed, elapsed


def test_an_event_whose_subscribers_cannot_be_read_is_fetched_again_not_held(
    stack: Stack,
) -> None:
    offsets, committed, elapsed = asyncio.run(_deliver_while_postgresql_is_down(stack))
    # Each handling gave up after its 1 s deadline and handed the record back: the loop kept
    # polling (so Kafka keeps the partition with it) and the event is neither lost nor committed.
    assert offsets == [0, 0]
    assert committed is None
    assert 2 * 1.0 <= elapsed < 2 * 1.0 + 2 * DELIVERY_DEADLINE_S
