"""The Kafka record contract (schemas/records/, docs/kafka-records.md).

- Every released schema is frozen: its digest is pinned below, so a change to a released
  version fails here and has to become a new version instead.
- Every example of every released version is valid by its schema AND stored by the current
  writer's decoder: a producer of any released version keeps working.
- Every invalid example is refused by both, and the writer names the reason the example
  states (what a producer sees in the dead-letter header).
- What ingest produces (wire.encode, trace_wire.encode) is valid by the schema, for arbitrary
  points and trace records.
- The partition function: the Python, Java and Go reference implementations all reproduce the
  committed vectors, and so does wire.partition_for; the docs show exactly these files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import trace_wire, wire

RECORDS = Path(wire.__file__).parent / "records"
DOC = Path(wire.__file__).parents[1] / "docs" / "kafka-records.md"
TOPICS = json.loads((RECORDS / "topics.json").read_text())

# Released schema versions and their sha256: never edit one of these files. A producer built
# against a released version must keep working, so a change is a new version file.
RELEASED = {
    "metrics.v1.schema.json": "1a53b6ce43b61ffd7ad62dced2316dcad08645eb63c225930b76e5aa88623984",
    "traces.v1.schema.json": "94f69254b98a29720c401c6d4fe4910b724501ad611205f259f715255a456eb7",
    "traces.v2.schema.json": "eb38865e0d89a68384befaafe3152e50aaa2c5e3654e80b8b5aae91dccb778b2",
}


def _versions() -> list[tuple[str, str, str]]:
    """(record type, version, schema file) of every topic."""
    return [
        (record_type, version, schema)
        for topic in TOPICS.values()
        for record_type, spec in topic["record_types"].items()
        for version, schema in spec["versions"].items()
    ]


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((RECORDS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _examples(kind: str) -> list[Path]:
    found = sorted(
        path
        for record_type, version, _ in _versions()
        for path in (RECORDS / kind / f"{record_type}.v{version}").glob("*.json")
    )
    assert found, f"no {kind} examples"
    return found


def test_released_schemas_are_unchanged() -> None:
    listed = {schema for _, _, schema in _versions()}
    assert set(RELEASED) <= listed
    for name, digest in RELEASED.items():
        actual = hashlib.sha256((RECORDS / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed: released versions are frozen, add a new one"


@pytest.mark.parametrize("path", _examples("examples"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_are_valid_and_stored_by_the_writer(path: Path) -> None:
    record_type, version = path.parent.name.rsplit(".v", 1)
    schema_name = TOPICS_BY_TYPE[record_type][version]
    raw = path.read_bytes()
    _validator(schema_name).validate(json.loads(raw))
    _DECODERS[record_type](raw)  # raises if the writer would dead-letter it


# The writer's decoder of each record type (what it stores or dead-letters).
_DECODERS = {"metrics": wire.decode, "traces": trace_wire.decode}


@pytest.mark.parametrize("path", _examples("invalid"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_invalid_examples_are_refused_with_their_reason(path: Path) -> None:
    record_type, version = path.parent.name.rsplit(".v", 1)
    case = json.loads(path.read_text())
    raw = case["raw"].encode() if "raw" in case else json.dumps(case["record"]).encode()
    if "record" in case:
        with pytest.raises(jsonschema.ValidationError):
            _validator(TOPICS_BY_TYPE[record_type][version]).validate(case["record"])
    if record_type == "traces":
        with pytest.raises(trace_wire.InvalidTraceRecord) as refused_trace:
            trace_wire.decode(raw)
        assert case["reason"] in refused_trace.value.reason, case["why"]
        return
    with pytest.raises(wire.InvalidRecord) as refused:
        wire.decode(raw)
    assert case["reason"] in wire_reason(raw, refused.value), case["why"]


def wire_reason(raw: bytes, error: wire.InvalidRecord) -> str:
    """The reason the writer puts into the dead-letter header, plus the explicit checks' one
    (msgspec refuses first with its own wording; the explicit check says it in ours)."""
    try:
        wire._explain(raw)
    except wire.InvalidRecord as explicit:
        return f"{error.reason} | {explicit.reason}"
    return error.reason


TOPICS_BY_TYPE: dict[str, dict[str, str]] = {}
for _type, _version, _name in _versions():
    TOPICS_BY_TYPE.setdefault(_type, {})[_version] = _name


_points = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, wire.INT64_MAX),
        st.integers(wire.INT64_MIN, wire.INT64_MAX),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(points=_points, received=st.integers(0, wire.INT64_MAX))
def test_what_ingest_produces_is_valid(
    points: list[tuple[str, float, int, int]], received: int
) -> None:
    metrics = []
    for key, value, ts, step in points:
        stored, is_nan = wire.normalise_value(value)
        metrics.append((key, stored, ts, step, is_nan))
    raw = wire.encode("run", "event", received, metrics)
    _validator("metrics.v1.schema.json").validate(json.loads(raw))


_model = st.tuples(
    st.text(min_size=1, max_size=10), st.none() | st.text(max_size=10), st.none() | st.text()
)


@settings(max_examples=200, deadline=None)
@given(points=_points, models=st.lists(st.none() | _model, max_size=20))
def test_what_ingest_produces_with_models_is_valid_and_decoded(
    points: list[tuple[str, float, int, int]],
    models: list[tuple[str, str | None, str | None] | None],
) -> None:
    metrics: list[wire.PointFields | wire.ModelPointFields] = []
    for (key, value, ts, step), model in zip(points, models + [None] * len(points), strict=False):
        stored, is_nan = wire.normalise_value(value)
        point: wire.PointFields = (key, stored, ts, step, is_nan)
        metrics.append(point if model is None else (*point, *model))
    raw = wire.encode("run", "event", 1, metrics, models=True)
    _validator("metrics.v2.schema.json").validate(json.loads(raw))
    record = wire.decode(raw)
    assert [msgspec.structs.astuple(p)[:5] for p in record.metrics] == [m[:5] for m in metrics]
    assert [(p.model_id, p.dataset_name, p.dataset_digest) for p in record.model_points] == [
        m[5:] for m in metrics if len(m) > 5
    ]


_text = st.text(max_size=30)
_hex16 = st.binary(min_size=8, max_size=8).map(bytes.hex)
_int64 = st.integers(0, trace_wire.INT64_MAX)
_trace_id = st.binary(min_size=16, max_size=16).map(lambda b: "tr-" + b.hex())
_tags = st.dictionaries(st.text(max_size=10), _text, max_size=3)
_spans = st.lists(
    st.builds(
        trace_wire.WireSpan,
        span_id=_hex16,
        parent_span_id=st.none() | _hex16,
        name=_text,
        span_type=st.none() | _text,
        status=st.sampled_from(["OK", "ERROR", "UNSET"]),
        start_ns=_int64,
        end_ns=st.none() | _int64,
        proto=st.binary(max_size=40),
    ),
    max_size=5,
)
_root = st.none() | st.builds(
    trace_wire.TraceRoot,
    request_preview=st.none() | _text,
    response_preview=st.none() | _text,
    tags=_tags,
)
_trace_records = st.one_of(
    st.builds(
        trace_wire.SpanRecord,
        v=st.just(2),
        experiment_id=_int64,
        event_id=st.text(min_size=1, max_size=10),
        received_at_ms=_int64,
        traces=st.lists(
            st.builds(
                trace_wire.TraceSpans, trace_id=_trace_id, spans=_spans, root=_root, tags=_tags
            ),
            max_size=3,
        ),
    ),
    st.builds(
        trace_wire.SpanBatch,
        v=st.just(1),
        trace_id=_trace_id,
        experiment_id=_int64,
        event_id=st.text(min_size=1, max_size=10),
        received_at_ms=_int64,
        spans=_spans,
        root=_root,
        tags=_tags,
    ),
    st.builds(
        trace_wire.TraceStart,
        v=st.sampled_from([1, 2]),
        trace_id=_trace_id,
        experiment_id=_int64,
        event_id=st.text(min_size=1, max_size=10),
        received_at_ms=_int64,
        request_time_ms=_int64,
        execution_ms=st.none() | _int64,
        state=st.sampled_from(["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"]),
        request_preview=st.none() | _text,
        response_preview=st.none() | _text,
        client_request_id=st.none() | _text,
        tags=_tags,
        metadata=_tags,
    ),
)


@settings(max_examples=200, deadline=None)
@given(record=_trace_records)
def test_what_ingest_produces_for_traces_is_valid(record: trace_wire.TraceRecord) -> None:
    raw = trace_wire.encode(record)
    _validator(f"traces.v{record.v}.schema.json").validate(json.loads(raw))
    assert trace_wire.decode(raw) == record


# -- the partition function -------------------------------------------------------------------

VECTORS = json.loads((RECORDS / "partition-vectors.json").read_text())["cases"]
STDIN = "".join(f"{c['run_id']} {n}\n" for c in VECTORS for n in c["partitions"])
EXPECTED = [str(p) for c in VECTORS for p in c["partitions"].values()]
IMPLEMENTATIONS = RECORDS / "partition"


def test_partition_vectors_match_the_runtime() -> None:
    for case in VECTORS:
        for n, partition in case["partitions"].items():
            assert wire.partition_for(case["run_id"], int(n)) == partition


def _run(command: list[str], cwd: Path) -> list[str]:
    result = subprocess.run(
        command, cwd=cwd, input=STDIN, capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout.split()


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: the reference implementations must be checked"
    return path


def test_python_reference_implementation() -> None:
    assert _run(["python3", "partition.py"], IMPLEMENTATIONS) == EXPECTED


def test_java_reference_implementation(tmp_path: Path) -> None:
    subprocess.run(
        [_tool("javac"), "-d", str(tmp_path), str(IMPLEMENTATIONS / "Partition.java")],
        check=True,
        timeout=120,
    )
    assert _run([_tool("java"), "-cp", str(tmp_path), "Partition"], tmp_path) == EXPECTED


def test_go_reference_implementation(tmp_path: Path) -> None:
    binary = tmp_path / "partition"
    subprocess.run(
        [_tool("go"), "build", "-o", str(binary), "partition.go"],
        cwd=IMPLEMENTATIONS,
        check=True,
        timeout=300,
    )
    assert _run([str(binary)], tmp_path) == EXPECTED


@pytest.mark.parametrize("name", ["partition.py", "Partition.java", "partition.go"])
def test_docs_show_the_tested_implementations(name: str) -> None:
    assert (IMPLEMENTATIONS / name).read_text().strip() in DOC.read_text()


def test_docs_show_the_tested_schema_and_an_example() -> None:
    doc = DOC.read_text()
    assert (RECORDS / "metrics.v1.schema.json").read_text().strip() in doc
    assert (RECORDS / "examples" / "metrics.v1" / "three-points.json").read_text().strip() in doc


def test_docs_show_the_traces_topic() -> None:
    doc = DOC.read_text()
    assert (RECORDS / "traces.v2.schema.json").read_text().strip() in doc
    for example in ("spans.json", "trace_info.json"):
        assert (RECORDS / "examples" / "traces.v2" / example).read_text().strip() in doc
    for name, topic in TOPICS.items():
        assert f"`{name}`" in doc and f"`{topic['dead_letter_topic']}`" in doc


def test_docs_show_the_model_metrics_version() -> None:
    doc = DOC.read_text()
    assert (RECORDS / "metrics.v2.schema.json").read_text().strip() in doc
    assert (RECORDS / "examples" / "metrics.v2" / "model-metrics.json").read_text().strip() in doc
