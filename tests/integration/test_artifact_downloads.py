"""A download is the file at its path: never a pre-compressed sibling aiohttp would pick for a
client that accepts gzip (found by issue 14's artifact cases), with MLflow's headers."""

from __future__ import annotations

import gzip
import uuid

import pytest
import requests

pytestmark = pytest.mark.services


def test_download_ignores_a_gz_sibling(sluice_url: str) -> None:
    base = f"{sluice_url}/api/2.0/mlflow-artifacts/artifacts/{uuid.uuid4().hex}/"
    assert requests.put(base + "a.txt", data=b"the real a.txt", timeout=10).status_code == 200
    sibling = gzip.compress(b"another artifact")
    assert requests.put(base + "a.txt.gz", data=sibling, timeout=10).status_code == 200
    response = requests.get(base + "a.txt", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.content == b"the real a.txt"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Disposition"] == "attachment; filename=a.txt"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_upload_answers_an_empty_body(sluice_url: str) -> None:
    url = f"{sluice_url}/api/2.0/mlflow-artifacts/artifacts/{uuid.uuid4().hex}/MLmodel"
    response = requests.put(url, data=b"flavors: {}", timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert requests.get(url, timeout=10).headers["Content-Type"] == "text/plain"
