"""Heavy acceptance test, not collected by default (the name does not match ``test_*.py``):

    .venv/bin/pytest tests/integration/heavy_artifacts.py -p no:cacheprovider -s

A 200 MB file through ``log_artifact`` (multipart: the client's default 10 MB parts, so 20 of
them) and ``download_artifacts`` (one streaming GET) on both backends, while the serving api's
resident memory is sampled: streaming means it must not grow by the file size. On a local root
every part goes through the api; on S3 the parts go to S3 and the api sees create + complete."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import pytest

from tests.integration.test_artifacts import (
    api_url,
    assert_went_multipart,
    request_counts,
    round_trip_big_file,
    tracking_url,
)
from tests.stack import Stack

HEAVY_FILE_MB = 200
PART_MB = 10  # MLflow's default MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE
MAX_RSS_GROWTH_MB = 80  # a few 1 MB part chunks (or one 8 MB S3 part) plus aiohttp buffers

# The parametrised fixtures (local, s3) and the api behind each, re-exported for this module.
__all__ = ["api_url", "tracking_url"]


def _api_process(stack: Stack, tracking_url: str) -> psutil.Process:
    name = "api" if tracking_url == stack.url("front") else "api-s3"
    return psutil.Process(stack.processes[name].pid)


def test_200_mb_file_streams_both_ways(
    stack: Stack,
    tracking_url: str,
    api_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", raising=False)  # server-info
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(100 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(PART_MB << 20))
    process = _api_process(stack, tracking_url)
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    before = request_counts(api_url)
    try:
        round_trip_big_file(tracking_url, tmp_path, HEAVY_FILE_MB)
    finally:
        done.set()
        sampler.join()
    delta = request_counts(api_url) - before
    delta.pop(("/api/2.0/mlflow-artifacts/artifacts/{artifact_path}", "200"))  # the download
    delta.pop(("/api/2.0/mlflow-artifacts/artifacts", "200"), None)  # its listing
    delta = +delta
    local = tracking_url == stack.url("front")
    parts = HEAVY_FILE_MB // PART_MB
    print(f"multipart: {parts} parts, {'through the api' if local else 'straight to S3'}")
    assert_went_multipart(delta, parts_via_api=parts if local else 0)
    growth_mb = (peak[0] - baseline) / 2**20
    print(f"api RSS: baseline {baseline / 2**20:.0f} MB, peak growth {growth_mb:.0f} MB")
    assert growth_mb < MAX_RSS_GROWTH_MB
