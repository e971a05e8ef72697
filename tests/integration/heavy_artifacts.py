"""Heavy acceptance test, not collected by default (the name does not match ``test_*.py``):

    .venv/bin/pytest tests/integration/heavy_artifacts.py -p no:cacheprovider -s

A 200 MB file through ``log_artifact`` / ``download_artifacts`` on both backends."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_artifacts import round_trip_big_file, tracking_url

HEAVY_FILE_MB = 200

__all__ = ["tracking_url"]  # the parametrised fixture (local, s3), re-exported for this module


def test_200_mb_file_streams_both_ways(tracking_url: str, tmp_path: Path) -> None:
    round_trip_big_file(tracking_url, tmp_path, HEAVY_FILE_MB)
