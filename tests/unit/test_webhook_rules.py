"""Webhook rules, signing and retry policy (pure). Expected values were computed with MLflow
3.17.2's own functions (``_generate_hmac_signature``, ``_is_public_ip``) in the reference venv."""

from __future__ import annotations

import json

import pytest

from api.webhooks import rules, signing
from api.webhooks.events import EXAMPLES, model_created, version_created, version_tag_set
from api.webhooks.sender import Attempt, backoff_s, retry_after
from schemas.mlflow_errors import MlflowError
from schemas.webhook_events import (
    VALID_ACTIONS,
    Event,
    EventRecord,
    InvalidEventRecord,
    decode,
    encode,
)


def test_signature_is_mlflows() -> None:
    body = (
        '{"entity": "registered_model", "action": "created", '
        '"timestamp": "2026-01-01T00:00:00+00:00", "data": {"name": "m"}}'
    )
    delivery = "5f0c3a3e-0000-4000-8000-000000000001"
    assert (
        signing.signature("whsec", delivery, "1700000000", body)
        == "v1,tBubtQ+S2Ekz7mI1jNk8D0eU0uS1xk5ERzjiNbORmzA="
    )
    headers = signing.headers("whsec", delivery, 1700000000, body)
    assert headers["X-MLflow-Signature"].startswith("v1,")
    assert headers["X-MLflow-Timestamp"] == "1700000000"
    assert "X-MLflow-Signature" not in signing.headers(None, delivery, 1700000000, body)


def test_body_is_json_dumps_spaced_and_delivery_ids_are_stable() -> None:
    record = EventRecord("e1", Event("prompt", "created"), "t", {"name": "p"}, "p")
    assert signing.body_of(record) == json.dumps(
        {"entity": "prompt", "action": "created", "timestamp": "t", "data": {"name": "p"}}
    )
    assert signing.delivery_id("e1", "w1") == signing.delivery_id("e1", "w1")
    assert signing.delivery_id("e1", "w1") != signing.delivery_id("e1", "w2")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::1", False),
        ("64:ff9b::a00:1", False),
        ("100.64.0.1", False),
        ("169.254.1.1", False),
        ("::1", False),
        ("2001:4860:4860::8888", True),
        ("0.0.0.0", False),
        ("fe80::1", False),
    ],
)
def test_public_addresses_as_mlflow_decides(address: str, public: bool) -> None:
    assert rules.is_public(address) is public


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://8.8.8.8/", "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."),
        ("  ", "Webhook URL cannot be empty or just whitespace: '  '"),
        ("https:///x", "Webhook URL must include a hostname: 'https:///x'"),
        ("https://[::1/x", "Invalid webhook URL 'https://[::1/x': ValueError('Invalid IPv6 URL')"),
    ],
)
def test_url_syntax_messages(url: str, message: str) -> None:
    with pytest.raises(MlflowError) as raised:
        rules.parse_url(url, ("https",))
    assert raised.value.message == message


def test_url_target_and_ports() -> None:
    assert rules.parse_url(" https://a.example/x", ("https",)) == rules.Target(
        " https://a.example/x", "a.example", 443
    )
    assert rules.parse_url("http://h:8080/", ("http",)).port == 8080


def test_names() -> None:
    rules.validate_name("a" * 63)
    rules.validate_name("a.b_c-1")
    for bad in ("", "-a", "a-", "a" * 64, "a b"):
        with pytest.raises(MlflowError):
            rules.validate_name(bad)


def test_events() -> None:
    assert rules.parse_events([{"entity": "MODEL_VERSION_TAG", "action": 4}]) == [
        Event("model_version_tag", "set")
    ]
    with pytest.raises(MlflowError, match=r"Valid actions are: \['created'\]"):
        rules.parse_events([{"entity": "REGISTERED_MODEL", "action": "SET"}])
    repeated = {"entity": 1, "action": 1}
    bad_lists: list[list[object]] = [[], [{}], [{"entity": "FOO"}], ["x"], [repeated, repeated]]
    for bad in bad_lists:
        with pytest.raises(MlflowError):
            rules.parse_events(bad)
    assert set(EXAMPLES) == {Event(e, a) for e, actions in VALID_ACTIONS.items() for a in actions}


def test_payloads_follow_mlflows_handlers() -> None:
    assert model_created("m", [("k", "v")], "") == (
        Event("registered_model", "created"),
        {"name": "m", "tags": {"k": "v"}, "description": ""},
    )
    prompt = [("mlflow.prompt.is_prompt", "TRUE"), ("_mlflow_prompt_type", "text"), ("k", "v")]
    assert model_created("p", prompt, "d")[1]["tags"] == {"k": "v"}
    fields = {"description": "", "source": "runs:/r/m", "run_id": ""}
    assert version_created("m", 3, fields, [])[1] == {
        "name": "m",
        "version": "3",
        "source": "runs:/r/m",
        "run_id": None,
        "tags": {},
        "description": None,
    }
    assert version_tag_set(True, "p", "01", "k", "v")[0] == Event("prompt_version_tag", "set")


def test_records_round_trip_and_refuse_other_versions() -> None:
    record = EventRecord("e", Event("prompt", "created"), "t", {"a": [1]}, "key")
    assert decode(encode(record), b"key") == record
    for raw in (b"nope", b'{"v": 2}', b'{"v": 1, "event_id": "e"}'):
        with pytest.raises(InvalidEventRecord):
            decode(raw, None)


def test_retry_policy() -> None:
    assert Attempt(status=503).retryable and Attempt(status=429).retryable
    assert not Attempt(status=404).retryable and Attempt(status=302).delivered
    assert Attempt(error="x", retryable_error=True).retryable
    assert not Attempt(error="refused: private").retryable
    assert [backoff_s(n, 1.0, 60.0, 0.0, None) for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]
    assert backoff_s(1, 1.0, 60.0, 0.5, 3.0) == 3.0
    assert backoff_s(1, 1.0, 60.0, 0.5, 600.0) == 60.0
    assert retry_after("2") == 2.0 and retry_after("soon") is None and retry_after(None) is None
