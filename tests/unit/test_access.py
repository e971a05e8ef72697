"""Access rules: generated from the route table, so a new route cannot be added unprotected."""

from __future__ import annotations

import pytest

from schemas.access import RULES, Level, Resource, Rule, allowed
from schemas.routes import ROUTES
from sluice.identity import hash_password, parse_basic, verify_password
from sluice.limits import RateLimiter


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_has_an_access_rule(route: object) -> None:
    assert route.handler in RULES  # type: ignore[attr-defined]


def test_only_probes_and_capability_urls_are_public() -> None:
    # upload_multipart_part: a local part URL carries its own credential (the upload id).
    # ui_static_file: the UI's scripts and styles, public as with MLflow's auth app.
    public = {name for name, rule in RULES.items() if rule.public}
    assert public == {
        "api.server_info:server_info",
        "api.artifacts.handlers:upload_multipart_part",
        "api.ui.bundle:ui_static_file",
    }


def test_every_access_rule_belongs_to_a_route() -> None:
    """Rules are keyed like the route table; a rule nothing routes to is a stale key."""
    assert set(RULES) == {route.handler for route in ROUTES}


@pytest.mark.parametrize(
    ("rule_level", "admin", "granted", "default", "ok"),
    [
        (Level.READ, False, None, Level.READ, True),
        (Level.EDIT, False, None, Level.READ, False),
        (Level.EDIT, False, Level.EDIT, Level.READ, True),
        (Level.MANAGE, False, Level.EDIT, Level.READ, False),
        (Level.READ, False, Level.NO_PERMISSIONS, Level.READ, False),
        (Level.MANAGE, True, Level.NO_PERMISSIONS, Level.READ, True),
        (Level.READ, False, None, Level.NO_PERMISSIONS, False),
    ],
)
def test_decision_table(
    rule_level: Level, admin: bool, granted: Level | None, default: Level, ok: bool
) -> None:
    assert allowed(Rule(Resource.EXPERIMENT, rule_level), admin, granted, default) is ok


def test_resource_free_rules_only_need_authentication() -> None:
    assert allowed(
        Rule(Resource.NONE, Level.MANAGE), False, Level.NO_PERMISSIONS, Level.NO_PERMISSIONS
    )


def test_passwords_are_salted_and_verified() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second
    assert verify_password("s3cret", first) and not verify_password("wrong", first)
    assert not verify_password("s3cret", "garbage")


def test_basic_header_parsing() -> None:
    assert parse_basic("Ym9iOnB3OmQ=") == ("bob", "pw:d")
    assert parse_basic("not base64!") is None
    assert parse_basic("Ym9i") is None  # "bob" without a colon


def test_rate_limiter_is_a_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=lambda: now[0])
    assert [limiter.take("u") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("u") == pytest.approx(0.5)
    assert limiter.take("other") == 0  # buckets are per user
    now[0] = 0.5
    assert limiter.take("u") == 0
    assert RateLimiter(rate_per_s=0, burst=1).take("u") == 0  # 0 = unlimited
