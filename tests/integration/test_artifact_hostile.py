"""Hostile artifact paths (issue 4, acceptance 4), sent byte for byte (http.client: no client-side
normalisation) to both backends, on the plain routes and the multipart ones (``mpu/*`` tails,
file names in the body, upload ids in the local part route). Every request must be refused with
an MLflow error, nothing outside the root (local) or prefix (S3) may be written, read or deleted.

All of them go to the api directly and through the front, which forwards the raw request target
(``sluice/commands/front.py``), so raw and ``%2e``-encoded dot segments reach the api and are refused
there, as behind a load balancer that forwards the target unchanged."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import S3
from tests.stack import Stack

SECRET = f"canary-secret-{uuid.uuid4().hex}"
MARK = f"pwned{uuid.uuid4().hex[:6]}"

# URL tails after /api/2.0/mlflow-artifacts/artifacts/ (raw, as on the wire).
HOSTILE_TAILS = [
    f"../{MARK}-1",
    f"..%2f{MARK}-2",
    f"%2e%2e/{MARK}-3",
    f"%2e%2e%2f{MARK}-4",
    f"%252e%252e%252f{MARK}-5",
    f"%25252e%25252e/{MARK}-6",
    f"0/%2e%2e/%2e%2e/{MARK}-7",
    f"0/%252e%252e/%252e%252e/{MARK}-8",
    f"..%5c{MARK}-9",
    f"0%5c..%5c..%5c{MARK}-10",
    f"%2e%2e%5c%2e%2e%5c{MARK}-11",
    f"%2f{MARK}-12",
    f"%2ftmp%2f{MARK}-13",
    f"0/x%23/../../{MARK}-14",
    f"0/x%2523/%2e%2e/{MARK}-15",
    f"0/a%00{MARK}-16",
    f"0/a%2500{MARK}-17",
    f"0/%0a{MARK}-18",
    f"C:%5c{MARK}-19",
    f"C:/{MARK}-20",
    f"%c0%ae%c0%ae/{MARK}-21",
    f"0/./{MARK}-22",
    f"0//{MARK}-23",
    f"file:%2f%2f%2ftmp%2f{MARK}-24",
    "..",
    "%2e%2e",
    "canary.txt/../..",
    "../canary.txt",
    "..%2fcanary.txt",
    "%252e%252e%252fcanary.txt",
    "../canary-dir",
    "%2e%2e%2fcanary-dir",
]
HOSTILE_LIST_PATHS = ["..", "../", "/", "/etc", "%2e%2e", "0/../..", "..\\..", "#", "a\x00", "C:\\"]


# Multipart: the same tails as directories of mpu/create|complete|abort, hostile file names in
# the body's ``path`` (its basename is the file name), hostile upload ids in the part route.
MPU_ACTIONS = ("create", "complete", "abort")
HOSTILE_NAMES = [
    "..",
    "/tmp/..",
    "C:\\..",
    "%2e%2e",
    "%252e%252e",
    f"a\x00{MARK}",
    f"#{MARK}",
    f"{MARK}%2f..%2f..",
    f"x%00{MARK}",
    f"\n{MARK}",
    "/tmp/",
    "",
]
HOSTILE_UPLOAD_IDS = ["..", "%2e%2e", "..%2f..%2fetc", "%252e%252e%252f", "a%00b", "x" * 43]


def _request(
    base: str,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _assert_mlflow_error(status: int, body: bytes, what: str) -> None:
    assert status in (400, 404), f"{what}: {status} {body[:200]!r}"
    assert SECRET.encode() not in body
    if status == 404 and body == b"404: Not Found":
        # The front's catch-all route (".*") does not match a path holding a newline, so it
        # answers aiohttp's plain 404, which the MLflow client reads as ENDPOINT_NOT_FOUND.
        return
    try:
        doc: dict[str, Any] = json.loads(body)
    except ValueError:
        raise AssertionError(f"{what}: not an MLflow JSON error: {status} {body[:200]!r}") from None
    assert doc["error_code"] in (
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_DOES_NOT_EXIST",
        "ENDPOINT_NOT_FOUND",
    ), (what, doc)
    assert SECRET.encode() not in body


def _send_all(base: str) -> int:
    sent = 0
    prefix = "/api/2.0/mlflow-artifacts/artifacts/"
    for tail in HOSTILE_TAILS:
        for method in ("PUT", "GET", "DELETE"):
            body = f"{MARK} written".encode() if method == "PUT" else None
            status, reply = _request(base, method, prefix + tail, body)
            _assert_mlflow_error(status, reply, f"{method} {tail}")
            sent += 1
    for path in HOSTILE_LIST_PATHS:
        query = urllib.parse.urlencode({"path": path})
        status, reply = _request(base, "GET", f"/api/2.0/mlflow-artifacts/artifacts?{query}")
        _assert_mlflow_error(status, reply, f"list {path!r}")
        sent += 1
    return sent


def _created(base: str, endpoint: str, body: dict[str, str], field: str) -> str:
    status, reply = _request(
        base, "POST", f"/api/2.0/mlflow/{endpoint}", json.dumps(body).encode(), _JSON
    )
    assert status == 200, reply
    doc: Any = json.loads(reply)
    for key in field.split("."):
        doc = doc[key]
    return str(doc)


_JSON = {"Content-Type": "application/json"}


def _send_ui(base: str) -> int:
    """The same hostile paths through the web UI's artifact routes (issue 12), as the decoded
    value of their path parameters, for a real run and logged model (so the path check, not a
    missing owner, is what refuses them)."""
    run = _created(base, "runs/create", {"experiment_id": "0"}, "run.info.run_id")
    model = _created(base, "logged-models", {"experiment_id": "0"}, "model.info.model_id")
    targets = (
        f"/get-artifact?run_uuid={run}&path=",
        f"/ajax-api/2.0/mlflow/artifacts/list?run_id={run}&path=",
        f"/ajax-api/2.0/mlflow/logged-models/{model}/artifacts/files?artifact_file_path=",
        f"/ajax-api/2.0/mlflow/logged-models/{model}/artifacts/directories"
        "?artifact_directory_path=",
    )
    sent = 0
    for tail in HOSTILE_TAILS + [urllib.parse.quote(p) for p in HOSTILE_LIST_PATHS]:
        for target in targets:
            # The tail as sent in a URL path: the server decodes the query value once, too.
            status, reply = _request(base, "GET", target + tail.replace("&", "%26"))
            if (status == 200 and "list" in target) or "directories" in target:
                assert json.loads(reply).get("files") in (None, []), (target, tail, reply)
                assert SECRET.encode() not in reply
            else:
                _assert_mlflow_error(status, reply, f"{target}{tail}")
            sent += 1
    return sent


def _mpu_body(name: str) -> bytes:
    return json.dumps(
        {
            "path": name,
            "num_parts": 1,
            "upload_id": "u" * 43,
            "parts": [{"part_number": 1, "etag": "0" * 32}],
        }
    ).encode()


def _send_mpu(base: str) -> int:
    sent = 0
    json_type = {"Content-Type": "application/json"}
    for tail in HOSTILE_TAILS:
        for action in MPU_ACTIONS:
            target = f"/api/2.0/mlflow-artifacts/mpu/{action}/{tail}"
            status, reply = _request(base, "POST", target, _mpu_body(f"{MARK}.bin"), json_type)
            _assert_mlflow_error(status, reply, f"mpu/{action} {tail}")
            sent += 1
    for name in HOSTILE_NAMES:
        for action in MPU_ACTIONS:
            target = f"/api/2.0/mlflow-artifacts/mpu/{action}/0/{MARK}-dir"
            status, reply = _request(base, "POST", target, _mpu_body(name), json_type)
            assert status == 400, (action, name, status, reply)
            _assert_mlflow_error(status, reply, f"mpu/{action} path={name!r}")
            sent += 1
    for upload_id in HOSTILE_UPLOAD_IDS:
        target = f"/api/2.0/mlflow-artifacts/mpu/part/{upload_id}/1"
        status, reply = _request(base, "PUT", target, f"{MARK} part".encode())
        _assert_mlflow_error(status, reply, f"part {upload_id}")
        sent += 1
    return sent


def _marked_files(top: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(top) for f in files if MARK in f]


def test_hostile_paths_local(stack: Stack, sluice_url: str) -> None:
    root = stack.state_dir / f"artifacts-{stack.tag}"
    canary = stack.state_dir / "canary.txt"
    canary.write_text(SECRET)
    canary_dir = stack.state_dir / "canary-dir"
    canary_dir.mkdir(exist_ok=True)
    (canary_dir / "keep.txt").write_text(SECRET)
    (root / "0").mkdir(parents=True, exist_ok=True)

    sent = _send_all(stack.url("api")) + _send_mpu(stack.url("api")) + _send_ui(stack.url("api"))
    via_front = _send_all(sluice_url) + _send_mpu(sluice_url) + _send_ui(sluice_url)

    assert sent == via_front >= 200, (sent, via_front)
    assert canary.read_text() == SECRET
    assert (canary_dir / "keep.txt").read_text() == SECRET
    outside = [p for p in _marked_files(Path("/tmp")) + _marked_files(stack.state_dir)]
    assert outside == [], outside
    assert not list(Path("/").glob(f"{MARK}*"))


def test_hostile_paths_s3(s3: S3, s3_services: dict[str, str]) -> None:
    client: Any = s3.client()
    client.put_object(Bucket=s3.bucket, Key="outside/canary.txt", Body=SECRET.encode())
    client.put_object(Bucket=s3.bucket, Key="root/canary.txt", Body=SECRET.encode())

    api, front = s3_services["api"], s3_services["front"]
    sent = _send_all(api) + _send_mpu(api) + _send_ui(api)
    via_front = _send_all(front) + _send_mpu(front) + _send_ui(front)

    assert sent == via_front >= 200, (sent, via_front)
    uploads = client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads if MARK in u["Key"]] == []
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
        for o in page.get("Contents", [])
    ]
    assert "outside/canary.txt" in keys and "root/canary.txt" in keys
    assert [k for k in keys if MARK in k] == []
    assert all(k.startswith(f"{s3.prefix}/") or k.endswith("canary.txt") for k in keys), keys


@pytest.mark.parametrize("url_fixture", ["sluice_url", "s3_sluice_url"])
def test_ordinary_names_still_work(url_fixture: str, request: pytest.FixtureRequest) -> None:
    base: str = request.getfixturevalue(url_fixture)
    target = f"/api/2.0/mlflow-artifacts/artifacts/0/{MARK}-ok/a%20b..c.txt"
    status, _ = _request(base, "PUT", target, b"fine")
    assert status == 200
    status, body = _request(base, "GET", target)
    assert (status, body) == (200, b"fine")
    status, _ = _request(base, "DELETE", f"/api/2.0/mlflow-artifacts/artifacts/0/{MARK}-ok")
    assert status == 200
