"""Artifact download headers as MLflow 3.17.2 sends them (api/artifacts/download_headers.py);
the differential cases (tests/compat/cases/gen_artifacts.py) compare them with the real server."""

from __future__ import annotations

import pytest

from api.artifacts.download_headers import content_disposition, content_type, download_headers


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MLmodel", "text/plain"),
        ("mlproject", "text/plain"),  # MLflow's constant is lower-case
        ("MLproject", "application/octet-stream"),
        ("conda.yaml", "text/plain"),
        ("f.json", "text/plain"),  # MLflow's text list wins over mimetypes' application/json
        ("f.py", "text/plain"),
        ("mlmodel", "application/octet-stream"),  # case-sensitive
        ("f.gz", "application/octet-stream"),  # an encoding is not a type
        ("a.tar.gz", "application/x-tar"),
        ("f.png", "image/png"),
        ("noextension", "application/octet-stream"),
        (".hidden", "application/octet-stream"),
    ],
)
def test_content_type(name: str, expected: str) -> None:
    assert content_type(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("f.txt", "attachment; filename=f.txt"),
        ("with space.txt", 'attachment; filename="with space.txt"'),
        ('quote".txt', 'attachment; filename="quote\\".txt"'),
        ("naïve.png", "attachment; filename=naive.png; filename*=UTF-8''na%C3%AFve.png"),
        (
            "日本語.txt",
            "attachment; filename=.txt; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ("日本語", "attachment; filename=download; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E"),
    ],
)
def test_content_disposition(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


def test_every_download_is_an_unsniffed_attachment() -> None:
    assert download_headers("x.html")["X-Content-Type-Options"] == "nosniff"
