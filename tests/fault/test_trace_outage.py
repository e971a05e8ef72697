"""Issue 13, acceptance 3: Kafka is down while the unchanged MLflow client exports traces.

The client exports asynchronously (its default): each ended span is one OTLP request
(``POST /v1/traces``) and each finished trace one StartTraceV3 (``POST /api/3.0/mlflow/traces``),
queued for 10 worker threads. Both go through MLflow's ``http_request``, whose urllib3 session
retries 429 (and 408/500/502/503/504) up to 7 times for every method, POST included, sleeping
for the answer's Retry-After. While Kafka is down, ingest answers both with 429 + Retry-After
within its produce deadline (the same growing Retry-After as for metrics); once Kafka is back,
the retried requests are acknowledged and every span and trace the client made is stored
exactly once (spans are keyed by (trace, span): a record that timed out but was delivered
later and its retry land on the same row)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.fault.faults import drained, status_of
from tests.stack import REPO, Stack

DEADLINE_S = 5.0  # SLUICE_KAFKA_PRODUCE_DEADLINE_S default
TRACES = 40  # x (3 span exports + 1 StartTraceV3): 160 tasks, below the client's queue of 1000
CLIENT_START_S = 120.0  # process start to its traces made and queued
CLIENT_DEADLINE_S = 300.0  # the client's 7 retries with ingest's growing Retry-After
OTLP_PATH = "/v1/traces"
START_TRACE_PATH = "/api/3.0/mlflow/traces"


@dataclass
class Probe:
    """Raw OTLP exports sent while Kafka is down: status, Retry-After and duration of each."""

    statuses: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)
    missing_retry_after: int = 0
    durations: list[float] = field(default_factory=list)


def _one_span_export() -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(
        Span(
            trace_id=uuid.uuid4().bytes,
            span_id=os.urandom(8),
            name="probe",
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_100,
        )
    )
    return request.SerializeToString()


async def _probe(stack: Stack, experiment: str, probe: Probe, stop: asyncio.Event) -> None:
    headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment}
    timeout = aiohttp.ClientTimeout(total=DEADLINE_S + 30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            started = time.monotonic()
            async with session.post(
                stack.url("ingest") + OTLP_PATH, data=_one_span_export(), headers=headers
            ) as response:
                await response.read()
                status = response.status
                if status == 429:
                    if "Retry-After" in response.headers:
                        probe.retry_after.add(response.headers["Retry-After"])
                    else:
                        probe.missing_retry_after += 1
            probe.durations.append(time.monotonic() - started)
            probe.statuses[status] = probe.statuses.get(status, 0) + 1


async def _create_experiment(stack: Stack) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.url("api") + "/api/2.0/mlflow/experiments/create",
            json={"name": f"trace-outage-{uuid.uuid4().hex[:8]}"},
        ) as created,
    ):
        assert created.status == 200, await created.text()
        return str((await created.json())["experiment_id"])


async def _stored(
    stack: Stack, trace_ids: list[str]
) -> tuple[dict[str, list[str]], list[dict[str, object]]]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(
            "SELECT trace_id, span_id FROM trace_spans WHERE trace_id = ANY($1::text[])",
            trace_ids,
        )
        infos = await conn.fetch(
            "SELECT trace_id, state, finalized FROM trace_info WHERE trace_id = ANY($1::text[])",
            trace_ids,
        )
    finally:
        await conn.close()
    spans: dict[str, list[str]] = {}
    for row in rows:
        spans.setdefault(row["trace_id"], []).append(row["span_id"])
    return spans, [dict(r) for r in infos]


# Issue 13 asks for "a Kafka outage" (no length): 10 s after the client's exports are queued
# (plus its start and Kafka's stop and start, ~20 s in all) already has every export answered 429
# and retried on both routes; the long outage against the client's retry budget is
# tests/fault/test_outages.py's 60 s (issue 6).
DOWN_S = float(os.environ.get("FAULT_TRACE_KAFKA_DOWN_S", "10"))


@pytest.mark.parametrize("down_s", [DOWN_S])
async def test_mlflow_client_exports_traces_through_kafka_outage(
    stack: Stack, down_s: float
) -> None:
    experiment = await _create_experiment(stack)
    await asyncio.to_thread(stack.script, "kafka.sh", "stop")
    probe, stop = Probe(), asyncio.Event()
    probing = asyncio.create_task(_probe(stack, experiment, probe, stop))
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fault.trace_client",
        stack.url("front"),
        experiment,
        str(TRACES),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    try:
        # A loaded machine may take many seconds to import mlflow: the outage counts from the
        # moment the client's exports are queued.
        made = await asyncio.wait_for(client.stdout.readline(), CLIENT_START_S)
        assert made.strip() == b"made", made
        await asyncio.sleep(down_s)
        assert client.returncode is None  # still retrying: nothing was acknowledged yet
        ready_during = await status_of(f"{stack.url('ingest')}/health/ready")
    finally:
        stop.set()
        await asyncio.gather(probing, return_exceptions=True)
        await asyncio.to_thread(stack.script, "kafka.sh", "start")
    restarted = time.monotonic()
    for service in list(stack.processes):
        await asyncio.to_thread(stack.wait_ready, service)
    try:
        out, _ = await asyncio.wait_for(client.communicate(), CLIENT_DEADLINE_S)
    finally:
        if client.returncode is None:
            client.kill()
    client_after_s = time.monotonic() - restarted
    assert client.returncode == 0
    made = json.loads(out.decode().strip().splitlines()[-1])
    expected: dict[str, list[str]] = made["spans"]
    retries: dict[str, int] = made["retries"]
    await drained(stack, topic=stack.traces_topic)
    stored, infos = await _stored(stack, list(expected))

    print(
        f"TRACE OUTAGE kafka down {down_s:.0f}s: probe statuses={probe.statuses}"
        f" Retry-After={sorted(probe.retry_after, key=int)} max request"
        f" {max(probe.durations):.2f}s; ingest ready={ready_during}; client retries={retries};"
        f" client done {client_after_s:.1f}s after Kafka restart; {len(expected)} traces,"
        f" {sum(map(len, stored.values()))} spans and {len(infos)} infos stored"
    )
    assert set(probe.statuses) == {429}, probe.statuses
    assert probe.missing_retry_after == 0 and probe.retry_after
    assert max(probe.durations) <= DEADLINE_S + 1
    assert ready_during == 503
    # The exporter's own requests were answered 429 and retried (not dropped) on both routes.
    assert retries.get(OTLP_PATH, 0) > 0 and retries.get(START_TRACE_PATH, 0) > 0, retries
    assert len(expected) == TRACES
    assert {t: sorted(s) for t, s in stored.items()} == {t: sorted(s) for t, s in expected.items()}
    assert len(infos) == TRACES
    assert all(r["state"] == "OK" and r["finalized"] for r in infos), infos
