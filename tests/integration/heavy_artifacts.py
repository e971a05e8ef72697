"""Heavy acceptance test, not collected by default (the name does not match ``test_*.py``):

    .venv/bin/pytest tests/integration/heavy_artifacts.py -p no:cacheprovider -s

A 200 MB file through ``log_artifact`` / ``download_artifacts`` on both backends, while the
serving api's resident memory is sampled: streaming means it must not grow by the file size."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from tests.integration.test_artifacts import round_trip_big_file, tracking_url
from tests.stack import Stack

HEAVY_FILE_MB = 200
MAX_RSS_GROWTH_MB = 80  # one S3 part (8 MB) plus aiohttp buffers; far below the file size

__all__ = ["tracking_url"]  # the parametrised fixture (local, s3), re-exported for this module


def _api_process(stack: Stack, tracking_url: str) -> psutil.Process:
    name = "api" if tracking_url == stack.url("front") else "api-s3"
    return psutil.Process(stack.processes[name].pid)


def test_200_mb_file_streams_both_ways(stack: Stack, tracking_url: str, tmp_path: Path) -> None:
    process = _api_process(stack, tracking_url)
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        round_trip_big_file(tracking_url, tmp_path, HEAVY_FILE_MB)
    finally:
        done.set()
        sampler.join()
    growth_mb = (peak[0] - baseline) / 2**20
    print(f"api RSS: baseline {baseline / 2**20:.0f} MB, peak growth {growth_mb:.0f} MB")
    assert growth_mb < MAX_RSS_GROWTH_MB
