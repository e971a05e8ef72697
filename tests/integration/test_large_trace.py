"""Issue 13, large traces: 50,000 spans of one trace in 50 OTLP batches (protobuf, every other
one gzip-compressed, sent out of order with the root last, one batch re-sent) are stored once
each (re-sent spans as last sent) and read back whole -- by the client's get-trace path and the
UI's artifact form and the batch read the client's ``search_traces`` uses -- while the api's
memory stays bounded (spans are streamed from a cursor, never held as a list)."""

from __future__ import annotations

import gzip
import random
import uuid

import orjson
import requests
from mlflow.entities import Trace
from mlflow.protos.service_pb2 import GetTrace
from mlflow.utils.proto_json_utils import parse_dict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.fault.faults import vm_rss_kb
from tests.stack import Stack

SPANS = 50_000
BATCH = 1_000
API_RSS_BOUND_KB = 150 * 1024  # the whole trace as JSON is ~25 MB; Python objects of it, more
TIMEOUT = 120


def _span(trace: bytes, i: int) -> Span:
    span = Span(
        trace_id=trace,
        span_id=(i + 1).to_bytes(8, "big"),
        parent_span_id=b"" if i == 0 else (1).to_bytes(8, "big"),
        name=f"step-{i}",
        start_time_unix_nano=1_700_000_000_000_000_000 + i * 1000,
        end_time_unix_nano=1_700_000_000_000_000_000 + SPANS * 1000 + i,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    span.attributes.append(KeyValue(key="mlflow.spanType", value=AnyValue(string_value="TOOL")))
    span.attributes.append(KeyValue(key="payload", value=AnyValue(string_value="x" * 200)))
    return span


def _post(stack: Stack, experiment: str, spans: list[Span], compress: bool) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    body = request.SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = requests.post(
        stack.url("front") + "/v1/traces", data=body, headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text


def test_fifty_thousand_span_trace(stack: Stack, sluice_url: str) -> None:
    experiment = requests.post(
        f"{sluice_url}/api/2.0/mlflow/experiments/create",
        json={"name": f"large-trace-{uuid.uuid4().hex[:8]}"},
        timeout=TIMEOUT,
    ).json()["experiment_id"]
    trace = uuid.uuid4().bytes
    trace_id = "tr-" + trace.hex()
    batches = [
        [_span(trace, i) for i in range(start, start + BATCH)] for start in range(0, SPANS, BATCH)
    ]
    order = list(range(1, len(batches)))
    random.Random(13).shuffle(order)
    for n, index in enumerate([*order, 0]):  # the batch holding the root span arrives last
        _post(stack, experiment, batches[index], compress=n % 2 == 1)
    # A re-sent batch is stored once, its spans as sent last (the writer's upsert path: their
    # first versions were stored by an earlier flush).
    for span in batches[7]:
        span.name = f"resent-{span.name}"
    _post(stack, experiment, batches[7], compress=False)

    api_pid = stack.processes["api"].pid
    rss_before = vm_rss_kb(api_pid)
    got = requests.get(
        f"{sluice_url}/api/3.0/mlflow/traces/get", params={"trace_id": trace_id}, timeout=TIMEOUT
    )
    assert got.status_code == 200
    response = GetTrace.Response()
    parse_dict(got.json(), response)  # type: ignore[no-untyped-call]  # as RestStore reads it
    full = Trace.from_proto(response.trace)
    assert len(full.data.spans) == SPANS
    assert len({s.span_id for s in full.data.spans}) == SPANS
    resent = {s.name for s in full.data.spans if s.name.startswith("resent-")}
    assert resent == {f"resent-step-{i}" for i in range(7 * BATCH, 8 * BATCH)}
    assert full.info.state.value == "OK"  # the root span arrived: no longer IN_PROGRESS
    assert full.info.request_time == 1_700_000_000_000  # earliest span start (ms)

    artifact = requests.get(
        f"{sluice_url}/ajax-api/2.0/mlflow/get-trace-artifact",
        params={"request_id": trace_id},
        timeout=TIMEOUT,
        stream=True,
    )
    assert artifact.status_code == 200
    assert artifact.headers.get("Transfer-Encoding") == "chunked"  # streamed, not buffered
    size = sum(len(chunk) for chunk in artifact.iter_content(1 << 16))
    growth = vm_rss_kb(api_pid) - rss_before
    print(f"LARGE TRACE: {SPANS} spans, artifact form {size} bytes, api RSS growth {growth} kB")
    assert size > SPANS * 200
    assert growth < API_RSS_BOUND_KB

    # batchGet: each existing trace once, in the order asked, streamed as well.
    batch = requests.get(
        f"{sluice_url}/api/3.0/mlflow/traces/batchGet",
        params={"trace_ids": [trace_id, "tr-" + "0" * 32, trace_id]},
        timeout=TIMEOUT,
        stream=True,
    )
    assert batch.status_code == 200
    assert batch.headers.get("Transfer-Encoding") == "chunked"
    (only,) = orjson.loads(b"".join(batch.iter_content(1 << 16)))["traces"]
    assert only["trace_info"]["trace_id"] == trace_id
    assert len({s["span_id"] for s in only["spans"]}) == SPANS
    growth = vm_rss_kb(api_pid) - rss_before
    print(f"LARGE TRACE: batchGet, api RSS growth {growth} kB")
    assert growth < API_RSS_BOUND_KB
