"""Metric points as MLflow JSON (pure): the hot loops of get-history and the chart samples.

A point read from chunks has ``value`` None for NaN, which MLflow writes as "NaN".
"""

from __future__ import annotations

from typing import Any


def point(key: str, timestamp: int, step: int, value: float | None) -> dict[str, Any]:
    """A metric point read from chunks (value None = NaN), the same shape as ``metric``."""
    return {
        "key": key,
        "value": "NaN" if value is None else value,
        "timestamp": timestamp,
        "step": step,
    }


def points(
    key: str, timestamps: list[int], steps: list[int], vals: list[float | None]
) -> list[dict[str, Any]]:
    """``point`` for parallel columns (a whole history page: the hot loop of get-history)."""
    return [
        {"key": key, "value": "NaN" if v is None else v, "timestamp": t, "step": s}
        for t, s, v in zip(timestamps, steps, vals, strict=True)
    ]


def run_points(
    key: str, run_id: str, timestamps: list[int], steps: list[int], vals: list[float | None]
) -> list[dict[str, Any]]:
    """``points`` plus the run id, for chart samples (up to 100 runs of 2500 points): one dict
    per point built in one comprehension, half the time of merging ``point`` into a second."""
    return [
        {
            "key": key,
            "value": "NaN" if v is None else v,
            "timestamp": t,
            "step": s,
            "run_id": run_id,
        }
        for t, s, v in zip(timestamps, steps, vals, strict=True)
    ]
