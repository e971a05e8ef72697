"""What a running process says about itself: version, schema, configuration hash.

``sluice_build_info{version, schema, config_hash}`` is 1 on every service's /metrics, and
``/health/config`` shows the effective configuration without secrets, so `sluice doctor` (and
an operator with curl) can tell instances that drifted apart."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from sluice import metrics, schema
from sluice.config import Settings
from sluice.settings_doc import config_hash, effective


def version() -> str:
    try:
        return metadata.version("sluice")
    except metadata.PackageNotFoundError:
        return "unknown"


def describe(settings: Settings) -> dict[str, Any]:
    """The ``/health/config`` document."""
    return {
        "version": version(),
        "schema": schema.expected_version(),
        "config_hash": config_hash(settings),
        "settings": effective(settings),
    }


def publish(settings: Settings) -> dict[str, Any]:
    """Set ``sluice_build_info`` for this process; returns the ``/health/config`` document."""
    doc = describe(settings)
    metrics.build_info.labels(doc["version"], str(doc["schema"]), doc["config_hash"]).set(1)
    return doc
