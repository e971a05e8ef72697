"""Fuzz of the OTLP export path (issue 13): 100,000 seeded payloads -- valid exports mutated
(bit flips, truncations, splices, random bytes), protobuf messages with random field values,
and mutated OTLP JSON. Whatever arrives, parsing either yields trace records the writer can
decode and store, or an OtlpError with a 4xx status; no other exception escapes.

A failure prints the seed; ``_payload(random.Random(seed))`` rebuilds the input."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ingest import otlp
from schemas import trace_wire

INPUTS = 100_000
_TEXT = "abcdefé\u2028\ud7ff{}\"'\\ "


def _text(rng: random.Random, n: int = 8) -> str:
    text = "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, n)))
    return text + "\x00" if rng.random() < 0.05 else text


def _value(rng: random.Random, depth: int = 0) -> AnyValue:
    kind = rng.randrange(7 if depth < 2 else 5)
    if kind == 0:
        return AnyValue(string_value=_text(rng))
    if kind == 1:
        return AnyValue(int_value=rng.randint(-(2**63), 2**63 - 1))
    if kind == 2:
        return AnyValue(double_value=rng.choice([0.5, -1e308, float("inf"), float("nan")]))
    if kind == 3:
        return AnyValue(bool_value=rng.random() < 0.5)
    if kind == 4:
        return AnyValue(bytes_value=rng.randbytes(rng.randint(0, 6)))
    value = AnyValue()
    if kind == 5:
        value.array_value.values.extend(_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    else:
        value.kvlist_value.values.extend(
            KeyValue(key=_text(rng), value=_value(rng, depth + 1)) for _ in range(rng.randint(0, 3))
        )
    return value


def _span(rng: random.Random) -> Span:
    span = Span(
        trace_id=rng.randbytes(16) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 20)),
        span_id=rng.randbytes(8) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 9)),
        parent_span_id=rng.choice([b"", b"", rng.randbytes(8), rng.randbytes(5)]),
        name=_text(rng),
        start_time_unix_nano=rng.choice([0, 1, 2**63 - 1, 2**64 - 1, rng.getrandbits(63)]),
        end_time_unix_nano=rng.choice([0, 2**63, rng.getrandbits(63)]),
        status=Status(code=rng.choice(list(Status.StatusCode.values())), message=_text(rng)),
    )
    keys = ["mlflow.spanType", "mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.traceTag.t"]
    for _ in range(rng.randint(0, 4)):
        key = rng.choice([*keys, "mlflow.traceRequestId", _text(rng)])
        span.attributes.append(KeyValue(key=key, value=_value(rng)))
    return span


def _export(rng: random.Random) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(rng.randint(0, 2)):
        resource_spans = request.resource_spans.add()
        for _ in range(rng.randint(0, 2)):
            resource_spans.resource.attributes.append(KeyValue(key=_text(rng), value=_value(rng)))
        resource_spans.scope_spans.add().spans.extend(_span(rng) for _ in range(rng.randint(0, 3)))
    return request


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif op == 2:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 64)))
    return bytes(data)


def _payload(rng: random.Random) -> tuple[bytes, str]:
    export = _export(rng)
    kind = rng.randrange(3)
    if kind == 0:  # a structurally valid message with hostile values
        return export.SerializeToString(), "application/x-protobuf"
    if kind == 1:
        return _mutate(export.SerializeToString(), rng), "application/x-protobuf"
    doc = json_format.MessageToDict(export)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for field in ("traceId", "spanId", "parentSpanId"):  # OTLP JSON: hex ids
                    if field in span:
                        span[field] = rng.choice([span[field], "zz", "", "0" * rng.randint(1, 40)])
    raw = orjson.dumps(doc)
    return (_mutate(raw, rng) if rng.random() < 0.5 else raw), "application/json"


def test_otlp_payload_fuzz() -> None:
    outcomes: Counter[str] = Counter()
    for seed in range(INPUTS):
        body, media = _payload(random.Random(seed))
        try:
            traces = otlp.to_traces(otlp.parse(body, media))
            records = otlp.to_records(traces, otlp.Envelope(1, "e", 1), "file:///a", 4)
        except otlp.OtlpError as err:
            assert 400 <= err.status < 500, seed
            outcomes[f"refused {err.status}"] += 1
            continue
        except Exception as exc:
            raise AssertionError(f"seed {seed}: {exc!r}") from exc
        for _, record in records:
            assert trace_wire.decode(trace_wire.encode(record)) == record, seed
            assert all(
                "\x00" not in s.name and "\x00" not in (s.span_type or "")
                for t in record.traces
                for s in t.spans
            ), seed
        outcomes["accepted"] += 1
    print(f"otlp fuzz: {INPUTS} inputs, {dict(outcomes)}")
    assert sum(outcomes.values()) == INPUTS
    assert outcomes["accepted"] > 1000 and outcomes["refused 400"] > 1000
