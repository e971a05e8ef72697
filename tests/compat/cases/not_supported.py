"""The AI gateway's routes answer NOT_IMPLEMENTED (501) naming the feature, as the reference
does with the gateway disabled (scripts/mlflow-ref.sh); generated from the route table. The
other GenAI families Sluice leaves out are implemented by the reference, so their 501s are
checked against Sluice alone (tests/integration/test_not_supported.py)."""

from __future__ import annotations

import re

from schemas.not_supported_routes import NOT_SUPPORTED_FAMILIES
from schemas.route_record import Route
from tests.compat.cases._build import case
from tests.compat.model import Case, Step, step_endpoint


def _step(route: Route, url: str) -> Step:
    filled = re.sub(r"\{\w+\}", "${uid}", url)
    step: Step = {
        "method": route.method,
        "path": filled,
        "expect": 501,
        "message_regex": "AI Gateway",
    }
    if route.method in ("POST", "PUT", "PATCH"):
        step["json"] = {}
    return step


_GATEWAY = [
    Route(method, path, "api.not_supported:gateway", version="3.0", ajax_only=ajax_only)
    for method, path, ajax_only in NOT_SUPPORTED_FAMILIES["gateway"]
]
CASES: list[Case] = [
    case(f"not-supported/{route.method.lower()}-{url.removeprefix('/')}", _step(route, url))
    for route in _GATEWAY
    for url in route.urls()
]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
