"""`sluice gc`: runs deleted before the cutoff are gone from every table and from the artifact
root; runs deleted after it, and live runs, are untouched -- while a client keeps logging to a
live run (every point it got a 200 for is stored)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import asyncpg
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from tests.integration.conftest import FAKE_AWS, S3
from tests.stack import Stack

DAY_MS = 86_400_000
RUN_TABLES = ("runs", "params", "tags", "metric_chunks", "latest_metrics", "quarantined_metrics")


def _populate(client: MlflowClient, run_id: str, tmp: Path) -> None:
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("m", float(i), now, i) for i in range(50)],
        params=[Param("p", "1")],
        tags=[RunTag("t", "x")],
    )
    (tmp / f"{run_id}.txt").write_text("artifact")
    client.log_artifact(run_id, str(tmp / f"{run_id}.txt"))


async def _counts(dsn: str, run_id: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE run_uuid = $1", run_id)
            for table in RUN_TABLES
        }
    finally:
        await conn.close()


TRACE_TABLES = ("trace_info", "trace_spans", "trace_assessments", "trace_prompt_links")


def _traces(sluice_url: str, exp_id: str) -> list[str]:
    """Two traces in the experiment, one with an assessment and a prompt link."""
    import mlflow  # noqa: PLC0415

    with warnings.catch_warnings():  # the tracer imports it lazily; its import warns (as errors)
        warnings.simplefilter("ignore", UserWarning)
        import mlflow.pyfunc  # noqa: PLC0415

    mlflow.set_tracking_uri(sluice_url)
    try:
        mlflow.set_experiment(experiment_id=exp_id)
        for question in ("a", "b"):
            with mlflow.start_span("call") as span:
                span.set_inputs({"q": question})
        mlflow.flush_trace_async_logging()
        ids = [
            t.info.trace_id for t in mlflow.search_traces(locations=[exp_id], return_type="list")
        ]
        mlflow.log_feedback(trace_id=ids[0], name="ok", value=True)
        body = {"trace_id": ids[0], "prompt_versions": [{"name": "p", "version": "1"}]}
        answer = requests.post(
            f"{sluice_url}/api/2.0/mlflow/traces/link-prompts", json=body, timeout=30
        )
        answer.raise_for_status()
        return ids
    finally:
        mlflow.set_tracking_uri("")


async def _trace_rows(dsn: str, trace_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE trace_id = ANY($1::text[])", trace_ids
            )
            for table in TRACE_TABLES
        }
    finally:
        await conn.close()


async def _model_metric_rows(dsn: str, model_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM logged_model_metrics WHERE model_id = $1", model_id
        )
        return count
    finally:
        await conn.close()


async def _sql(dsn: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def _gc(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", "gc", "--older-than", "1d", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def _s3_env(stack: Stack, root: str, s3: S3) -> dict[str, str]:
    """The environment of a gc run whose api stores artifacts on ``root`` (S3, moto)."""
    return {
        **stack.service_env(),
        "SLUICE_API_ARTIFACT_ROOT": root,
        "SLUICE_API_ARTIFACT_S3_ENDPOINT_URL": s3.endpoint,
        **FAKE_AWS,
    }


class Logger(threading.Thread):
    """Keeps logging to a live run; remembers every step that got a 200."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        super().__init__(daemon=True)
        self.client, self.run_id = client, run_id
        self.acked: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        step = 1000
        while not self.halt.is_set():
            now = int(time.time() * 1000)
            batch = [Metric("live", float(s), now, s) for s in range(step, step + 100)]
            self.client.log_batch(self.run_id, metrics=batch)
            self.acked += range(step, step + 100)
            step += 100


def test_gc_removes_old_deleted_runs_only_under_concurrent_ingest(
    stack: Stack, sluice_url: str, tmp_path: Path
) -> None:
    client = MlflowClient(sluice_url)
    exp_id = client.create_experiment(f"gc-{uuid.uuid4().hex[:8]}")
    old, recent, live = (client.create_run(exp_id).info.run_id for _ in range(3))
    for run_id in (old, recent, live):
        _populate(client, run_id, tmp_path)
    client.get_metric_history(old, "m")  # read fence: every point above is stored
    client.get_metric_history(recent, "m")
    client.delete_run(old)
    client.delete_run(recent)
    asyncio.run(
        _sql(
            stack.dsn,
            "UPDATE runs SET deleted_time = deleted_time - $2 WHERE run_uuid = $1",
            old,
            2 * DAY_MS,
        )
    )
    asyncio.run(
        _sql(
            stack.dsn,
            "INSERT INTO quarantined_metrics (run_uuid, key, step, timestamp, value,"
            " is_nan, reason, quarantined_at) VALUES ($1, 'q', 0, 0, 0, false, 'deleted',"
            " now() - interval '3 days')",
            old,
        )
    )
    artifacts = Path(stack.service_env()["SLUICE_API_ARTIFACT_ROOT"])
    assert (artifacts / exp_id / old / "artifacts" / f"{old}.txt").exists()

    logger = Logger(MlflowClient(sluice_url), live)
    logger.start()
    try:
        time.sleep(1)  # the logger is in full swing
        done = _gc(stack.service_env(), "--batch", "1", check=False)
        time.sleep(1)
    finally:
        logger.halt.set()
        logger.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 1 runs,"), done.stdout

    assert asyncio.run(_counts(stack.dsn, old)) == dict.fromkeys(RUN_TABLES, 0)
    assert not (artifacts / exp_id / old).exists()
    kept = asyncio.run(_counts(stack.dsn, recent))
    assert kept["runs"] == 1 and kept["params"] == 1 and kept["metric_chunks"] > 0
    assert (artifacts / exp_id / recent / "artifacts" / f"{recent}.txt").exists()

    assert logger.acked, "the concurrent logger got no write through"
    history = client.get_metric_history(live, "live")
    assert sorted(m.step for m in history) == sorted(logger.acked)
    assert client.get_run(live).data.params == {"p": "1"}
    assert len(client.get_metric_history(live, "m")) == 50
    assert (artifacts / exp_id / live / "artifacts" / f"{live}.txt").exists()


def test_gc_removes_an_old_deleted_experiment_once_its_runs_are_gone(
    stack: Stack, sluice_url: str
) -> None:
    client = MlflowClient(sluice_url)
    name = f"gc-exp-{uuid.uuid4().hex[:8]}"
    exp_id = client.create_experiment(name)
    run_id = client.create_run(exp_id).info.run_id
    trace_ids = _traces(sluice_url, exp_id)
    model_id = client.create_logged_model(exp_id, name="m").model_id
    client.log_metric(run_id, "acc", 1.0, model_id=model_id)
    assert len(client.get_logged_model(model_id).metrics or []) == 1
    client.delete_experiment(exp_id)  # its run is deleted with it
    # As in MLflow, a deleted experiment's traces stay readable until gc.
    assert len(client.search_traces(locations=[exp_id])) == 2
    assert client.get_trace(trace_ids[0]).info.trace_id == trace_ids[0]
    asyncio.run(
        _sql(
            stack.dsn,
            "UPDATE experiments SET last_update_time = last_update_time - $2"
            " WHERE experiment_id = $1",
            int(exp_id),
            2 * DAY_MS,
        )
    )
    asyncio.run(
        _sql(
            stack.dsn,
            "UPDATE runs SET deleted_time = deleted_time - $2 WHERE run_uuid = $1",
            run_id,
            2 * DAY_MS,
        )
    )
    done = _gc(stack.service_env())
    assert "1 experiments" in done.stdout
    assert client.get_experiment_by_name(name) is None
    assert asyncio.run(_trace_rows(stack.dsn, trace_ids)) == {t: 0 for t in TRACE_TABLES}
    assert asyncio.run(_model_metric_rows(stack.dsn, model_id)) == 0  # gone with run and model
    client.create_experiment(name)  # the name is free again, as after `mlflow gc`


def test_gc_removes_an_old_deleted_runs_artifacts_from_an_s3_root(
    stack: Stack, s3: S3, s3_sluice_url: str, tmp_path: Path
) -> None:
    client = MlflowClient(s3_sluice_url)
    exp_id = client.create_experiment(f"gc-s3-{uuid.uuid4().hex[:8]}")
    old, live = (client.create_run(exp_id).info.run_id for _ in range(2))
    for run_id in (old, live):
        for name in ("a.txt", "deep/b.txt"):
            (tmp_path / run_id / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / run_id / name).write_text(name)
        client.log_artifacts(run_id, str(tmp_path / run_id))
    client.delete_run(old)
    asyncio.run(
        _sql(
            stack.dsn,
            "UPDATE runs SET deleted_time = deleted_time - $2 WHERE run_uuid = $1",
            old,
            2 * DAY_MS,
        )
    )
    bucket = s3.client()

    def keys(run_id: str) -> list[str]:
        found = bucket.list_objects_v2(  # type: ignore[attr-defined]
            Bucket=s3.bucket, Prefix=f"{s3.prefix}/{exp_id}/{run_id}/"
        )
        return sorted(o["Key"].rsplit("/artifacts/", 1)[1] for o in found.get("Contents", []))

    assert keys(old) == keys(live) == ["a.txt", "deep/b.txt"]
    done = _gc(_s3_env(stack, f"s3://{s3.bucket}/{s3.prefix}", s3))
    assert "1 artifact folders" in done.stdout, done.stdout
    assert keys(old) == []
    assert keys(live) == ["a.txt", "deep/b.txt"]
    assert [f.path for f in client.list_artifacts(live, "deep")] == ["deep/b.txt"]


def test_gc_keeps_the_runs_when_their_s3_artifacts_cannot_be_deleted(
    stack: Stack, s3: S3, s3_sluice_url: str
) -> None:
    client = MlflowClient(s3_sluice_url)
    run_id = client.create_run(client.create_experiment(f"gc-s3-{uuid.uuid4().hex[:8]}")).info
    client.delete_run(run_id.run_id)
    asyncio.run(
        _sql(
            stack.dsn,
            "UPDATE runs SET deleted_time = deleted_time - $2 WHERE run_uuid = $1",
            run_id.run_id,
            2 * DAY_MS,
        )
    )
    done = _gc(_s3_env(stack, "s3://no-such-bucket/prefix", s3), check=False)
    assert done.returncode != 0
    assert done.stderr.splitlines()[-1].startswith(
        "sluice gc: deleting artifacts on s3://no-such-bucket/prefix failed: "
    ), done.stderr
    assert "Traceback" not in done.stderr
    # The transaction rolled back: the run is still there for a later gc.
    assert asyncio.run(_counts(stack.dsn, run_id.run_id))["runs"] == 1
