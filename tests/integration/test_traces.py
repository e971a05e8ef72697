"""MLflow 3 tracing through the pipeline with the unchanged client (issue 13): spans through
OTLP -> ingest -> Kafka -> writer, trace info through StartTraceV3, reads from the api.

The client exports asynchronously (its default); ``flush_trace_async_logging`` waits for its
queue, after which every acknowledged span is visible to the next read (the read fence)."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import (
    AssessmentSource,
    AssessmentSourceType,
    Feedback,
    SpanType,
    TraceData,
)

# Tracing imports mlflow.pyfunc lazily, whose import warns about an Any type hint; under the
# suite's warnings-as-errors that import fails inside the tracer and no span is recorded.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc


@pytest.fixture
def client(sluice_url: str) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(sluice_url)
    yield MlflowClient(sluice_url)
    mlflow.set_tracking_uri("")


@mlflow.trace
def _leaf(x: int) -> int:
    with mlflow.start_span("inner-work", span_type=SpanType.TOOL) as span:
        span.set_inputs({"x": x})
        span.set_outputs({"y": x * 2})
    return x + 1


@mlflow.trace(span_type=SpanType.CHAIN)
def _root(x: int) -> int:
    mlflow.update_current_trace(tags={"team": "search", "call": str(x)})
    return _leaf(x) * 2


def _experiment(client: MlflowClient) -> str:
    exp_id = client.create_experiment(f"traces-{uuid.uuid4().hex[:8]}")
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def test_traced_calls_round_trip(client: MlflowClient) -> None:
    exp_id = _experiment(client)
    for i in range(20):
        _root(i)
    mlflow.flush_trace_async_logging()

    traces = mlflow.search_traces(locations=[exp_id], return_type="list")
    assert len(traces) == 20
    assert {t.info.tags["call"] for t in traces} == {str(i) for i in range(20)}
    assert all(t.info.state.value == "OK" and t.info.tags["team"] == "search" for t in traces)
    times = [t.info.request_time for t in traces]
    assert times == sorted(times, reverse=True)  # default order: newest first
    newest = next(t for t in traces if t.info.tags["call"] == "19")
    assert newest.info.request_preview == '{"x": 19}'
    assert newest.info.response_preview == "40"

    trace = mlflow.get_trace(newest.info.trace_id)
    assert trace is not None
    names = {s.name: s for s in trace.data.spans}
    assert set(names) == {"_root", "_leaf", "inner-work"}
    assert names["inner-work"].parent_id == names["_leaf"].span_id
    assert names["_leaf"].parent_id == names["_root"].span_id
    assert names["_root"].parent_id is None
    assert names["inner-work"].inputs == {"x": 19} and names["inner-work"].outputs == {"y": 38}
    assert names["_root"].span_type == SpanType.CHAIN

    # The UI's form: MLflow's span dicts (the traces.json artifact), which the client parses.
    artifact = requests.get(
        f"{mlflow.get_tracking_uri()}/ajax-api/2.0/mlflow/get-trace-artifact",
        params={"request_id": newest.info.trace_id},
        timeout=30,
    )
    assert artifact.status_code == 200 and artifact.headers["Content-Type"].startswith("text/plain")
    data = TraceData.from_dict(artifact.json())
    assert {s.name for s in data.spans} == {"_root", "_leaf", "inner-work"}
    assert next(s for s in data.spans if s.name == "inner-work").inputs == {"x": 19}

    frame = mlflow.search_traces(locations=[exp_id])
    assert type(frame).__name__ == "DataFrame" and len(frame) == 20
    assert {"trace_id", "spans", "tags", "request_time"} <= set(frame.columns)
    assert all(len(spans) == 3 for spans in frame["spans"])


def test_filters_ordering_and_paging(client: MlflowClient) -> None:
    exp_id = _experiment(client)
    for i in range(7):
        _root(i)
        time.sleep(0.003)  # request times are milliseconds: distinct ones order the calls
    mlflow.flush_trace_async_logging()

    one = mlflow.search_traces(
        locations=[exp_id], filter_string="tags.call = '3'", return_type="list"
    )
    assert [t.info.tags["call"] for t in one] == ["3"]
    ok = mlflow.search_traces(
        locations=[exp_id], filter_string="attributes.status = 'OK'", return_type="list"
    )
    assert len(ok) == 7
    by_span = mlflow.search_traces(
        locations=[exp_id], filter_string="span.name = 'inner-work'", return_type="list"
    )
    assert len(by_span) == 7
    oldest_first = client.search_traces(
        locations=[exp_id], order_by=["timestamp_ms ASC"], max_results=3
    )
    assert [t.info.tags["call"] for t in oldest_first] == ["0", "1", "2"]
    assert oldest_first.token
    rest = client.search_traces(
        locations=[exp_id], order_by=["timestamp_ms ASC"], page_token=oldest_first.token
    )
    assert [t.info.tags["call"] for t in rest] == ["3", "4", "5", "6"]


def test_tags_assessments_delete_and_runs(client: MlflowClient) -> None:
    exp_id = _experiment(client)
    with mlflow.start_run() as run:
        _root(100)
    _root(200)
    mlflow.flush_trace_async_logging()

    in_run = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert [t.info.tags["call"] for t in in_run] == ["100"]
    trace_id = in_run[0].info.trace_id

    client.set_trace_tag(trace_id, "reviewed", "yes")
    assert mlflow.get_trace(trace_id).info.tags["reviewed"] == "yes"
    client.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in mlflow.get_trace(trace_id).info.tags

    human = AssessmentSource(AssessmentSourceType.HUMAN, "alice")
    feedback = mlflow.log_feedback(trace_id=trace_id, name="correct", value=True, source=human)
    mlflow.log_expectation(trace_id=trace_id, name="answer", value="202")
    stored = mlflow.get_trace(trace_id).info.assessments
    assert {a.name: a.value for a in stored} == {"correct": True, "answer": "202"}
    assert feedback.assessment_id is not None
    got = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert isinstance(got, Feedback) and got.value is True and got.source.source_id == "alice"
    mlflow.delete_assessment(trace_id, feedback.assessment_id)
    stored = mlflow.get_trace(trace_id).info.assessments
    assert [a.name for a in stored] == ["answer"]

    other = mlflow.search_traces(
        locations=[exp_id], filter_string="tags.call = '200'", return_type="list"
    )[0]
    client.link_traces_to_run([other.info.trace_id], run.info.run_id)
    linked = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert {t.info.tags["call"] for t in linked} == {"100", "200"}

    deleted = client.delete_traces(exp_id, trace_ids=[trace_id])
    assert deleted == 1
    left = mlflow.search_traces(locations=[exp_id], return_type="list")
    assert [t.info.tags["call"] for t in left] == ["200"]
    assert client.delete_traces(exp_id, max_timestamp_millis=2**62) == 1
    assert mlflow.search_traces(locations=[exp_id], return_type="list") == []


def test_deleting_a_run_deletes_the_assessments_made_in_it(client: MlflowClient) -> None:
    """MLflow keeps an evaluation run's id in its assessments' metadata and deletes those
    assessments with the run (and with its experiment); others stay."""
    exp_id = _experiment(client)
    _root(1)
    mlflow.flush_trace_async_logging()
    (trace,) = mlflow.search_traces(locations=[exp_id], return_type="list")
    trace_id = trace.info.trace_id
    runs = [client.create_run(exp_id).info.run_id for _ in range(2)]
    for name, run_id in zip(("first", "second"), runs, strict=True):
        mlflow.log_feedback(
            trace_id=trace_id,
            name=name,
            value=True,
            metadata={"mlflow.assessment.sourceRunId": run_id},
        )
    mlflow.log_feedback(trace_id=trace_id, name="unrelated", value=1.0)

    client.delete_run(runs[0])
    left = mlflow.get_trace(trace_id).info.assessments
    assert sorted(a.name for a in left) == ["second", "unrelated"]

    client.restore_run(runs[0])  # restoring does not bring them back (nor in MLflow)
    client.delete_experiment(exp_id)
    left = client.get_trace(trace_id).info.assessments
    assert [a.name for a in left] == ["unrelated"]


def test_error_traces_keep_the_root_status(client: MlflowClient) -> None:
    _experiment(client)

    @mlflow.trace
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    mlflow.flush_trace_async_logging()
    (trace,) = mlflow.search_traces(return_type="list")
    assert trace.info.state.value == "ERROR"
    full = mlflow.get_trace(trace.info.trace_id)
    assert full is not None and full.data.spans[0].status.status_code.value == "ERROR"
