"""Request bodies exactly as the mlflow 3.17.2 client sends them.

The client builds a protobuf message, ``message_to_json`` turns it into a dict (fields in proto
field-number order, int64 as JSON numbers, empty fields left out), and ``requests`` serialises
that dict with ``json.dumps`` defaults (", " and ": " separators). GET calls put the same fields
in the query string. These helpers reproduce the bytes, so both servers parse identical input.
"""

from __future__ import annotations

import json
from typing import Any

# The two log-batch shapes of workload (1): 10 keys x 100 steps, and 1000 distinct keys.
SHAPES = ("10x100", "1000keys")
POINTS_PER_BATCH = 1000


def batch_points(shape: str, seq: int, timestamp_ms: int) -> list[dict[str, Any]]:
    """The metrics of request number ``seq``. Steps encode ``seq`` (step // 100 for 10x100,
    step itself for 1000keys, step // 10 for fan-out), so the verifier can count exactly the
    points of acknowledged requests."""
    if shape == "10x100":
        return [
            {
                "key": f"loss_{k}",
                "value": (seq + s) * 0.001,
                "timestamp": timestamp_ms,
                "step": seq * 100 + s,
            }
            for k in range(10)
            for s in range(100)
        ]
    if shape == "1000keys":
        return [
            {"key": f"m{k:04d}", "value": k * 0.5 + seq, "timestamp": timestamp_ms, "step": seq}
            for k in range(POINTS_PER_BATCH)
        ]
    if shape == "fanout":  # 100 points: 10 keys x 10 steps
        return [
            {"key": f"loss_{k}", "value": s * 0.01, "timestamp": timestamp_ms, "step": seq * 10 + s}
            for k in range(10)
            for s in range(10)
        ]
    raise ValueError(f"unknown shape {shape!r}")


def seq_divisor(shape: str) -> int:
    """step // divisor == the request's seq (see batch_points)."""
    return {"10x100": 100, "1000keys": 1, "fanout": 10, "single": 1}[shape]


def log_batch(run_id: str, metrics: list[dict[str, Any]]) -> bytes:
    # LogBatch: metrics=1, params=2, tags=3, run_id=4 (empty params/tags are omitted).
    return json.dumps({"metrics": metrics, "run_id": run_id}).encode()


def log_metric(run_id: str, key: str, value: float, timestamp_ms: int, step: int) -> bytes:
    # LogMetric: run_uuid=1, key=2, value=3, timestamp=4, step=5, run_id=6.
    doc = {
        "run_uuid": run_id,
        "key": key,
        "value": value,
        "timestamp": timestamp_ms,
        "step": step,
        "run_id": run_id,
    }
    return json.dumps(doc).encode()


def create_experiment(name: str) -> bytes:
    return json.dumps({"name": name}).encode()


def create_run(experiment_id: str, name: str, start_time_ms: int) -> bytes:
    # CreateRun: experiment_id=1, user_id=2, start_time=7, tags=9, run_name=10.
    doc = {"experiment_id": experiment_id, "start_time": start_time_ms, "run_name": name}
    return json.dumps(doc).encode()


def history_query(run_id: str, key: str, page_token: str | None) -> dict[str, str]:
    """GetMetricHistory as the client pages it (GET_METRIC_HISTORY_MAX_RESULTS = 25000)."""
    query = {"run_id": run_id, "run_uuid": run_id, "metric_key": key, "max_results": "25000"}
    if page_token:
        query["page_token"] = page_token
    return query


def bulk_interval_query(run_ids: list[str], key: str, max_results: int) -> list[tuple[str, str]]:
    """GetMetricHistoryBulkInterval as the UI sends it (repeated run_ids)."""
    query = [("run_ids", r) for r in run_ids]
    query += [("metric_key", key), ("max_results", str(max_results))]
    return query


def search_runs(experiment_id: str, filter_string: str, order_by: str, max_results: int) -> bytes:
    # SearchRuns: experiment_ids=1, run_view_type=3, filter=4, max_results=5, order_by=6.
    doc = {
        "experiment_ids": [experiment_id],
        "run_view_type": "ACTIVE_ONLY",
        "filter": filter_string,
        "max_results": max_results,
        "order_by": [order_by],
    }
    return json.dumps(doc).encode()


def search_registered_models(max_results: int) -> dict[str, str]:
    return {"max_results": str(max_results)}
