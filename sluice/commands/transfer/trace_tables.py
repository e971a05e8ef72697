"""Pure: MLflow's trace tables as Sluice import tables (trace infos with their span bounds, tags
and metadata, spans, assessments, trace-run links); rows convert in ``traces.py``."""

from __future__ import annotations

from typing import Final

from sluice.commands.transfer import traces
from sluice.commands.transfer.table_spec import Has, Table, count


def _json_object_agg(has: Has, table: str, owner: str) -> str:
    """A trace's rows of ``table`` (key, value) as one JSON object text ('{}' when none)."""
    agg = "json_group_object" if has.dialect == "sqlite" else "json_object_agg"
    cast = "" if has.dialect == "sqlite" else "::text"
    if not has(table, ""):
        return "'{}'"
    return (
        f'coalesce((SELECT {agg}(x."key", x.value){cast} FROM {table} x'
        f" WHERE x.request_id = {owner}), '{{}}')"
    )


def _span_bound(has: Has, bound: str, column: str) -> str:
    """The trace's earliest span start / latest span end, in ms (NULL without spans)."""
    if not has("spans", column):
        return "NULL"
    return f"(SELECT {bound}(s.{column}) / 1000000 FROM spans s WHERE s.trace_id = t.request_id)"


def _trace_info(has: Has) -> str:
    def col(name: str) -> str:
        return f"t.{name}" if has("trace_info", name) else "NULL"

    promoted = ", ".join(
        col(c) for c in ("trace_name", "session_id", *traces.TOKEN_COLUMNS, *traces.COST_COLUMNS)
    )
    return (
        "SELECT t.request_id, t.experiment_id, t.timestamp_ms, t.execution_time_ms, t.status,"
        f" {col('request_preview')}, {col('response_preview')}, {col('client_request_id')},"
        f" {_span_bound(has, 'min', 'start_time_unix_nano')},"
        f" {_span_bound(has, 'max', 'end_time_unix_nano')},"
        f" {_json_object_agg(has, 'trace_tags', 't.request_id')},"
        f" {_json_object_agg(has, 'trace_request_metadata', 't.request_id')},"
        f" {promoted} FROM trace_info t ORDER BY t.request_id"
    )


def _spans(has: Has) -> str:
    return (
        "SELECT trace_id, span_id, parent_span_id, coalesce(name, ''), type,"
        " coalesce(status, 'UNSET'), start_time_unix_nano, end_time_unix_nano, content"
        " FROM spans ORDER BY trace_id, span_id"
    )


def _assessments(has: Has) -> str:
    # Columns older MLflow versions lack: an assessment is valid unless overridden.
    columns = ", ".join(
        c if has("assessments", c) else ("1" if c == "valid" else "NULL")
        for c in traces.ASSESSMENT_COLUMNS
    )
    return f"SELECT {columns} FROM assessments ORDER BY trace_id, assessment_id"


_TRACE_RUN: Final = " WHERE source_type = 'trace' AND destination_type = 'run'"

# In dependency order, after the runs they link to.
TRACE_TABLES: Final[tuple[Table, ...]] = (
    Table(
        "trace_info",
        "trace_info",
        (
            "trace_id",
            "experiment_id",
            "request_time_ms",
            "execution_ms",
            "state",
            "request_preview",
            "response_preview",
            "client_request_id",
            "finalized",
            "span_start_ms",
            "span_end_ms",
            "tags",
            "metadata",
        ),
        ("trace_id",),
        _trace_info,
        count("trace_info"),
        convert=traces.trace_info_row,
        after="trace_info",
    ),
    Table(
        "trace_spans",
        "spans",
        (
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "span_type",
            "status",
            "start_ns",
            "end_ns",
            "proto",
        ),
        ("trace_id", "span_id"),
        _spans,
        count("spans"),
        convert=traces.span_row,
        after="spans",
    ),
    Table(
        "trace_assessments",
        "assessments",
        ("trace_id", "assessment_id", "created_ms", "doc"),
        ("trace_id", "assessment_id"),
        _assessments,
        count("assessments"),
        convert=traces.assessment_row,
        after="assessments",
    ),
    Table(
        "trace_run_links",
        "entity_associations",
        ("trace_id", "run_id"),
        ("trace_id", "run_id"),
        lambda has: f"SELECT source_id, destination_id FROM entity_associations{_TRACE_RUN}",
        count("entity_associations", _TRACE_RUN),
        after="entity_associations",
    ),
)
