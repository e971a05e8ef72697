"""``sluice gc``: permanently remove what was deleted long enough ago, as ``mlflow gc`` does.

* Runs deleted more than ``older_than`` ago: their metric chunks, latest values, quarantined
  points, params, tags, inputs/outputs (cascades) and the run rows, in batches of ``batch``
  runs, one transaction each. Rows are taken ``FOR UPDATE SKIP LOCKED`` and re-checked in the
  same transaction, so a run being restored concurrently is left alone, and ingest never
  writes to a deleted run (the writer quarantines a point in flight; old quarantine rows of
  gone runs are removed below). Safe under load: each batch is short and touches only
  deleted runs.
* Their artifacts, when they live under Sluice's artifact root (``mlflow-artifacts:/<exp>/
  <run>/artifacts``): the run's folder, on a local root or every object below
  ``<prefix>/<exp>/<run>/`` on an S3 root. Sluice never deletes a location a user supplied
  (counted as kept).
* Experiments deleted more than ``older_than`` ago whose runs are all gone: datasets, logged
  models, permissions and the experiment row (its name becomes free again, as in MLflow).
* Quarantined points older than ``older_than`` whose run is gone or deleted.
* The dead-letter topic: records older than ``dlq_older_than`` are deleted from Kafka
  (DeleteRecords up to the first offset at or after that time).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import aioboto3
import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from schemas.wire import dlq_topic
from sluice import kafka, pg
from sluice.config import Settings
from sluice.errors import CommandFailed

log = logging.getLogger(__name__)

_LOCAL_RUN_URI = re.compile(r"^mlflow-artifacts:/(?P<exp>[0-9]+)/(?P<run>[0-9a-f]{32})/artifacts$")


@dataclass(slots=True)
class Collected:
    runs: int = 0
    experiments: int = 0
    quarantined_rows: int = 0
    artifact_folders: int = 0
    artifacts_kept: int = 0  # a user-supplied location: not deleted here
    dlq_records: int = 0
    run_ids: list[str] = field(default_factory=list)


async def collect(
    settings: Settings, older_than_s: float, batch: int = 100, dlq_older_than_s: float | None = None
) -> Collected:
    cutoff_ms = int((time.time() - older_than_s) * 1000)
    done = Collected()
    conn = await pg.connect(settings.pg)
    try:
        while await _collect_runs(conn, settings, cutoff_ms, batch, done):
            pass
        done.experiments = await _collect_experiments(conn, cutoff_ms)
        done.quarantined_rows = await _collect_quarantine(conn, older_than_s)
    finally:
        await conn.close()
    if dlq_older_than_s is not None:
        done.dlq_records = await _trim_dlq(settings, dlq_older_than_s)
    return done


async def _collect_runs(
    conn: asyncpg.Connection, settings: Settings, cutoff_ms: int, batch: int, done: Collected
) -> int:
    """One batch in one transaction; returns how many runs it removed. Their artifacts go
    first, inside the transaction: if that fails, the rows stay (a later gc finds them again)
    instead of leaving artifacts nothing points to any more."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT run_uuid, artifact_uri FROM runs"
            " WHERE lifecycle_stage = 'deleted' AND deleted_time < $1"
            " ORDER BY deleted_time LIMIT $2 FOR UPDATE SKIP LOCKED",
            cutoff_ms,
            batch,
        )
        ids = [r["run_uuid"] for r in rows]
        if not ids:
            return 0
        await _delete_artifacts(settings, [r["artifact_uri"] for r in rows], done)
        for table in ("metric_chunks", "latest_metrics", "quarantined_metrics"):
            await conn.execute(f"DELETE FROM {table} WHERE run_uuid = ANY($1::text[])", ids)
        # params, tags, run_inputs (+ input_tags), run_model_inputs/outputs cascade.
        await conn.execute("DELETE FROM runs WHERE run_uuid = ANY($1::text[])", ids)
    done.runs += len(ids)
    done.run_ids += ids
    log.info("deleted runs collected", extra={"runs": len(ids)})
    return len(ids)


async def _delete_artifacts(settings: Settings, uris: list[str], done: Collected) -> None:
    runs = [_run_folder(uri) for uri in uris]
    done.artifacts_kept += sum(1 for r in runs if r is None)
    found = [r for r in runs if r is not None]
    if not found:
        return
    root = settings.api.artifact_root
    if root.startswith("s3://"):
        try:
            done.artifact_folders += await _delete_s3_folders(settings, found)
        except (BotoCoreError, ClientError) as exc:
            raise CommandFailed(f"deleting artifacts on {root} failed: {exc}") from None
    elif "://" in root:  # a root Sluice does not delete from
        done.artifacts_kept += len(found)
    else:
        done.artifact_folders += await asyncio.to_thread(
            _delete_local_folders, settings.api.artifact_root, found
        )


def _run_folder(uri: str) -> tuple[str, str] | None:
    """(experiment id, run id) of a run whose artifacts are under Sluice's root, else None."""
    match = _LOCAL_RUN_URI.match(uri)
    return None if match is None else (match.group("exp"), match.group("run"))


def _delete_local_folders(root: str, runs: list[tuple[str, str]]) -> int:
    base = Path(root).resolve()
    removed = 0
    for exp, run in runs:
        folder = (base / exp / run).resolve()
        if base in folder.parents and folder.exists():
            shutil.rmtree(folder)
            removed += 1
    return removed


async def _delete_s3_folders(settings: Settings, runs: list[tuple[str, str]]) -> int:
    """Every object below ``<prefix>/<exp>/<run>/``, a listed page (at most 1000 keys, the
    most one DeleteObjects call takes) at a time."""
    split = urllib.parse.urlsplit(settings.api.artifact_root)
    bucket, prefix = split.netloc, "/".join(p for p in split.path.split("/") if p)
    timeout = settings.api.artifact_s3_timeout_s
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 3},
        signature_version="s3v4",  # as the api signs (api/artifacts/s3.py)
    )
    endpoint = settings.api.artifact_s3_endpoint_url or None
    removed = 0
    async with aioboto3.Session().client("s3", endpoint_url=endpoint, config=config) as client:
        paginator = client.get_paginator("list_objects_v2")
        for exp, run in runs:
            folder = "/".join(p for p in (prefix, exp, run) if p) + "/"
            deleted = 0
            async for page in paginator.paginate(Bucket=bucket, Prefix=folder):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    answer = await client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                    if answer.get("Errors"):  # a 200 that lists the keys it did not delete
                        first = answer["Errors"][0]
                        raise CommandFailed(
                            f"S3 kept {len(answer['Errors'])} object(s) below {folder}:"
                            f" {first.get('Code')} {first.get('Message')} ({first.get('Key')})"
                        )
                    deleted += len(keys)
            removed += deleted > 0
    return removed


async def _collect_experiments(conn: asyncpg.Connection, cutoff_ms: int) -> int:
    async with conn.transaction():
        ids = [
            r["experiment_id"]
            for r in await conn.fetch(
                "SELECT experiment_id FROM experiments e"
                " WHERE lifecycle_stage = 'deleted' AND last_update_time < $1"
                " AND experiment_id <> 0"
                " AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.experiment_id = e.experiment_id)"
                " FOR UPDATE SKIP LOCKED",
                cutoff_ms,
            )
        ]
        if not ids:
            return 0
        # A model's metrics have no foreign key to it (schemas/sql/0015): they go first.
        await conn.execute(
            "DELETE FROM logged_model_metrics WHERE model_id IN"
            " (SELECT model_id FROM logged_models WHERE experiment_id = ANY($1::bigint[]))",
            ids,
        )
        for table in ("datasets", "logged_models", "experiment_permissions"):
            await conn.execute(f"DELETE FROM {table} WHERE experiment_id = ANY($1::bigint[])", ids)
        await _delete_traces(conn, ids)
        await conn.execute("DELETE FROM experiments WHERE experiment_id = ANY($1::bigint[])", ids)
    return len(ids)


async def _delete_traces(conn: asyncpg.Connection, experiment_ids: list[int]) -> None:
    """An experiment's traces go with it, as MLflow's foreign keys cascade on ``mlflow gc``
    (deleting an experiment only marks it: its traces stay readable until then)."""
    traces = "SELECT trace_id FROM trace_info WHERE experiment_id = ANY($1::bigint[])"
    for table in ("trace_spans", "trace_assessments", "trace_run_links", "trace_prompt_links"):
        await conn.execute(f"DELETE FROM {table} WHERE trace_id IN ({traces})", experiment_ids)
    await conn.execute(
        "DELETE FROM trace_info WHERE experiment_id = ANY($1::bigint[])", experiment_ids
    )


async def _collect_quarantine(conn: asyncpg.Connection, older_than_s: float) -> int:
    status = await conn.execute(
        "DELETE FROM quarantined_metrics q"
        " WHERE quarantined_at < now() - make_interval(secs => $1)"
        " AND NOT EXISTS (SELECT 1 FROM runs r"
        "  WHERE r.run_uuid = q.run_uuid AND r.lifecycle_stage = 'active')",
        older_than_s,
    )
    return int(status.split()[-1])


async def _trim_dlq(settings: Settings, older_than_s: float) -> int:
    """Delete dead letters older than ``older_than_s`` from the DLQ topic."""
    topic = dlq_topic(settings.kafka.topic)
    count = await kafka.partition_count(settings.kafka, topic)
    cutoff_ms = int((time.time() - older_than_s) * 1000)
    consumer = kafka.create_consumer(settings.kafka, group_id=None)
    await kafka.start(consumer, settings.kafka)
    try:
        tps = [TopicPartition(topic, p) for p in range(count)]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times({tp: cutoff_ms for tp in tps})
    finally:
        await consumer.stop()
    # First offset at or after the cutoff; none = every record is older: delete up to the end.
    upto = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
    upto = {tp: o for tp, o in upto.items() if o > starts[tp]}
    if not upto:
        return 0
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await kafka.start(admin, settings.kafka)
    try:
        await admin.delete_records({tp: RecordsToDelete(o) for tp, o in upto.items()})
    finally:
        await admin.close()
    return sum(o - starts[tp] for tp, o in upto.items())
