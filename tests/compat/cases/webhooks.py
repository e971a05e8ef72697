"""Model registry webhooks (issue 14): create, list, get, update, delete, test.

Both servers run with MLflow's defaults: https only, private targets refused. A valid target
must therefore be a public address that needs no DNS (this machine resolves no public names):
an IP literal. Deliveries themselves are tested against a local receiver in
tests/integration/test_webhooks.py, where Sluice runs with private targets allowed.

list-webhooks has no filter: the cases that list with the default page size compare every
webhook of the server, so they hold only while the compat cases are the only ones creating
webhooks in the target's database (tests/integration/test_webhooks.py uses its own).
"""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import API, ajax_case, case, get, post
from tests.compat.model import Case, Step, step_endpoint

URL = "https://8.8.8.8/hook"
EVENT = {"entity": "REGISTERED_MODEL", "action": "CREATED"}


def _hook_step(method: str, tail: str = "", body: Any = None, **options: Any) -> Step:
    step: Step = {"method": method, "path": API + "webhooks/${hook}" + tail}
    if body is not None:
        step["json"] = body
    step.update(options)  # type: ignore[typeddict-item]
    return step


def create(expect: int = 200, **body: Any) -> Step:
    doc = {"name": "w-${uid}", "url": URL, "events": [EVENT], **body}
    options: dict[str, Any] = {"expect": expect}
    if expect == 200:
        options["capture"] = {"hook": "webhook.webhook_id"}
    return post("webhooks", doc, **options)


def refused(case_id: str, expect: int = 400, **body: Any) -> Case:
    return case(f"webhooks/create-{case_id}", create(expect=expect, **body))


def update(body: Any, expect: int = 200) -> Step:
    return _hook_step("PATCH", body=body, expect=expect)


_CREATE: list[Case] = [
    case(
        "webhooks/create-full-get",
        create(
            description="d",
            secret="s3cret",
            status="DISABLED",
            events=[
                {"entity": "MODEL_VERSION_TAG", "action": "SET"},
                {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"},
                {"entity": "PROMPT", "action": "CREATED"},
            ],
        ),
        _hook_step("GET", expect=200),
    ),
    case("webhooks/create-minimal", create(), _hook_step("GET", expect=200)),
    case("webhooks/create-enum-numbers", create(events=[{"entity": 2, "action": 1}], status=2)),
    case("webhooks/create-unknown-status-ignored", create(status="NOPE")),
    case("webhooks/create-leading-space-url", create(url=" https://8.8.8.8/x")),
    case("webhooks/create-trailing-space-url", create(url="https://8.8.8.8/x ")),
    case("webhooks/create-userinfo-port", create(url="https://u:p@8.8.8.8:8443/x")),
    case("webhooks/create-name-63", create(name="a" * 63)),
    refused("url-http", url="http://8.8.8.8/hook"),
    refused("url-ftp", url="ftp://8.8.8.8/hook"),
    refused("url-no-scheme", url="8.8.8.8/hook"),
    refused("url-blank", url="   "),
    refused("url-empty", url=""),
    refused("url-no-host", url="https:///x"),
    refused("url-malformed-ipv6", url="https://[::1/x"),
    refused("url-loopback", url="https://127.0.0.1/x"),
    refused("url-loopback-name", url="https://localhost/x"),
    refused("url-loopback-short", url="https://127.1/x"),
    refused("url-loopback-octal", url="https://0177.0.0.1/x"),
    refused("url-ipv6-loopback", url="https://[::1]/x"),
    refused("url-ipv4-mapped-private", url="https://[::ffff:10.0.0.1]/x"),
    refused("url-link-local", url="https://169.254.169.254/latest"),
    refused("url-private", url="https://10.1.2.3/x"),
    refused("url-unresolvable", url="https://no-such-host.invalid/x"),
    refused("url-inner-space", url="https://8.8.8.8 /x"),
    refused("url-not-string", url=5),
    refused("name-dash-first", name="-w"),
    refused("name-64", name="a" * 64),
    refused("name-space", name="a b"),
    refused("name-empty", name=""),
    refused("name-not-string", name=5),
    refused("events-empty", events=[]),
    refused("events-not-list", events="x"),
    refused("events-bad-combination", events=[{"entity": "REGISTERED_MODEL", "action": "SET"}]),
    refused("events-alias-set", events=[{"entity": "MODEL_VERSION_ALIAS", "action": "SET"}]),
    # MLflow crashes (500) on these; Sluice must answer 400 (tests/compat/compare.py).
    refused("events-unspecified", expect=500, events=[{}]),
    refused("events-unknown-entity", expect=500, events=[{"entity": "FOO", "action": "CREATED"}]),
    refused("events-repeated", events=[EVENT, EVENT]),
    case(
        "webhooks/create-missing-name",
        post("webhooks", {"url": URL, "events": [EVENT]}, expect=400),
    ),
    case(
        "webhooks/create-missing-url",
        post("webhooks", {"name": "w", "events": [EVENT]}, expect=400),
    ),
    case("webhooks/create-missing-events", post("webhooks", {"name": "w", "url": URL}, expect=400)),
]

_READ: list[Case] = [
    case("webhooks/get-missing", get("webhooks/nope-${uid}", expect=404)),
    case(
        "webhooks/list-newest-first-and-pages",
        create(name="first-${uid}"),
        create(name="second-${uid}"),
        get("webhooks", {"max_results": "1"}, expect=200),
    ),
    case(
        "webhooks/list-max-results-zero-is-default", create(), get("webhooks", {"max_results": "0"})
    ),
    case("webhooks/list-max-results-over", get("webhooks", {"max_results": "1001"}, expect=400)),
    case("webhooks/list-max-results-negative", get("webhooks", {"max_results": "-1"}, expect=400)),
    case("webhooks/list-max-results-word", get("webhooks", {"max_results": "x"}, expect=400)),
    case("webhooks/list-bad-token", get("webhooks", {"page_token": "garbage"}, expect=400)),
]

_UPDATE: list[Case] = [
    case("webhooks/update-nothing", create(description="d"), update({})),
    case(
        "webhooks/update-description-cleared", create(description="d"), update({"description": ""})
    ),
    case(
        "webhooks/update-empty-name-url-events-unchanged",
        create(),
        update({"name": "", "url": "", "events": []}),
    ),
    case(
        "webhooks/update-all",
        create(),
        update(
            {
                "name": "renamed-${uid}",
                "description": "new",
                "url": "https://1.1.1.1/other",
                "events": [
                    {"entity": "MODEL_VERSION", "action": "CREATED"},
                    {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"},
                ],
                "secret": "new",
                "status": "DISABLED",
            }
        ),
        _hook_step("GET", expect=200),
    ),
    case(
        "webhooks/update-status-unknown-ignored", create(status="DISABLED"), update({"status": "X"})
    ),
    case("webhooks/update-bad-name", create(), update({"name": "-x"}, expect=400)),
    case("webhooks/update-url-http", create(), update({"url": "http://8.8.8.8/"}, expect=400)),
    case("webhooks/update-url-blank", create(), update({"url": "   "}, expect=400)),
    case("webhooks/update-url-private", create(), update({"url": "https://10.0.0.1/"}, expect=400)),
    case(
        "webhooks/update-bad-events",
        create(),
        update({"events": [{"entity": "MODEL_VERSION", "action": "SET"}]}, expect=400),
        _hook_step("GET", expect=200),
    ),
    case("webhooks/update-name-not-string", create(), update({"name": 3}, expect=400)),
    case(
        "webhooks/update-missing", {**update({}, expect=404), "path": API + "webhooks/nope-${uid}"}
    ),
]

_DELETE_TEST: list[Case] = [
    case(
        "webhooks/delete-then-gone",
        create(),
        _hook_step("DELETE", expect=200),
        _hook_step("GET", expect=404),
        _hook_step("DELETE", expect=404),
        update({}, expect=404),
        _hook_step("POST", "/test", body={}, expect=404),
    ),
    case(
        "webhooks/delete-missing",
        {"method": "DELETE", "path": API + "webhooks/nope-${uid}", "expect": 404},
    ),
    case("webhooks/test-missing", post("webhooks/nope-${uid}/test", {}, expect=404)),
    case(
        "webhooks/test-bad-event",
        create(),
        _hook_step(
            "POST",
            "/test",
            body={"event": {"entity": "MODEL_VERSION", "action": "SET"}},
            expect=400,
        ),
    ),
    case(
        "webhooks/test-unspecified-event", create(), _hook_step("POST", "/test", body={"event": {}})
    ),
    case(
        "webhooks/test-event-not-object", create(), _hook_step("POST", "/test", body={"event": "x"})
    ),
]

CASES: list[Case] = [
    *_CREATE,
    *_READ,
    *_UPDATE,
    *_DELETE_TEST,
    ajax_case(_CREATE[0]),
    ajax_case(_READ[1]),
    ajax_case(_UPDATE[3]),
    ajax_case(_DELETE_TEST[0]),
]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
