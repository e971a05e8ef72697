"""Everything a user reads back through the real `mlflow` client, as plain comparable data.

``snapshot(uri)`` asks one tracking server (MLflow's or Sluice's) for experiments, runs with
params, tags, latest metrics and inputs, the full history of every metric, logged models, the
registry, and traces (search, then each one whole: info, assessments, spans); two servers holding the same data give equal snapshots. NaN becomes the string
"NaN" (NaN != NaN), and lists whose order the API does not define are sorted.

One exception keeps the suite's time in bounds: the history of the one big run (a million
points), which `mlflow server` pages out at a few ten thousand points a second. On the MLflow
side it is read with SQL from the database the server serves (``sqlite_history``: the rows its
get-history returns); Sluice's side goes through the client once (the first import), and
with SQL (``sluice_history``) where a test re-checks the same data in another database.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


History = Callable[[str, str], list[tuple[int, int, float]]]


def sqlite_history(db_path: Path) -> History:
    """(timestamp, step, value) of a series, as MLflow's get-history returns them."""

    def read(run_id: str, key: str) -> list[tuple[int, int, float]]:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                'SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? AND "key" = ?',
                (run_id, key),
            ).fetchall()
        finally:
            db.close()
        return sorted(
            ((ts, step, math.nan if nan else value) for ts, step, value, nan in rows),
            key=lambda p: (p[0], p[1], repr(p[2])),
        )

    return read


def sluice_history(dsn: str) -> History:
    """The same rows from a Sluice database (its ``metrics`` view: every stored point once)."""

    async def fetch(run_id: str, key: str) -> list[tuple[int, int, float]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT timestamp, step, value, is_nan FROM metrics"
                " WHERE run_uuid = $1 AND key = $2",
                run_id,
                key,
            )
        finally:
            await conn.close()
        return sorted(
            ((ts, step, math.nan if nan else value) for ts, step, value, nan in rows),
            key=lambda p: (p[0], p[1], repr(p[2])),
        )

    return lambda run_id, key: asyncio.run(fetch(run_id, key))


def snapshot(uri: str, big: tuple[str, History] | None = None) -> dict[str, Any]:
    """``big``: (run id, reader) -- that run's histories come from the reader."""
    client = MlflowClient(uri)
    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    out: dict[str, Any] = {
        "experiments": sorted(
            (_experiment(e) for e in experiments), key=lambda e: int(e["experiment_id"])
        )
    }
    ids = [e.experiment_id for e in experiments]
    runs = client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000)
    out["runs"] = sorted((_run(client, r, big) for r in runs), key=lambda r: r["info"]["run_id"])
    out["logged_models"] = _logged_models(client, ids)
    out["registry"] = _registry(client)
    active = [e.experiment_id for e in experiments if e.lifecycle_stage == "active"]
    out["traces"] = _traces(client, active)
    plain: dict[str, Any] = _plain(out)
    return plain


def _experiment(e: Any) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "tags": dict(e.tags),
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
    }


def _run(client: MlflowClient, run: Any, big: tuple[str, History] | None) -> dict[str, Any]:
    info = run.info

    def history(key: str) -> list[tuple[int, int, float]]:
        if big is not None and big[0] == info.run_id:
            return big[1](info.run_id, key)
        return [(m.timestamp, m.step, m.value) for m in _history(client, info.run_id, key)]

    got = client.get_run(info.run_id)  # the single-run read (and its inputs/outputs)
    inputs = got.inputs
    assert inputs is not None
    return {
        "info": {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage,
        },
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "metrics": dict(run.data.metrics),
        "same_as_get": got.data.params == run.data.params and got.data.tags == run.data.tags,
        "datasets": sorted(
            (
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "source_type": d.dataset.source_type,
                    "source": d.dataset.source,
                    "schema": d.dataset.schema,
                    "profile": d.dataset.profile,
                    "tags": sorted((t.key, t.value) for t in d.tags),
                }
                for d in inputs.dataset_inputs
            ),
            key=lambda d: (d["name"], d["digest"]),
        ),
        "model_inputs": sorted(m.model_id for m in (inputs.model_inputs or [])),
        "model_outputs": sorted(
            (m.model_id, m.step) for m in (got.outputs.model_outputs if got.outputs else [])
        ),
        "history": {key: history(key) for key in sorted(run.data.metrics)},
    }


def _history(client: MlflowClient, run_id: str, key: str) -> list[Any]:
    # History order is (timestamp, step, value) only up to ties; compare as sorted lists.
    points = client.get_metric_history(run_id, key)
    return sorted(points, key=lambda m: (m.timestamp, m.step, repr(m.value)))


def _logged_models(client: MlflowClient, experiment_ids: list[str]) -> list[dict[str, Any]]:
    found = client.search_logged_models(experiment_ids, max_results=100)
    models = []
    for m in sorted(found, key=lambda m: m.model_id):
        got = client.get_logged_model(m.model_id)
        models.append(
            {
                "model_id": got.model_id,
                "experiment_id": got.experiment_id,
                "name": got.name,
                "artifact_location": got.artifact_location,
                "creation_timestamp": got.creation_timestamp,
                "last_updated_timestamp": got.last_updated_timestamp,
                "status": str(got.status),
                "model_type": got.model_type,
                "source_run_id": got.source_run_id,
                "tags": dict(got.tags),
                "params": dict(got.params),
                "metrics": sorted(
                    (x.key, x.value, x.timestamp, x.step, x.run_id) for x in got.metrics or []
                ),
            }
        )
    return models


def _traces(client: MlflowClient, experiment_ids: list[str]) -> dict[str, Any]:
    found = client.search_traces(locations=experiment_ids, max_results=500)
    searched = {t.info.trace_id: t.info.to_dict() for t in found}
    whole = {}
    for trace_id in sorted(searched):
        trace = client.get_trace(trace_id)
        whole[trace_id] = {"info": trace.info.to_dict(), "spans": trace.data.to_dict()["spans"]}
    by_run = {
        run_id: sorted(
            t.info.trace_id for t in client.search_traces(locations=experiment_ids, run_id=run_id)
        )
        for run_id in sorted(
            {i["trace_metadata"].get("mlflow.sourceRun", "") for i in searched.values()} - {""}
        )
    }
    return {"searched": searched, "whole": whole, "by_run": by_run}


def _registry(client: MlflowClient) -> dict[str, Any]:
    models = {}
    for rm in client.search_registered_models(max_results=100):
        got = client.get_registered_model(rm.name)
        versions = client.search_model_versions(f"name = '{rm.name}'")
        models[rm.name] = {
            "description": got.description,
            "tags": dict(got.tags),
            "aliases": dict(got.aliases),
            "creation_timestamp": got.creation_timestamp,
            "last_updated_timestamp": got.last_updated_timestamp,
            "latest_versions": sorted(
                (v.version, v.current_stage) for v in (got.latest_versions or [])
            ),
            "versions": sorted(
                (
                    {
                        "version": v.version,
                        "stage": v.current_stage,
                        "source": v.source,
                        "run_id": v.run_id,
                        "status": v.status,
                        "description": v.description,
                        "tags": dict(v.tags),
                        # search-model-versions leaves aliases out in MLflow (not in Sluice,
                        # an api deviation noted separately); get-model-version has them.
                        "aliases": sorted(client.get_model_version(rm.name, v.version).aliases),
                        "creation_timestamp": v.creation_timestamp,
                        "last_updated_timestamp": v.last_updated_timestamp,
                        "user_id": v.user_id,
                    }
                    for v in versions
                ),
                key=lambda v: int(str(v["version"])),
            ),
            "by_alias": {
                alias: client.get_model_version_by_alias(rm.name, alias).version
                for alias in sorted(got.aliases)
            },
        }
    return models


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Human-readable paths where two snapshots differ (at most a few per list)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'second' if key not in a else 'first'}")
            else:
                out.extend(differences(a[key], b[key], f"{path}/{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(differences(x, y, f"{path}[{i}]"))
            if len(out) > 5:
                break
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
