"""Disk space of a local artifact root, read when /metrics is scraped (alert
SluiceArtifactRootDiskLow). An S3 root has no disk to watch: both gauges stay 0, so the
alert's free/size ratio is undefined and never fires."""

from __future__ import annotations

import shutil
from pathlib import Path

from sluice import metrics


def _existing(path: Path) -> Path:
    """The root, or its nearest existing parent (the root is created on the first upload)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def watch_artifact_root(root: str) -> None:
    if "://" in root:
        return
    path = Path(root).resolve()
    metrics.api_artifact_root_free_bytes.set_function(
        lambda: shutil.disk_usage(_existing(path)).free
    )
    metrics.api_artifact_root_size_bytes.set_function(
        lambda: shutil.disk_usage(_existing(path)).total
    )
