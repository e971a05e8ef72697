"""What the running services tell an operator: every service exposes sluice_build_info with
one configuration hash across instances and /health/config without secrets; a request id
travels from the HTTP request into the Kafka record's headers and the writer's log lines;
pool and producer-queue gauges exist."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import requests
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mlflow import MlflowClient

from schemas import wire
from tests.stack import Stack

SERVICES = ("ingest", "api", "writer", "front")


def _metrics(stack: Stack, service: str) -> str:
    return requests.get(f"http://127.0.0.1:{stack.health_port(service)}/metrics", timeout=5).text


def _build_info(text: str) -> dict[str, str]:
    match = re.search(r"^sluice_build_info\{([^}]*)\} 1\.0$", text, re.M)
    assert match, "sluice_build_info missing"
    return dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))


def test_every_service_tells_its_build_and_configuration(stack: Stack) -> None:
    infos = {service: _build_info(_metrics(stack, service)) for service in SERVICES}
    assert len({(i["version"], i["schema"], i["config_hash"]) for i in infos.values()}) == 1, infos
    doc = requests.get(f"{stack.url('api')}/health/config", timeout=5).json()
    assert doc["config_hash"] == infos["api"]["config_hash"]
    assert doc["settings"]["SLUICE_KAFKA_TOPIC"] == stack.topic
    assert doc["settings"]["SLUICE_PG_DSN"] == stack.dsn  # no password here to mask


def test_pool_and_producer_queue_gauges(stack: Stack) -> None:
    api = _metrics(stack, "api")
    assert re.search(r'^sluice_pg_pool_connections\{state="max"\} [1-9]', api, re.M)
    assert re.search(r'^sluice_pg_pool_connections\{state="in_use"\} ', api, re.M)
    size = re.search(r"^sluice_api_artifact_root_size_bytes (\S+)$", api, re.M)
    assert size and float(size.group(1)) > 0  # the local root's filesystem
    assert re.search(r"^sluice_ingest_produce_inflight 0\.0$", _metrics(stack, "ingest"), re.M)


def test_the_request_id_reaches_the_kafka_record(stack: Stack, sluice_url: str) -> None:
    client = MlflowClient(sluice_url)
    run_id = client.create_run(client.create_experiment(f"rid-{uuid.uuid4().hex[:8]}")).info.run_id
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    answer = requests.post(
        f"{stack.url('ingest')}/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0},
        headers={"X-Request-Id": rid},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == rid
    headers = asyncio.run(_headers_of_run_records(stack, run_id))
    assert (wire.REQUEST_ID_HEADER, rid.encode()) in headers


async def _headers_of_run_records(stack: Stack, run_id: str) -> list[tuple[str, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(stack.topic, wire.partition_for(run_id, 4))
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        found: list[tuple[str, bytes]] = []
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.key == run_id.encode():
                    found.extend(record.headers)
        return found
    finally:
        await consumer.stop()


def test_the_writer_logs_name_the_request(stack: Stack) -> None:
    """A record no writer can store is dead-lettered; the log line names its request."""
    rid = f"poison-{uuid.uuid4().hex[:12]}"
    asyncio.run(_produce_poison(stack, rid))
    log = stack.log_path("writer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text().splitlines() if rid in line]
        if lines:
            assert '"msg":"record dead-lettered"' in lines[0]
            assert f'"request_id":"{rid}"' in lines[0]
            return
        time.sleep(0.2)
    raise AssertionError("the writer did not log the request id of the dead-lettered record")


async def _produce_poison(stack: Stack, rid: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            stack.topic,
            b"not a record",
            key=b"poison",
            headers=[(wire.REQUEST_ID_HEADER, rid.encode())],
        )
    finally:
        await producer.stop()


DASHBOARD = (
    Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "grafana" / "sluice.json"
)
# prometheus_client names a counter's family with its _total suffix already.
_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum")}


def _exposed(text: str) -> set[str]:
    """Every series name a /metrics page offers, including declared families that have no
    sample yet (a labelled histogram before its first observation)."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.update(family + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def test_the_dashboard_queries_only_exposed_metrics(stack: Stack) -> None:
    exposed = set().union(*(_exposed(_metrics(stack, service)) for service in SERVICES))
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {name for expr in exprs for name in re.findall(r"\b(sluice_[a-z0-9_]+)\b", expr)}
    assert used, "the dashboard queries no Sluice metric"
    assert sorted(used - exposed) == []
    # And the other way round: every metric family the services declare is on the dashboard.
    families = set().union(
        *(re.findall(r"^# TYPE (sluice_\S+) ", _metrics(stack, s), re.M) for s in SERVICES)
    )
    families = {f for f in families if not f.endswith("_created")}  # client's own timestamps
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert sorted(families - shown) == []
