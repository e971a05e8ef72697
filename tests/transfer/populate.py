"""Fill an MLflow tracking server with diverse data through the real `mlflow` client: what a
team's years of history look like, in miniature, plus one large run.

Deleted experiments and runs, every run status, params and tags, NaN and +-inf metric values,
out-of-order steps and timestamps, a run of ``big_points`` points, datasets with input tags,
logged models (tags, params, run inputs and outputs), the registry: models with tags and
descriptions, versions in every stage, version tags, aliases, a deleted version; and traces
made by the client's tracing (nested spans with events, an error, tags, a session, token
usage, a run's trace, a trace linked to a run, feedback and expectations).
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import (
    AssessmentSource,
    AssessmentSourceType,
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunTag,
    SpanEvent,
    SpanType,
)
from mlflow.tracking import MlflowClient

# Tracing imports mlflow.pyfunc lazily, whose import warns about an Any type hint; under the
# suite's warnings-as-errors that import fails inside the tracer and no span is recorded.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc

BATCH = 1000  # MLflow's log-batch limit for metrics


@dataclass(frozen=True, slots=True)
class Populated:
    experiments: list[str]
    runs: list[str]
    big_run: str
    points: int  # metric points logged in total
    models: list[str]  # registered model names
    traces: list[str]  # trace ids


def populate(uri: str, big_points: int, sqlite_path: Path | None = None) -> Populated:
    """``sqlite_path``: the server's SQLite database, into which the big run's points are
    written with SQL (see ``_big_run_sql``); without it the client logs them."""
    client = MlflowClient(uri)
    base = 1_700_000_000_000
    exps = [
        client.create_experiment("vision", tags={"team": "cv", "quarter": "Q3"}),
        client.create_experiment("nlp", artifact_location="s3://bucket/nlp-artifacts"),
        client.create_experiment("retired", tags={"reason": "old"}),
    ]
    client.set_experiment_tag(exps[0], "mlflow.note.content", "experiment notes")
    runs: list[str] = []
    points = 0
    for i, status in enumerate(["FINISHED", "FAILED", "KILLED", "RUNNING", "FINISHED"]):
        exp = exps[i % 2]
        run = client.create_run(exp, run_name=f"run-{i}", start_time=base + i, tags={"i": str(i)})
        run_id = run.info.run_id
        runs.append(run_id)
        client.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0 / (s + 1), base + s * 10, s) for s in range(50)]
            + [
                Metric("weird", v, base + k, k)
                for k, v in enumerate([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 5.0])
            ]
            + [Metric("backwards", float(s), base + 1000 - s, 100 - s) for s in range(20)]
            + [Metric("same_step", float(k), base + k, 7) for k in range(5)],
            params=[Param("lr", str(0.01 * (i + 1))), Param("layers", str(i + 2))],
            tags=[RunTag("owner", f"user{i}"), RunTag("mlflow.note.content", f"run {i}")],
        )
        points += 50 + 7 + 20 + 5
        client.log_metric(run_id, "single", 3.5, timestamp=base + 5, step=0)
        points += 1
        if status != "RUNNING":
            client.set_terminated(run_id, status=status, end_time=base + 10_000 + i)
    _datasets(client, runs)
    big = client.create_run(exps[0], run_name="big", start_time=base).info.run_id
    runs.append(big)
    if sqlite_path is not None:
        points += _big_run_sql(sqlite_path, big, big_points, base)
    else:
        points += _big_run(client, big, big_points, base)
    client.set_terminated(big, "FINISHED", end_time=base + big_points)
    deleted_run = client.create_run(exps[0], run_name="deleted-run").info.run_id
    client.log_metric(deleted_run, "gone", 1.0, timestamp=base, step=0)
    points += 1
    client.delete_run(deleted_run)
    runs.append(deleted_run)
    retired_run = client.create_run(exps[2], run_name="in-retired").info.run_id
    client.log_param(retired_run, "p", "v")
    client.log_metric(retired_run, "m", 2.0, timestamp=base, step=3)
    points += 1
    runs.append(retired_run)
    client.delete_experiment(exps[2])
    models = _registry(client, runs)
    points += _logged_models(client, exps[0], runs)
    traces, traced_run = _traces(uri, client, exps[0])
    runs.append(traced_run)
    return Populated(exps, runs, big, points, models, traces)


def _datasets(client: MlflowClient, runs: list[str]) -> None:
    train = Dataset(
        "train", "d1g3st01", "local", '{"uri": "/data/train.csv"}', '{"cols": 3}', '{"rows": 100}'
    )
    test = Dataset("test", "d1g3st02", "http", '{"url": "https://x/test.csv"}')
    client.log_inputs(
        runs[0],
        [
            DatasetInput(train, [InputTag("mlflow.data.context", "training")]),
            DatasetInput(test, [InputTag("mlflow.data.context", "eval"), InputTag("k", "v")]),
        ],
    )
    client.log_inputs(runs[1], [DatasetInput(train, [])])


def _big_run(client: MlflowClient, run_id: str, total: int, base: int) -> int:
    """``total`` points over four keys, logged in MLflow's largest batches."""
    keys = ["train/loss", "train/acc", "val/loss", "lr"]
    per_key = total // len(keys)
    pending: list[Metric] = []
    for step in range(per_key):
        for k, key in enumerate(keys):
            pending.append(Metric(key, (step % 997) * 0.001 + k, base + step, step))
        if len(pending) >= BATCH:
            client.log_batch(run_id, metrics=pending[:BATCH])
            pending = pending[BATCH:]
    if pending:
        client.log_batch(run_id, metrics=pending)
    return per_key * len(keys)


def _big_run_sql(db_path: Path, run_id: str, total: int, base: int) -> int:
    """The points ``_big_run`` logs, written straight into the server's database: the rows
    MLflow's log-batch writes (``metrics`` plus the ``latest_metrics`` row of each key).

    Why: the server takes minutes to take a million points over HTTP (the suite's largest
    single cost), while the rows are plain and fixed by MLflow's schema. Everything else the
    import reads is made by the server; the client-logged histories of the other runs cover
    NaN/inf, out-of-order and same-step points."""
    keys = ["train/loss", "train/acc", "val/loss", "lr"]
    per_key = total // len(keys)
    db = sqlite3.connect(db_path, timeout=60)
    try:
        with db:
            for k, key in enumerate(keys):
                db.executemany(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                    " VALUES (?, ?, ?, ?, ?, 0)",
                    (
                        (key, (step % 997) * 0.001 + k, base + step, run_id, step)
                        for step in range(per_key)
                    ),
                )
                last = per_key - 1
                db.execute(
                    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                    " VALUES (?, ?, ?, ?, 0, ?)",
                    (key, (last % 997) * 0.001 + k, base + last, last, run_id),
                )
    finally:
        db.close()
    return per_key * len(keys)


def _registry(client: MlflowClient, runs: list[str]) -> list[str]:
    client.create_registered_model("churn", tags={"domain": "crm"}, description="churn model")
    client.create_registered_model("ranker")
    client.update_registered_model("ranker", description="search ranking")
    client.set_registered_model_tag("ranker", "tier", "gold")
    stage = {1: "Staging", 2: "Production", 3: "Archived"}
    for i, run in enumerate(runs[:4]):
        mv = client.create_model_version(
            "churn", f"runs:/{run}/model", run_id=run, tags={"v": str(i)}, description=f"v{i}"
        )
        if i in stage:
            with warnings.catch_warnings():  # stages are deprecated, and still in old databases
                warnings.simplefilter("ignore", FutureWarning)
                client.transition_model_version_stage("churn", mv.version, stage[i])
    client.create_model_version("ranker", f"runs:/{runs[0]}/model", run_id=runs[0])
    client.create_model_version("ranker", f"runs:/{runs[1]}/model", run_id=runs[1])
    client.delete_model_version("ranker", "1")
    client.set_registered_model_alias("churn", "champion", "3")
    client.set_registered_model_alias("churn", "challenger", "2")
    client.set_model_version_tag("churn", "1", "validated", "true")
    return ["churn", "ranker"]


def _logged_models(client: MlflowClient, experiment_id: str, runs: list[str]) -> int:
    """Two logged models; returns the metric points logged (also on the run)."""
    model = client.create_logged_model(
        experiment_id,
        name="clf",
        source_run_id=runs[0],
        tags={"framework": "sklearn"},
        params={"alpha": "0.5"},
        model_type="classifier",
    )
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    for step, value in enumerate((0.71, 0.83)):  # metrics of the model (MLflow 3)
        client.log_metric(
            runs[0],
            "acc",
            value,
            timestamp=1_700_000_000_000 + step,
            step=step,
            model_id=model.model_id,
        )
    client.log_outputs(runs[0], [LoggedModelOutput(model.model_id, step=3)])
    client.log_inputs(runs[1], models=[LoggedModelInput(model.model_id)])
    pending = client.create_logged_model(experiment_id, name="draft")
    client.set_logged_model_tags(pending.model_id, {"state": "wip"})
    return 2


@mlflow.trace(span_type=SpanType.LLM)
def _chat(x: int) -> str:
    span = mlflow.get_current_active_span()
    assert span is not None
    span.set_attribute(
        "mlflow.chat.tokenUsage", {"input_tokens": x, "output_tokens": 2, "total_tokens": x + 2}
    )
    return f"answer {x}"


@mlflow.trace(span_type=SpanType.CHAIN)
def _agent(x: int) -> str:
    mlflow.update_current_trace(tags={"call": str(x)}, metadata={"mlflow.trace.session": "s-1"})
    with mlflow.start_span("lookup", span_type=SpanType.TOOL) as span:
        span.set_inputs({"x": x, "nested": {"list": [1, 2.5, None, True]}})
        span.set_outputs([x, "y"])
        event = SpanEvent("cache", attributes={"hit": x % 2 == 0, "n": 3})  # type: ignore[abstract]
        span.add_event(event)
    if x == 3:
        raise ValueError("boom")
    return _chat(x)


def _traces(uri: str, client: MlflowClient, experiment_id: str) -> tuple[list[str], str]:
    """Traces through the client's tracing (its default: exported asynchronously, flushed);
    (trace ids, the run one of them was made in)."""
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(experiment_id=experiment_id)
        for x in range(5):
            with contextlib.suppress(ValueError):
                _agent(x)
        with mlflow.start_run(run_name="traced") as run:
            _agent(10)
        run_id = run.info.run_id
        mlflow.flush_trace_async_logging()
        found = client.search_traces(locations=[experiment_id], max_results=100)
        ids = sorted(t.info.trace_id for t in found)
        human = AssessmentSource(AssessmentSourceType.HUMAN, "alice")
        mlflow.log_feedback(trace_id=ids[0], name="correct", value=True, source=human)
        mlflow.log_feedback(trace_id=ids[0], name="score", value=0.75, rationale="close")
        mlflow.log_expectation(trace_id=ids[1], name="answer", value={"text": "a", "n": [1]})
        mlflow.log_expectation(trace_id=ids[1], name="short", value="42")
        client.set_trace_tag(ids[2], "reviewed", "yes")
        client.link_traces_to_run([ids[3]], run_id)
        return ids, run_id
    finally:
        mlflow.set_tracking_uri("")
