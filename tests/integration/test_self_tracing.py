"""Sluice's own OpenTelemetry spans, exported over OTLP/HTTP when SLUICE_OTEL_ENDPOINT is set:
a log-metric call continues the caller's trace through ingest's server span and kafka.produce,
and the writer's flush span links to it, with the PostgreSQL transaction as its child.
The collector is a small OTLP/HTTP receiver in the test (real HTTP, real protobuf)."""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from mlflow import MlflowClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.stack import Stack


@dataclass(frozen=True, slots=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent: str
    links: tuple[str, ...]  # trace ids


class Collector(ThreadingHTTPServer):
    spans: list[Span]


class _Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        server: Collector = self.server  # type: ignore[assignment]
        for resource in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for s in scope.spans:
                    server.spans.append(
                        Span(
                            attrs.get("service.name", ""),
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            tuple(link.trace_id.hex() for link in s.links),
                        )
                    )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:  # keep pytest output clean
        return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), _Receive)
    server.spans = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


def test_a_metric_write_is_traced_from_the_request_to_postgresql(
    stack: Stack, sluice_url: str, collector: Collector
) -> None:
    tag = uuid.uuid4().hex[:8]
    ingest_port, writer_port = _free_port(), _free_port()
    overrides = {
        "SLUICE_OTEL_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}/v1/traces",
        "SLUICE_KAFKA_TOPIC": f"sluice.test-otel-{tag}",
        "SLUICE_KAFKA_PARTITIONS": "1",
        "SLUICE_WRITER_GROUP_ID": f"sluice-writer-otel-{tag}",
        "SLUICE_INGEST_PORT": str(ingest_port),
        "SLUICE_WRITER_METRICS_PORT": str(writer_port),
    }
    stack.run_cli("migrate", **overrides)
    stack.start("writer", f"writer-otel-{tag}", writer_port, **overrides)
    stack.start("ingest", f"ingest-otel-{tag}", ingest_port, **overrides)
    try:
        client = MlflowClient(sluice_url)
        run_id = client.create_run(client.create_experiment(f"otel-{tag}")).info.run_id
        trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        answer = requests.post(
            f"http://127.0.0.1:{ingest_port}/api/2.0/mlflow/runs/log-metric",
            json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0},
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
            timeout=10,
        )
        assert answer.status_code == 200
    finally:
        # Stopped at once: its last batch of spans must leave on the way out.
        stack.kill(f"ingest-otel-{tag}", signal.SIGTERM)
    try:
        spans = _wait_for_flush(collector, trace_id)
    finally:
        stack.kill(f"writer-otel-{tag}", signal.SIGTERM)

    seen = [(s.service, s.name, s.trace_id == trace_id, s.parent) for s in spans]
    server = next((s for s in spans if s.trace_id == trace_id and s.parent == caller_span), None)
    assert server is not None, f"no server span under the caller's; got {seen}"
    assert (server.service, server.name) == (
        "sluice-ingest",
        "POST /api/2.0/mlflow/runs/log-metric",
    )
    produce = next(s for s in spans if s.name == "kafka.produce" and s.trace_id == trace_id)
    assert produce.parent == server.span_id
    flush = next(s for s in spans if s.name == "writer.flush" and trace_id in s.links)
    assert flush.service == "sluice-writer"
    pg = next(s for s in spans if s.name == "postgresql.flush" and s.parent == flush.span_id)
    assert pg.trace_id == flush.trace_id


def _wait_for_flush(collector: Collector, trace_id: str) -> list[Span]:
    """Spans leave in batches (every 5 s by default), each process on its own timer."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spans = list(collector.spans)
        flushes = [s for s in spans if s.name == "writer.flush" and trace_id in s.links]
        ingest = [s for s in spans if s.service == "sluice-ingest" and s.trace_id == trace_id]
        # Each process exports on its own 5-second timer: the writer's batch can arrive first.
        if flushes and ingest and any(s.parent == flushes[0].span_id for s in spans):
            return spans
        time.sleep(0.5)
    raise AssertionError(f"no linked flush span; got {[(s.service, s.name) for s in spans]}")
