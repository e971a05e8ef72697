"""The pure parts of `sluice import`/`export`: URI forms, the per-version SELECTs, the
streaming chunker (series cut at 320 points across batch and run boundaries), and the trace
row conversions both ways."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from schemas.span_dict import span_dict, span_proto
from schemas.wire import DOUBLE_MAX
from sluice.commands.transfer import tables, traces
from sluice.commands.transfer.mlflow_db import SourceError, parse_uri
from sluice.commands.transfer.points import Chunker, Piece
from sluice.commands.transfer.table_spec import Has


@pytest.mark.parametrize(
    ("uri", "dialect", "target"),
    [
        ("sqlite:///mlflow.db", "sqlite", "mlflow.db"),
        ("sqlite:////srv/mlflow/mlflow.db", "sqlite", "/srv/mlflow/mlflow.db"),
        ("postgresql://u:p@h:5432/db", "postgresql", "postgresql://u:p@h:5432/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql", "postgresql://u@h/db"),
    ],
)
def test_mlflow_uri_forms(uri: str, dialect: str, target: str) -> None:
    location = parse_uri(uri)
    assert (location.dialect, location.target) == (dialect, target)


@pytest.mark.parametrize("uri", ["mysql://h/db", "sqlite://", "file:///x.db"])
def test_unsupported_uris_are_refused(uri: str) -> None:
    with pytest.raises(SourceError):
        parse_uri(uri)


def _has(columns: dict[str, set[str]]) -> Has:
    return Has(lambda table, column: table in columns and (not column or column in columns[table]))


def test_older_schemas_get_fallbacks_for_missing_columns() -> None:
    mlflow_1x = _has(
        {
            "experiments": {"experiment_id", "name", "artifact_location", "lifecycle_stage"},
            "runs": {"run_uuid", "experiment_id", "user_id", "status"},
            "metrics": set(),
            "tags": set(),
            "params": set(),
        }
    )
    present = {t.target for t in tables.present(mlflow_1x)}
    assert "logged_models" not in present and "datasets" not in present
    assert {"experiments", "runs", "params", "tags"} <= present
    runs = next(t for t in tables.TABLES if t.target == "runs").select(mlflow_1x)
    assert "mlflow.runName" in runs and "r.name" not in runs and "deleted_time" not in runs
    experiments = tables.experiments_select(mlflow_1x)
    assert "creation_time" not in experiments and "workspace" not in experiments


def test_workspaces_are_filtered_when_present() -> None:
    mlflow_3 = _has({"experiments": {"workspace", "creation_time", "last_update_time"}})
    assert "WHERE workspace = 'default'" in tables.experiments_select(mlflow_3)
    assert "experiment_id = 0" in tables.experiments_select(mlflow_3, default_only=True)


def test_logged_model_status_numbers_become_names() -> None:
    table = next(t for t in tables.TABLES if t.target == "logged_models")
    assert table.convert is not None
    row = table.convert(("m-1", 1, "n", "loc", 1, 2, 2, None, None, None, "active"))
    assert row[6] == "LOGGED_MODEL_READY"


def _points(run: str, key: str, n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [(run, key, 1000 + s, s, float(s), 0) for s in range(start, start + n)]


def _feed(rows: Sequence[tuple[object, ...]], batch: int) -> list[Piece]:
    chunker = Chunker()
    pieces: list[Piece] = []
    for i in range(0, len(rows), batch):
        pieces.extend(chunker.feed(rows[i : i + batch]))
    pieces.append(chunker.finish())
    return pieces


def test_series_are_cut_into_full_chunks_across_batches() -> None:
    rows = _points("r1", "a", 700) + _points("r1", "b", 5) + _points("r2", "a", 320)
    pieces = _feed(rows, batch=97)
    chunks = [c for p in pieces for c in p.chunks]
    assert [(c[0], c[1], c[2]) for c in chunks] == [
        ("r1", "a", 320),
        ("r1", "a", 320),
        ("r1", "a", 60),
        ("r1", "b", 5),
        ("r2", "a", 320),
    ]
    # consecutive chunks of a series follow each other (the api's fast read path)
    assert chunks[0][4] < chunks[1][3] and chunks[1][4] < chunks[2][3]
    assert sum(p.points for p in pieces) == len(rows)
    assert [p.done for p in pieces if p.done] == ["r1", "r2"]
    latest = {(row[0], row[1]): row for p in pieces for row in p.latest}
    assert latest[("r1", "a")][2:] == (699, 1699, 699.0, False)
    assert latest[("r1", "b")][2:] == (4, 1004, 4.0, False)


def test_a_run_boundary_ends_a_piece_with_everything_of_that_run() -> None:
    pieces = _feed(_points("r1", "a", 3) + _points("r2", "a", 3), batch=100)
    first = next(p for p in pieces if p.done == "r1")
    assert {c[0] for c in first.chunks} == {"r1"} and first.points == 3
    assert {row[0] for row in first.latest} == {"r1"}


def test_nan_and_unsanitised_infinity() -> None:
    rows = [
        ("r", "k", 1, 0, 0.0, 1),  # NaN as MLflow stores it
        ("r", "k", 2, 1, math.inf, 0),  # written by an old client, never sanitised
        ("r", "k", 3, 2, -math.inf, 0),
    ]
    (chunk,) = [c for p in _feed(rows, batch=10) for c in p.chunks]
    assert chunk[11] == [None, DOUBLE_MAX, -DOUBLE_MAX]


# -- traces ------------------------------------------------------------------------------------

# A span as MLflow 3.17.2 stores it (``spans.content``), taken from a real server's database.
_SPAN_CONTENT = {
    "trace_id": "NlEBzsyWtv3Cjbhi6tF4XQ==",
    "span_id": "L/24UP2qtYA=",
    "parent_span_id": "AZ+1KTv6lmk=",
    "name": "inner",
    "start_time_unix_nano": 1796303243540756732,
    "end_time_unix_nano": 1796303243540988384,
    "events": [{"name": "ev", "time_unix_nano": 1796303243540848640, "attributes": {"n": 3}}],
    "status": {"code": "STATUS_CODE_ERROR", "message": "ValueError: boom"},
    "attributes": {
        "mlflow.traceRequestId": '"tr-365101cecc96b6fdc28db862ead1785d"',
        "mlflow.spanType": '"TOOL"',
        "mlflow.spanInputs": '{"x": 10, "l": [1, 2.5, null, true], "e": {}}',
        "custom": '[1, 2, "a"]',
        "mlflow.spanLogLevel": "20",
    },
    "links": [],
}


def test_a_stored_span_round_trips_through_the_otlp_message() -> None:
    proto = span_proto(_SPAN_CONTENT)
    span = Span.FromString(proto)
    assert span.span_id.hex() == "2ffdb850fdaab580" and span.parent_span_id.hex()
    attributes = {kv.key: kv.value for kv in span.attributes}
    assert attributes["mlflow.spanLogLevel"].int_value == 20  # values decoded, as the client
    assert attributes["mlflow.spanInputs"].HasField("kvlist_value")
    assert span_dict(proto) == _SPAN_CONTENT


def test_promoted_trace_columns_become_tags_and_metadata_again() -> None:
    tags = '{"team": "x", "mlflow.traceName": "stale"}'
    metadata = '{"mlflow.trace.session": "stale", "k": "v"}'
    tokens = (10, 2, 12, None, None, None)
    row = traces.trace_info_row(
        (
            "tr-1",
            1,
            5,
            2,
            "UNSPECIFIED",
            "in",
            "out",
            None,
            5,
            7,
            tags,
            metadata,
            "root",
            "s1",
            *tokens,
            None,
            None,
            0.5,
        )
    )
    assert row[4] == "STATE_UNSPECIFIED" and row[8] is True
    assert json.loads(row[11]) == {"team": "x", "mlflow.traceName": "root"}
    assert json.loads(row[12]) == {
        "k": "v",
        "mlflow.trace.session": "s1",
        "mlflow.trace.tokenUsage": '{"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}',
        "mlflow.trace.cost": '{"total_cost": 0.5}',
    }
    back = traces.mlflow_trace_info(("tr-1", 1, 5, 2, "OK", None, "in", "out", row[11], row[12]))
    assert dict(zip(traces.MLFLOW_TRACE_INFO_COLUMNS, back, strict=True)) == {
        "request_id": "tr-1",
        "experiment_id": 1,
        "timestamp_ms": 5,
        "execution_time_ms": 2,
        "status": "OK",
        "client_request_id": None,
        "request_preview": "in",
        "response_preview": "out",
        "trace_name": "root",
        "session_id": "s1",
        "input_tokens": 10,
        "output_tokens": 2,
        "total_tokens": 12,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
        "cache_creation_input_tokens_above_1hr": None,
        "input_cost": None,
        "output_cost": None,
        "total_cost": 0.5,
    }


@pytest.mark.parametrize(
    ("kind", "value", "form"),
    [
        ("feedback", "true", {"value": True}),
        ("expectation", '"42"', {"value": "42"}),
        (
            "expectation",
            '{"a": [1]}',
            {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": '{"a": [1]}'}},
        ),
    ],
)
def test_assessment_rows_and_documents(kind: str, value: str, form: dict[str, object]) -> None:
    columns = dict.fromkeys(traces.ASSESSMENT_COLUMNS)
    columns |= {
        "assessment_id": "a-1",
        "trace_id": "tr-1",
        "name": "n",
        "assessment_type": kind,
        "value": value,
        "created_timestamp": 1_700_000_000_000,
        "last_updated_timestamp": 1_700_000_000_500,
        "source_type": "HUMAN",
        "source_id": "alice",
        "rationale": "why",
        "valid": 1,
        "assessment_metadata": '{"mlflow.assessment.sourceRunId": "r1"}',
    }
    trace_id, assessment_id, created, doc = traces.assessment_row(tuple(columns.values()))
    assert (trace_id, assessment_id, created) == ("tr-1", "a-1", 1_700_000_000_000)
    parsed = json.loads(doc)
    assert parsed[kind] == form
    assert parsed["create_time"] == "2023-11-14T22:13:20Z" and parsed["valid"] is True
    back = dict(
        zip(
            traces.MLFLOW_ASSESSMENT_COLUMNS,
            traces.mlflow_assessment((doc, 1, 99)),
            strict=True,
        )
    )
    assert {k: back[k] for k in columns if k != "valid"} == {
        k: v for k, v in columns.items() if k != "valid"
    }
    assert back["run_id"] == "r1" and back["valid"] is True
