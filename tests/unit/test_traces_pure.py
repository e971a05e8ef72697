"""Pure parts of the trace path: the wire contract, OTLP parsing, the writer's assembly, the
search compiler."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from api.traces.search_rules import Sql, compile_filter, compile_order
from ingest import otlp, trace_rules
from schemas import trace_wire, wire
from schemas.mlflow_errors import MlflowError
from writer.batch import BatchPolicy
from writer.trace_batch import TraceBatch, assemble

EXAMPLES = Path(trace_wire.__file__).parent / "records" / "examples"
TRACE = bytes.fromhex("8ea3491993f9cc447ecbaa84c075c19d")
TRACE_ID = "tr-" + TRACE.hex()


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("traces.v*/*.json")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_committed_trace_examples_decode(path: Path) -> None:
    record = trace_wire.decode(path.read_bytes())
    assert trace_wire.decode(trace_wire.encode(record)) == record


def test_version_1_and_2_spans_records_assemble_alike() -> None:
    v1 = trace_wire.decode((EXAMPLES / "traces.v1" / "spans.json").read_bytes())
    assert isinstance(v1, trace_wire.SpanBatch)
    (entry,) = trace_wire.entries(v1)
    v2 = trace_wire.SpanRecord(2, v1.experiment_id, v1.event_id, v1.received_at_ms, [entry])
    assert assemble([v1]) == assemble([trace_wire.decode(trace_wire.encode(v2))])
    assert trace_wire.span_count(v1) == trace_wire.span_count(v2) == 1


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"{}", b'{"v": 2, "type": "spans"}', b'{"v": 1, "type": "metrics"}', b"[1]"],
)
def test_invalid_trace_records_are_refused_with_a_reason(raw: bytes | None) -> None:
    with pytest.raises(trace_wire.InvalidTraceRecord):
        trace_wire.decode(raw)


def _span(span_id: str, parent: str = "", **attributes: str) -> Span:
    span = Span(
        trace_id=TRACE,
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=f"s{span_id[-1]}",
        start_time_unix_nano=2_000_000 + int(span_id, 16),
        end_time_unix_nano=9_000_000,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    for key, value in attributes.items():
        span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return span


def _export(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    return request.SerializeToString()


def _to_records(
    request: ExportTraceServiceRequest, experiment_id: int = 1, partitions: int = 4
) -> list[trace_wire.SpanRecord]:
    traces = otlp.to_traces(request)
    envelope = otlp.Envelope(experiment_id, "e", 1)
    pairs = otlp.to_records(traces, envelope, "mlflow-artifacts:/1", partitions)
    for key, record in pairs:
        assert key == record.traces[0].trace_id
        assert {wire.partition_for(t.trace_id, partitions) for t in record.traces} == {
            wire.partition_for(key, partitions)
        }
    return [record for _, record in pairs]


def test_otlp_protobuf_and_gzip_become_one_record_per_partition() -> None:
    body = gzip.compress(_export(_span("0000000000000001"), _span("0000000000000002", "01" * 8)))
    raw = otlp.decompress(body, "gzip", 1 << 20)
    (record,) = _to_records(otlp.parse(raw, "application/x-protobuf"), 7)
    (trace,) = record.traces
    assert trace.trace_id == TRACE_ID and record.experiment_id == 7
    assert [s.parent_span_id for s in trace.spans] == [None, "0101010101010101"]
    assert trace.root is not None
    assert (
        trace.tags["mlflow.artifactLocation"] == f"mlflow-artifacts:/1/traces/{TRACE_ID}/artifacts"
    )


def test_stored_spans_carry_the_trace_id_as_request_id() -> None:
    """Absent, the request-id attribute is appended (as bytes, after the span's other fields);
    present, it is overwritten in place; either way the stored Span is the client's span with
    that attribute saying the MLflow trace id."""
    absent = _span("0000000000000001", **{"mlflow.spanType": '"LLM"'})
    present = _span("0000000000000002", "01" * 8, **{otlp.REQUEST_ID_ATTRIBUTE: '"tr-other"'})
    (record,) = _to_records(otlp.parse(_export(absent, present), "application/x-protobuf"))
    stored = [Span.FromString(s.proto) for s in record.traces[0].spans]
    request_id = KeyValue(key=otlp.REQUEST_ID_ATTRIBUTE, value=AnyValue(string_value=TRACE_ID))
    absent.attributes.append(request_id)
    present.attributes[0].CopyFrom(request_id)
    assert stored == [absent, present]


def test_traces_of_one_partition_share_a_record() -> None:
    spans = [
        Span(trace_id=bytes([t]) * 16, span_id=bytes([1]) * 8, name=f"t{t}") for t in range(40)
    ]
    records = _to_records(otlp.parse(_export(*spans), "application/x-protobuf"), partitions=8)
    partitions = [wire.partition_for(r.traces[0].trace_id, 8) for r in records]
    assert len(records) == len(set(partitions)) <= 8
    assert sum(len(r.traces) for r in records) == 40


def test_records_of_many_small_spans_stay_under_kafkas_limit() -> None:
    """The size estimate counts every field of a span, not only its proto and texts: 9,000
    minimal spans of one trace (a 0.5 MB body) once made records of 1.5 MB, which Kafka
    refuses."""
    root = _span("0000000000000001")
    spans = [root] + [_span(f"{i:016x}", "0000000000000001") for i in range(2, 9002)]
    records = _to_records(otlp.parse(_export(*spans), "application/x-protobuf"))
    sizes = [len(trace_wire.encode(r)) for r in records]
    assert max(sizes) <= otlp.ENTRY_MAX_BYTES + 4096, sizes
    assert sum(len(t.spans) for r in records for t in r.traces) == 9001


def test_otlp_json_takes_hex_ids() -> None:
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": "00000000000000aa",
                                "name": "x",
                                "startTimeUnixNano": "5",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    parsed = otlp.parse(orjson.dumps(doc), "application/json")
    ((trace,),) = [r.traces for r in _to_records(parsed)]
    assert trace.spans[0].span_id == "00000000000000aa" and trace.spans[0].start_ns == 5


@pytest.mark.parametrize(
    ("body", "media", "status"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400),
        (b"{", "application/json", 400),
        (b"", "application/x-protobuf", 400),  # no resource spans
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            400,
        ),
    ],
)
def test_malformed_otlp_is_a_clean_4xx(body: bytes, media: str, status: int) -> None:
    with pytest.raises(otlp.OtlpError) as err:
        otlp.parse(body, media)
    assert err.value.status == status


def test_spans_without_ids_are_refused() -> None:
    parsed = otlp.parse(_export(Span(trace_id=TRACE, name="no span id")), "application/x-protobuf")
    with pytest.raises(otlp.OtlpError) as err:
        otlp.to_traces(parsed)
    assert err.value.status == 422


def test_content_type_and_decompression_bounds() -> None:
    with pytest.raises(otlp.OtlpError, match="Invalid Content-Type"):
        otlp.media_type("text/plain")
    assert otlp.media_type("application/json; charset=utf-8") == "application/json"
    bomb = gzip.compress(b"\0" * 2_000_000)
    with pytest.raises(otlp.OtlpError) as err:
        otlp.decompress(bomb, "gzip", 1_000_000)
    assert err.value.status == 413
    with pytest.raises(otlp.OtlpError, match="Unsupported Content-Encoding"):
        otlp.decompress(b"x", "br", 10)


@pytest.mark.parametrize("text", ["x", "\x01"])  # "\x01" is written as 6 bytes of JSON
def test_a_large_trace_is_split_into_records_below_kafkas_limit(text: str) -> None:
    spans = [_span(f"{i:016x}", "01" * 8, blob=text * 100_000) for i in range(1, 21)]
    spans.append(_span("0000000000000001", **{"mlflow.traceTag.k": text * 5_000}))
    records = _to_records(otlp.parse(_export(*spans), "application/x-protobuf"))
    assert len(records) > 1
    assert all(len(trace_wire.encode(r)) < 1_000_000 for r in records)
    assert sum(len(t.spans) for r in records for t in r.traces) == 21
    roots = [t for r in records for t in r.traces if t.root is not None]
    assert len(roots) == 1 and roots[0].tags  # root and tags ride on one entry only
    assert sum(1 for r in records for t in r.traces if t.tags) == 1


def test_a_span_too_large_for_a_record_is_refused() -> None:
    parsed = otlp.parse(
        _export(_span("0000000000000001", blob="x" * 700_000)), "application/x-protobuf"
    )
    with pytest.raises(otlp.OtlpError) as err:
        otlp.to_traces(parsed)
    assert err.value.status == 413


def _records(*bodies: bytes) -> list[trace_wire.TraceRecord]:
    records: list[trace_wire.TraceRecord] = []
    for body in bodies:
        records.extend(_to_records(otlp.parse(body, "application/x-protobuf"), 3))
    return records


def test_spans_in_several_batches_and_out_of_order_assemble_one_trace() -> None:
    child = _export(_span("0000000000000002", "0000000000000001"))
    root = _export(_span("0000000000000001", **{"mlflow.traceTag.team": "a"}))
    spans, infos = assemble(_records(child, root, child))  # child re-sent: stored once
    assert [s[1] for s in spans] == ["0000000000000001", "0000000000000002"]
    (info,) = infos
    assert info[0] == TRACE_ID and info[4] == "OK" and info[8] is False  # not finalized
    assert info[2] == 2 and info[3] == 7  # request time = earliest start, up to the last end
    assert orjson.loads(info[11])["team"] == "a"


def test_start_trace_wins_over_spans() -> None:
    start = trace_wire.decode((EXAMPLES / "traces.v2" / "trace_info.json").read_bytes())
    assert isinstance(start, trace_wire.TraceStart)
    spans = _records(_export(_span("0000000000000009")))
    _, infos = assemble([start, *spans])
    (info,) = infos
    assert info[8] is True and info[2] == start.request_time_ms and info[3] == start.execution_ms


def _v2_info(state: str, execution_ms: int | None, **tags: str) -> trace_wire.TraceStart:
    return trace_wire.TraceStart(
        v=2,
        trace_id="0123456789abcdef0123456789abcdef",
        experiment_id=4,
        event_id=state,
        received_at_ms=1,
        request_time_ms=1000,
        execution_ms=execution_ms,
        state=state,  # type: ignore[arg-type]
        request_preview=None,
        response_preview=None,
        client_request_id=None,
        tags=tags,
        metadata={"m": state},
    )


def test_a_v2_start_and_its_end_in_one_batch_merge_in_order() -> None:
    start = _v2_info("IN_PROGRESS", None, team="a", kept="1")
    end = _v2_info("OK", 25, team="b")
    _, (info,) = assemble([start, end])
    assert (info[2], info[3], info[4], info[8]) == (1000, 25, "OK", True)
    assert orjson.loads(info[11]) == {"team": "b", "kept": "1"}  # tags accumulate
    assert orjson.loads(info[12]) == {"m": "OK"}
    _, (again,) = assemble([start, end, end])  # a re-sent end changes nothing
    assert again == info


def test_trace_batch_bounds_and_offsets() -> None:
    batch = TraceBatch(BatchPolicy(max_rows=2, max_age_s=10))
    (record,) = _records(_export(_span("0000000000000001"), _span("0000000000000002")))
    batch.add(0, 41, record, now=0.0)
    batch.add(1, 7, None, now=0.0)  # dead-lettered: offsets still advance
    assert batch.ready(0.0) and batch.next_offsets == {0: 42, 1: 8}
    batch.drop_partitions({0})
    assert batch.size == 0 and batch.next_offsets == {1: 8}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tags.team = 'a'", "(t.tags->>$1) = $2"),
        ("attributes.status = 'OK' AND timestamp_ms > 5", "t.request_time_ms > $2"),
        ("span.name LIKE 'x%'", "EXISTS (SELECT 1 FROM trace_spans"),
        ("metadata.`mlflow.user` IS NULL", "(t.metadata->>$1) IS NULL"),
        ("status IN ('OK', 'ERROR')", "t.state = ANY($1::text[])"),
        ("run_id = 'r'", "trace_run_links"),
    ],
)
def test_search_filters_compile_to_parameterised_sql(text: str, fragment: str) -> None:
    sql = Sql()
    compile_filter(text, sql)
    assert fragment in " AND ".join(sql.where)


@pytest.mark.parametrize(
    "text",
    ["bogus = 1", "tags.a = 'x' OR tags.b = 'y'", "timestamp_ms = 'x'", "tags.a", "span.foo = 'x'"],
)
def test_bad_search_filters_are_400(text: str) -> None:
    with pytest.raises(MlflowError) as err:
        compile_filter(text, Sql())
    assert err.value.code == "INVALID_PARAMETER_VALUE"


def test_order_by_always_ends_with_the_trace_id() -> None:
    assert compile_order([]) == "t.request_time_ms DESC, t.trace_id ASC"
    assert compile_order(["execution_time DESC"]).startswith("t.execution_ms DESC NULLS LAST")
    with pytest.raises(MlflowError):
        compile_order(["tags.x"])


def test_v2_start_and_end_are_read_as_mlflow_reads_them() -> None:
    start = trace_rules.validate_start_trace_v2(
        {
            "experiment_id": "12",
            "timestamp_ms": "1600000000000",
            "tags": [{"key": "t", "value": "1"}, {"key": "t", "value": "2"}, {"key": "e"}],
        }
    )
    assert (start.experiment_id, start.timestamp_ms) == (12, 1_600_000_000_000)
    assert start.tags == {"t": "2", "e": ""} and start.metadata == {}  # a later key wins
    assert trace_rules.validate_start_trace_v2({"experiment_id": "1", "timestamp_ms": 1.5}) == (
        trace_rules.TraceV2Call(1, 0, None, {}, {})  # ParseDict refuses 1.5: the default
    )
    end = trace_rules.validate_end_trace_v2({"status": 2, "timestamp_ms": 9})
    assert (end.state, end.timestamp_ms) == ("ERROR", 9)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"experiment_id": "1", "tags": {"a": "b"}},
            'Invalid value {"a":"b"} for parameter \'tags\'',
        ),
        ({"experiment_id": "1", "tags": [{"value": "b"}]}, "for parameter 'tags' supplied:  Hint"),
        ({"experiment_id": "1", "request_metadata": [5]}, "parameter 'request_metadata'"),
        ({"experiment_id": "abc"}, "Invalid experiment ID 'abc'."),
        ({}, "Invalid experiment ID ''."),
        ({"experiment_id": 5}, "Invalid value 5 for parameter 'experiment_id'"),
        ({"experiment_id": "1", "timestamp_ms": "soon"}, "parameter 'timestamp_ms'"),
        ({"experiment_id": "1", "timestamp_ms": -1}, "parameter 'timestamp_ms'"),
        (
            {"experiment_id": "1", "tags": [{"key": "mlflow.traceName", "value": "n" * 4097}]},
            "'Trace name' exceeds the maximum length of 4096 characters",
        ),
    ],
)
def test_bad_v2_starts_are_400s(doc: dict[str, object], message: str) -> None:
    with pytest.raises(MlflowError) as refused:
        trace_rules.validate_start_trace_v2(doc)
    assert refused.value.code == "INVALID_PARAMETER_VALUE"
    assert message in refused.value.message


@pytest.mark.parametrize("status", [None, "BOGUS", "TRACE_STATUS_UNSPECIFIED", 0])
def test_a_v2_end_needs_a_status(status: object) -> None:
    """MLflow crashes on these (its TRACE_STATUS_UNSPECIFIED is no storable state)."""
    with pytest.raises(MlflowError) as refused:
        trace_rules.validate_end_trace_v2({"status": status})
    assert refused.value.code == "INVALID_PARAMETER_VALUE"
