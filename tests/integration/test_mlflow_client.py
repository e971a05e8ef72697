"""Acceptance: the unchanged mlflow client logs 100,000 points and reads every one back at
once (no sleep), through the single tracking URI of the stack."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

BATCHES = 98  # x 1000 points through log_batch
SINGLE_CALLS = 2000  # points through log_metric, one request each
TOTAL = BATCHES * 1000 + SINGLE_CALLS


@pytest.fixture
def client(sluice_url: str) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(sluice_url)
    yield MlflowClient(sluice_url)
    mlflow.set_tracking_uri("")


def test_hundred_thousand_points_round_trip(client: MlflowClient) -> None:
    exp_id = client.create_experiment(f"acceptance-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id, run_name="bulk").info.run_id
    now = int(time.time() * 1000)
    sent: set[tuple[str, int, int, float]] = set()
    for b in range(BATCHES):
        points = [Metric(f"m{i % 10}", i * 0.5, now + b, b * 100 + i // 10) for i in range(1000)]
        client.log_batch(run_id, metrics=points)
        sent.update((m.key, m.step, m.timestamp, m.value) for m in points)
    for i in range(SINGLE_CALLS):
        client.log_metric(run_id, "single", i / 7, timestamp=now + i, step=i)
        sent.add(("single", i, now + i, i / 7))
    client.log_batch(
        run_id, params=[Param("lr", "0.01"), Param("layers", "4")], tags=[RunTag("team", "a")]
    )
    client.set_tag(run_id, "phase", "done")
    client.set_terminated(run_id)

    stored: set[tuple[str, int, int, float]] = set()
    for key in [f"m{i}" for i in range(10)] + ["single"]:
        history = client.get_metric_history(run_id, key)  # immediately: no sleep, no retry
        stored.update((m.key, m.step, m.timestamp, m.value) for m in history)
    assert len(sent) == TOTAL
    assert stored == sent

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01", "layers": "4"}
    assert run.data.tags["team"] == "a" and run.data.tags["phase"] == "done"
    assert run.data.metrics["single"] == (SINGLE_CALLS - 1) / 7
    assert run.data.metrics["m9"] == 999 * 0.5  # greatest step of key m9


def test_fluent_api_round_trip(client: MlflowClient) -> None:
    mlflow.set_experiment(f"fluent-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run(run_name="fluent") as run:
        mlflow.log_params({"optimizer": "adam", "epochs": 3})
        mlflow.set_tags({"stage": "dev"})
        for step in range(100):
            mlflow.log_metrics({"loss": 1 / (step + 1), "acc": step / 100}, step=step)
        mlflow.log_metric("weird", math.nan, step=0)
        mlflow.log_metric("weird", math.inf, step=1)
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("inner", 1.0)
    data = client.get_run(run.info.run_id).data
    assert data.params == {"optimizer": "adam", "epochs": "3"}
    assert data.metrics["loss"] == 1 / 100 and data.metrics["acc"] == 0.99
    assert data.metrics["weird"] == 1.7976931348623157e308  # +Inf is stored clamped (MLflow)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 100
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert child_run.data.metrics == {"inner": 1.0}
    nan_history = client.get_metric_history(run.info.run_id, "weird")
    assert math.isnan(nan_history[0].value) and nan_history[0].step == 0
