"""Class 7 of issue 14 at the HTTP layer: request lines and headers as long as MLflow's UI and
clients send reach the handlers of every service, and what the HTTP parser itself refuses is
MLflow JSON, never aiohttp's plain text."""

from __future__ import annotations

import socket

import pytest
import requests

from sluice.http import MAX_FIELD_BYTES, MAX_LINE_BYTES
from tests.stack import Stack

pytestmark = pytest.mark.services

SERVICES = ("front", "api", "ingest")


def _ids(count: int) -> str:
    return "&".join(f"run_id={i:032x}" for i in range(count))


@pytest.mark.parametrize("service", SERVICES)
def test_ui_sized_query_reaches_the_handler(stack: Stack, service: str) -> None:
    # 1000 runs in the UI's compare view: ~40 KB of query string, far above aiohttp's 8190.
    url = f"{stack.url(service)}/ajax-api/2.0/mlflow/metrics/get-history-bulk?{_ids(1000)}"
    response = requests.get(url + "&metric_key=m", timeout=10)
    if service == "ingest":  # not its route: the handler that answers is its 404
        assert response.status_code == 404
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        return
    assert response.status_code == 400
    assert response.json()["message"] == (
        "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 1000 run_ids."
    )


@pytest.mark.parametrize("service", SERVICES)
def test_large_header_reaches_the_handler(stack: Stack, service: str) -> None:
    response = requests.get(
        f"{stack.url(service)}/api/2.0/mlflow/experiments/get",
        headers={"X-Large": "x" * 60_000},
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.status_code in (400, 404)  # the handler's own answer (missing id / ingest)


@pytest.mark.parametrize("service", SERVICES)
def test_over_long_request_line_is_mlflow_json(stack: Stack, service: str) -> None:
    query = "x=" + "a" * (MAX_LINE_BYTES + 10)
    response = requests.get(f"{stack.url(service)}/api/2.0/mlflow/runs/get?{query}", timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("Bad Request: ")


@pytest.mark.parametrize("service", SERVICES)
def test_over_long_header_is_mlflow_json(stack: Stack, service: str) -> None:
    response = requests.get(
        f"{stack.url(service)}/api/2.0/mlflow/runs/get",
        headers={"X-Large": "x" * (MAX_FIELD_BYTES + 10)},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("service", SERVICES)
def test_malformed_http_is_mlflow_json(stack: Stack, service: str) -> None:
    port = int(stack.url(service).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /api/2.0/mlflow/runs/get HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]  # HTTP/1.0: the parser never read a version
    assert status_line.split(b" ")[1] == b"400"
    assert b"application/json" in head
    assert b'"error_code":"INVALID_PARAMETER_VALUE"' in body
