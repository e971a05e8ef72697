"""The dev proxy's own answer when an upstream is down: MLflow's 429 + Retry-After through the
one error edge (sluice/http.py), which the MLflow client retries."""

from __future__ import annotations

import socket

from aiohttp.test_utils import TestClient, TestServer

from sluice import config
from sluice.commands.front import build_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens


async def test_an_unreachable_upstream_is_a_retryable_429() -> None:
    settings = config.load(
        {
            "SLUICE_API_HOST": "127.0.0.1",
            "SLUICE_API_PORT": str(_closed_port()),
            "SLUICE_INGEST_HOST": "127.0.0.1",
            "SLUICE_INGEST_PORT": str(_closed_port()),
        }
    )
    async with TestClient(TestServer(build_app(settings))) as client:
        resp = await client.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": "r"})
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.content_type == "application/json"
        assert await resp.json() == {
            "error_code": "REQUEST_LIMIT_EXCEEDED",
            "message": "Service restarting; retry.",
        }
        resp = await client.get("/api/2.0/mlflow/experiments/get?experiment_id=0")
        assert resp.status == 429
