"""Pure: Sluice's trace tables as MLflow export copies (trace infos with tags and metadata split
back into MLflow's tables, spans, assessments, trace-run links); rows convert in
``traces.py``."""

from __future__ import annotations

import uuid
from typing import Final

from sluice.commands.transfer import traces
from sluice.commands.transfer.table_spec import Copy

# In MLflow's foreign-key order, after the experiments and runs they belong to.
TRACE_COPIES: Final[tuple[Copy, ...]] = (
    Copy(
        "trace_info",
        "trace_info",
        traces.MLFLOW_TRACE_INFO_COLUMNS,
        "SELECT trace_id, experiment_id, request_time_ms, execution_ms, state, client_request_id,"
        " request_preview, response_preview, tags, metadata FROM trace_info ORDER BY trace_id",
        "SELECT count(*) FROM trace_info",
        traces.mlflow_trace_info,
    ),
    Copy(
        "trace_info.tags",
        "trace_tags",
        ("request_id", "key", "value"),
        # MLflow keeps the trace name in a column of trace_info.
        "SELECT t.trace_id, e.key, e.value FROM trace_info t, jsonb_each_text(t.tags) e"
        f" WHERE e.key <> '{traces.TRACE_NAME_TAG}' ORDER BY t.trace_id, e.key",
        "SELECT count(*) FROM trace_info t, jsonb_each_text(t.tags) e"
        f" WHERE e.key <> '{traces.TRACE_NAME_TAG}'",
    ),
    Copy(
        "trace_info.metadata",
        "trace_request_metadata",
        ("request_id", "key", "value"),
        "SELECT t.trace_id, e.key, e.value FROM trace_info t, jsonb_each_text(t.metadata) e"
        " WHERE e.key <> ALL($1::text[]) ORDER BY t.trace_id, e.key",
        "SELECT count(*) FROM trace_info t, jsonb_each_text(t.metadata) e"
        " WHERE e.key <> ALL($1::text[])",
        args=(sorted(traces.PROMOTED_METADATA),),
    ),
    Copy(
        "trace_spans",
        "spans",
        (
            "trace_id",
            "experiment_id",
            "span_id",
            "parent_span_id",
            "name",
            "type",
            "status",
            "start_time_unix_nano",
            "end_time_unix_nano",
            "content",
        ),
        "SELECT s.trace_id, t.experiment_id, s.span_id, s.parent_span_id, s.name, s.span_type,"
        " s.status, s.start_ns, s.end_ns, s.proto FROM trace_spans s"
        " JOIN trace_info t USING (trace_id) ORDER BY s.trace_id, s.span_id",
        "SELECT count(*) FROM trace_spans s JOIN trace_info t USING (trace_id)",
        traces.span_content,
    ),
    Copy(
        "trace_assessments",
        "assessments",
        traces.MLFLOW_ASSESSMENT_COLUMNS,
        "SELECT a.doc, t.experiment_id, t.request_time_ms FROM trace_assessments a"
        " JOIN trace_info t USING (trace_id) ORDER BY a.trace_id, a.assessment_id",
        "SELECT count(*) FROM trace_assessments a JOIN trace_info t USING (trace_id)",
        traces.mlflow_assessment,
    ),
    Copy(
        "trace_run_links",
        "entity_associations",
        ("association_id", "source_type", "source_id", "destination_type", "destination_id"),
        "SELECT trace_id, run_id FROM trace_run_links ORDER BY trace_id, run_id",
        "SELECT count(*) FROM trace_run_links",
        lambda row: (uuid.uuid4().hex, "trace", row[0], "run", row[1]),
    ),
)
