"""Metrics logged with a model_id (MLflow 3), through the real client: ingest carries the model
and dataset in a version-2 record, the writer stores each point on the run and in
``logged_model_metrics``, the api lists them on the model and searches on them."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException


def _setup(client: MlflowClient) -> tuple[str, str, list[str]]:
    exp = client.create_experiment(f"lmm-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp).info.run_id
    models = [client.create_logged_model(exp, name=f"m{i}").model_id for i in range(3)]
    return exp, run, models


def test_metrics_logged_with_a_model_are_read_back_on_it(sluice_url: str) -> None:
    client = MlflowClient(sluice_url)
    _, run, (model, other, _) = _setup(client)
    now = int(time.time() * 1000)
    client.log_metric(
        run, "acc", 0.5, now, 1, model_id=model, dataset_name="ds", dataset_digest="d"
    )
    client.log_metric(run, "acc", float("nan"), now + 1, 2, model_id=model)
    client.log_batch(
        run,
        metrics=[
            Metric("loss", 0.1, now, 0, model_id=other),
            Metric("loss", 0.1, now, 0, model_id=other),  # a repeat is stored once
            Metric("plain", 1.0, now, 0),
        ],
    )
    got = client.get_logged_model(model)
    points = sorted((m.key, m.value, m.step, m.dataset_name, m.run_id) for m in got.metrics or [])
    # NaN shows as 0.0 on the model, as MLflow stores it there.
    assert points == [("acc", 0.0, 2, None, run), ("acc", 0.5, 1, "ds", run)]
    assert [(m.key, m.model_id) for m in client.get_logged_model(other).metrics or []] == [
        ("loss", other)
    ]
    # The points are the run's as well.
    assert set(client.get_run(run).data.metrics) == {"acc", "loss", "plain"}


def test_search_filters_and_orders_on_model_metrics(sluice_url: str) -> None:
    client = MlflowClient(sluice_url)
    exp, run, models = _setup(client)
    now = int(time.time() * 1000)
    for i, model in enumerate(models[:2]):
        client.log_metric(run, "acc", 0.9 - i / 10, now, 0, model_id=model)
        client.log_metric(
            run, "f1", i / 10, now, 0, model_id=model, dataset_name="eval", dataset_digest="x"
        )
    found = client.search_logged_models([exp], filter_string="metrics.acc > 0.85")
    assert [m.model_id for m in found] == [models[0]]
    ordered = client.search_logged_models(
        [exp], order_by=[{"field_name": "metrics.f1", "ascending": False}]
    )
    # Models without the metric come last.
    assert [m.model_id for m in ordered] == [models[1], models[0], models[2]]
    on_dataset = [{"dataset_name": "eval", "dataset_digest": "x"}]
    found = client.search_logged_models([exp], datasets=on_dataset)
    assert {m.model_id for m in found} == set(models[:2])
    # A dataset without a digest matches only points without one, as in MLflow.
    assert not client.search_logged_models([exp], datasets=[{"dataset_name": "eval"}])
    with pytest.raises(MlflowException, match="Invalid comparison operator"):
        client.search_logged_models([exp], filter_string="metrics.acc LIKE 'a'")


def test_a_metric_naming_an_unknown_model_is_refused(sluice_url: str) -> None:
    client = MlflowClient(sluice_url)
    _, run, _ = _setup(client)
    with pytest.raises(MlflowException, match="Logged model with ID 'm-nope' not found"):
        client.log_metric(run, "acc", 1.0, model_id="m-nope")
    assert client.get_run(run).data.metrics == {}


async def test_model_metrics_are_rows_of_their_table(
    sluice_url: str, conn: asyncpg.Connection
) -> None:
    client = MlflowClient(sluice_url)
    _, run, (model, *_) = _setup(client)
    client.log_metric(run, "acc", 2.0, 5, 3, model_id=model, dataset_name="n", dataset_digest="g")
    client.get_logged_model(model)  # passes the read fence: the point is stored
    rows = await conn.fetch("SELECT * FROM logged_model_metrics WHERE model_id = $1", model)
    assert [tuple(r.values()) for r in rows] == [(model, "acc", 5, 3, run, 2.0, "n", "g")]
