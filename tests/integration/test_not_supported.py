"""Every route of the MLflow 3 GenAI families Sluice leaves out answers NOT_IMPLEMENTED (501)
naming its feature, through the single tracking URI, and server-info agrees (issue 14). The AI
gateway's answers are also compared with MLflow's own (tests/compat/cases/not_supported.py)."""

from __future__ import annotations

import re

import pytest
import requests

from schemas.not_supported_routes import NOT_SUPPORTED_ROUTES
from schemas.route_record import Route

pytestmark = pytest.mark.services

FEATURES = {
    "gateway": "AI Gateway",
    "issues": "Issues",
    "scorers": "Scorers and GenAI evaluation",
    "evaluation_datasets": "Evaluation datasets",
    "prompt_optimization": "Prompt optimization",
}
CASES = [(route, url) for route in NOT_SUPPORTED_ROUTES for url in route.urls()]


@pytest.mark.parametrize(("route", "url"), CASES, ids=[f"{r.method} {u}" for r, u in CASES])
def test_genai_route_answers_not_implemented(route: Route, url: str, sluice_url: str) -> None:
    filled = re.sub(r"\{\w+\}", "x", url)
    body: dict[str, str] | None = {} if route.method in ("POST", "PUT", "PATCH") else None
    response = requests.request(route.method, sluice_url + filled, json=body, timeout=10)
    assert response.status_code == 501, response.text
    answer = response.json()
    assert answer["error_code"] == "NOT_IMPLEMENTED"
    assert FEATURES[route.handler.rpartition(":")[2]] in answer["message"]


def test_server_info_says_the_gateway_is_off(sluice_url: str) -> None:
    info = requests.get(sluice_url + "/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["features_enabled"] == {"gateway": False}
