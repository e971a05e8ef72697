"""Fill an MLflow tracking server with diverse data through the real `mlflow` client: what a
team's years of history look like, in miniature, plus one large run.

Deleted experiments and runs, every run status, params and tags, NaN and +-inf metric values,
out-of-order steps and timestamps, a run of ``big_points`` points, datasets with input tags,
logged models (tags, params, run inputs and outputs), and the registry: models with tags and
descriptions, versions in every stage, version tags, aliases, a deleted version.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunTag,
)
from mlflow.tracking import MlflowClient

BATCH = 1000  # MLflow's log-batch limit for metrics


@dataclass(frozen=True, slots=True)
class Populated:
    experiments: list[str]
    runs: list[str]
    big_run: str
    points: int  # metric points logged in total
    models: list[str]  # registered model names


def populate(uri: str, big_points: int) -> Populated:
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
    _logged_models(client, exps[0], runs)
    return Populated(exps, runs, big, points, models)


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


def _logged_models(client: MlflowClient, experiment_id: str, runs: list[str]) -> None:
    model = client.create_logged_model(
        experiment_id,
        name="clf",
        source_run_id=runs[0],
        tags={"framework": "sklearn"},
        params={"alpha": "0.5"},
        model_type="classifier",
    )
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(runs[0], [LoggedModelOutput(model.model_id, step=3)])
    client.log_inputs(runs[1], models=[LoggedModelInput(model.model_id)])
    pending = client.create_logged_model(experiment_id, name="draft")
    client.set_logged_model_tags(pending.model_id, {"state": "wip"})
