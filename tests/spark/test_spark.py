"""Spark jobs logging to Sluice (docs/spark.md), pyspark in local mode on the installed JDK 17:

(a) executors log with the `mlflow` client from `mapPartitions` (many tasks, many runs,
    log_batch), and every point is read back;
(b) `mlflow.pyspark.ml.autolog()` of a small Spark ML pipeline logs a run that reads back;
(c) a Spark job writes records straight to Sluice's topic with `df.write.format("kafka")`, in
    the documented format and partitioning (docs/kafka-records.md); the writer stores the
    valid ones, dead-letters the malformed ones with a reason and quarantines the points of a
    deleted run.

Slow (a JVM, Spark's startup), still part of every `make test` and CI run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from schemas import wire
from tests.stack import REPO, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PARTITIONS = 4  # the test stack's SLUICE_KAFKA_PARTITIONS


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    jars = subprocess.run(
        [str(REPO / "scripts" / "spark.sh"), "fetch"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout.strip()
    # Executors are Python workers forked by Spark: the same interpreter, with mlflow.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sluice-tests")
        .config("spark.jars", jars)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


# -- (a) executors log with the mlflow client --------------------------------------------------

TASKS = 8
RUNS = 4
BATCHES = 5  # log_batch calls per task, 1000 points each


def _log_from_executor(url: str, tasks: Iterable[tuple[int, str]]) -> Iterator[int]:
    """Runs inside a Spark task: what a user's mapPartitions function does."""
    from mlflow.entities import Metric  # noqa: PLC0415  (imported on the executor)
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    client = MlflowClient(url)
    for task, run_id in tasks:
        for b in range(BATCHES):
            steps = range(b * 1000, (b + 1) * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(f"task{task}", s * 0.5, 1_700_000_000_000 + s, s) for s in steps],
            )
        yield BATCHES * 1000


def test_executors_log_with_the_mlflow_client(spark: SparkSession, sluice_url: str) -> None:
    client = MlflowClient(sluice_url)
    exp = client.create_experiment(f"spark-executors-{uuid.uuid4().hex[:8]}")
    runs = [client.create_run(exp).info.run_id for _ in range(RUNS)]
    work = [(task, runs[task % RUNS]) for task in range(TASKS)]
    started = time.monotonic()
    logged = (
        spark.sparkContext.parallelize(work, TASKS)
        .mapPartitions(lambda it: _log_from_executor(sluice_url, it))
        .sum()
    )
    took = time.monotonic() - started
    assert logged == TASKS * BATCHES * 1000
    print(f"\n(a) executors: {logged:,} points in {took:.1f} s = {logged / took:,.0f} points/s")
    for task, run_id in work:
        history = client.get_metric_history(run_id, f"task{task}")
        assert sorted((m.step, m.value) for m in history) == [
            (s, s * 0.5) for s in range(BATCHES * 1000)
        ]


# -- (b) mlflow.pyspark.ml.autolog -------------------------------------------------------------


def test_pyspark_ml_autolog(spark: SparkSession, sluice_url: str) -> None:
    import mlflow  # noqa: PLC0415
    import mlflow.pyspark.ml  # noqa: PLC0415
    from pyspark.ml import Pipeline  # noqa: PLC0415
    from pyspark.ml.classification import LogisticRegression  # noqa: PLC0415
    from pyspark.ml.feature import VectorAssembler  # noqa: PLC0415

    mlflow.set_tracking_uri(sluice_url)
    mlflow.set_experiment(f"spark-autolog-{uuid.uuid4().hex[:8]}")
    mlflow.pyspark.ml.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        rows = [(float(i % 7), float(i % 3), float(i % 2)) for i in range(60)]
        df = spark.createDataFrame(rows, ["a", "b", "label"])
        pipeline = Pipeline(
            stages=[
                VectorAssembler(inputCols=["a", "b"], outputCol="features"),
                LogisticRegression(maxIter=7, regParam=0.01),
            ]
        )
        pipeline.fit(df)
        run = mlflow.last_active_run()
        assert run is not None
    finally:
        mlflow.pyspark.ml.autolog(disable=True)
    got = MlflowClient(sluice_url).get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    params = got.data.params
    assert params["LogisticRegression.maxIter"] == "7", params
    assert params["LogisticRegression.regParam"] == "0.01"
    assert params["VectorAssembler.outputCol"] == "features"
    assert got.data.tags["estimator_name"] == "Pipeline"


# -- (c) a Spark job producing straight to Sluice's topic --------------------------------------

RECORDS_PER_RUN = 20
POINTS_PER_RECORD = 500


def _record(run_id: str, r: int) -> str:
    points = [
        ["spark/loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s, False]
        for s in range(r * POINTS_PER_RECORD, (r + 1) * POINTS_PER_RECORD)
    ]
    if r == 0:
        points[0] = ["spark/loss", 0.0, 1_700_000_000_000, 0, True]  # NaN, stored form
    return json.dumps(
        {
            "v": 1,
            "type": "metrics",
            "run_id": run_id,
            "event_id": uuid.uuid4().hex,
            "received_at_ms": int(time.time() * 1000),
            "metrics": points,
        }
    )


def test_spark_writes_records_to_the_topic(
    spark: SparkSession, sluice_url: str, stack: Stack
) -> None:
    client = MlflowClient(sluice_url)
    exp = client.create_experiment(f"spark-kafka-{uuid.uuid4().hex[:8]}")
    runs = [client.create_run(exp).info.run_id for _ in range(6)]
    deleted = client.create_run(exp).info.run_id
    client.delete_run(deleted)
    rows = [(run, _record(run, r)) for run in runs for r in range(RECORDS_PER_RUN)]
    bad_marker = uuid.uuid4().hex
    invalid = [
        (runs[0], f'{{"v": 1, "type": "metrics", "oops": "{bad_marker}"'),  # not JSON
        (runs[1], json.dumps({"v": 3, "type": "metrics", "run_id": runs[1], "m": bad_marker})),
    ]
    rows += [*invalid, (deleted, _record(deleted, 0))]
    df = spark.createDataFrame(rows, ["run_id", "value"])
    out = df.select(
        F.col("run_id").alias("key"),
        F.col("value"),
        # The documented partition: crc32 of the run id's UTF-8 bytes, mod partitions.
        F.pmod(F.crc32(F.col("run_id").cast("binary")), F.lit(PARTITIONS))
        .cast("int")
        .alias("partition"),
    )
    started = time.monotonic()
    (
        out.write.format("kafka")
        .option("kafka.bootstrap.servers", stack.bootstrap)
        .option("topic", stack.topic)
        .option("kafka.acks", "all")
        .option("kafka.enable.idempotence", "true")
        .save()
    )
    # Reads pass the read-your-writes fence: what the job produced is stored when they answer.
    histories = {run: client.get_metric_history(run, "spark/loss") for run in runs}
    took = time.monotonic() - started
    points = len(runs) * RECORDS_PER_RUN * POINTS_PER_RECORD
    print(
        f"\n(c) Spark -> Kafka -> stored: {points:,} points in {took:.1f} s"
        f" = {points / took:,.0f} points/s"
    )
    for history in histories.values():
        assert len(history) == RECORDS_PER_RUN * POINTS_PER_RECORD
        first = min(history, key=lambda m: m.step)
        assert first.step == 0 and first.value != first.value  # NaN
    asyncio.run(_check_partitions(stack, runs))
    reasons = asyncio.run(_dead_letters(stack, bad_marker, expected=2))
    assert any(r.startswith("not JSON") for r in reasons), reasons
    assert "unsupported record version 3" in reasons, reasons
    quarantined = asyncio.run(_quarantined(stack, deleted, POINTS_PER_RECORD))
    assert quarantined == {"run not active when stored"}


async def _check_partitions(stack: Stack, runs: list[str]) -> None:
    """Every record of these runs sits on crc32(run id) mod partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(stack.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: dict[str, set[int]] = {}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                for message in records:
                    key = (message.key or b"").decode()
                    if key in runs:
                        seen.setdefault(key, set()).add(tp.partition)
    finally:
        await consumer.stop()
    assert seen == {run: {wire.partition_for(run, PARTITIONS)} for run in runs}


async def _dead_letters(stack: Stack, marker: str, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        wire.dlq_topic(stack.topic),
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    reasons: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(reasons) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for message in records:
                    if marker.encode() in (message.value or b""):
                        reasons.append(dict(message.headers)["reason"].decode())
    finally:
        await consumer.stop()
    assert len(reasons) == expected, reasons
    return reasons


async def _quarantined(stack: Stack, run_id: str, points: int) -> set[Any]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                "SELECT reason FROM quarantined_metrics WHERE run_uuid = $1", run_id
            )
            if len(rows) >= points:
                return {r["reason"] for r in rows}
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise AssertionError(f"the deleted run's {points} points were not quarantined")
