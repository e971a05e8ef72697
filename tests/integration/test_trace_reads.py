"""Trace reads with the unchanged client beyond the basics of test_traces.py: span attribute,
span content (``trace.text``) and prompt filters of ``search_traces``, prompt links, the v3
dataset search, and the trace metrics the UI's Overview charts read."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import SpanType
from mlflow.entities.model_registry import PromptVersion

with warnings.catch_warnings():  # see test_traces.py: the tracer imports mlflow.pyfunc lazily
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc


@pytest.fixture
def client(sluice_url: str) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(sluice_url)
    yield MlflowClient(sluice_url)
    mlflow.set_tracking_uri("")


@mlflow.trace(name="agent", span_type=SpanType.CHAIN)
def _agent(question: str, source: str) -> str:
    with mlflow.start_span("lookup", span_type=SpanType.TOOL) as span:
        span.set_attributes({"source": source, "k": 3})
        span.set_inputs({"query": question})
    return question[::-1]


def _traced(client: MlflowClient) -> tuple[str, dict[str, str]]:
    """An experiment with three traces; returns it and {question: trace id}."""
    exp_id = client.create_experiment(f"trace-reads-{uuid.uuid4().hex[:8]}")
    mlflow.set_experiment(experiment_id=exp_id)
    for question, source in (("alpha?", "wiki"), ("beta?", "docs"), ("gamma?", "wiki")):
        _agent(question, source)
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[exp_id], return_type="list")
    ids = {t.data.spans[0].inputs["question"]: t.info.trace_id for t in traces}
    assert len(ids) == 3
    return exp_id, ids


def _found(exp_id: str, filter_string: str) -> set[str]:
    traces = mlflow.search_traces(
        locations=[exp_id], filter_string=filter_string, return_type="list"
    )
    return {t.info.trace_id for t in traces}


def test_span_attribute_and_text_filters(client: MlflowClient) -> None:
    exp_id, ids = _traced(client)
    wiki = {ids["alpha?"], ids["gamma?"]}
    assert _found(exp_id, "span.attributes.source LIKE '%wiki%'") == wiki
    assert _found(exp_id, "span.attributes.source ILIKE '%DOCS%'") == {ids["beta?"]}
    assert _found(exp_id, "span.attributes.source RLIKE '^wiki$'") == wiki
    # The condition and the span name must hold on the same span.
    assert _found(exp_id, "span.name = 'lookup' AND span.attributes.source LIKE '%wiki%'") == wiki
    assert _found(exp_id, "span.name = 'agent' AND span.attributes.source LIKE '%wiki%'") == set()
    assert _found(exp_id, "span.type = 'TOOL' AND span.name ILIKE 'LOOK%'") == set(ids.values())
    # What the UI's search box sends: any text of any span.
    assert _found(exp_id, "trace.text ILIKE '%BETA%'") == {ids["beta?"]}
    frame = mlflow.search_traces(locations=[exp_id], filter_string="trace.text LIKE '%amma%'")
    assert list(frame["trace_id"]) == [ids["gamma?"]]
    with pytest.raises(mlflow.MlflowException, match=r"span\.content comparator '='"):
        mlflow.search_traces(locations=[exp_id], filter_string="trace.text = 'x'")


def test_link_prompts_then_search_by_prompt(client: MlflowClient) -> None:
    exp_id, ids = _traced(client)
    versions = [  # PromptVersion is abstract to mypy only (from_proto)
        PromptVersion("qa-prompt", 2, "Answer {{q}}"),  # type: ignore[abstract]
        PromptVersion("style", 1, "x"),  # type: ignore[abstract]
    ]
    client.link_prompt_versions_to_trace(versions, ids["beta?"])
    assert _found(exp_id, "prompt = 'qa-prompt/2'") == {ids["beta?"]}
    assert _found(exp_id, "prompt = 'qa-prompt/1'") == set()
    # The client also records the links in the trace's tag, as against MLflow.
    assert "qa-prompt" in client.get_trace(ids["beta?"]).info.tags["mlflow.linkedPrompts"]


def test_dataset_search_and_trace_metrics(client: MlflowClient, sluice_url: str) -> None:
    exp_id, _ = _traced(client)
    assert mlflow.genai.search_datasets(experiment_ids=[exp_id]) == []
    body = {
        "experiment_ids": [exp_id],
        "view_type": "SPANS",
        "metric_name": "span_count",
        "aggregations": [{"aggregation_type": "COUNT"}],
        "dimensions": ["span_name"],
    }
    answer = requests.post(f"{sluice_url}/api/3.0/mlflow/traces/metrics", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    counts = {
        p["dimensions"]["span_name"]: p["values"]["COUNT"] for p in answer.json()["data_points"]
    }
    assert counts == {"agent": 3.0, "lookup": 3.0}
    body = {**body, "view_type": "TRACES", "metric_name": "trace_count", "dimensions": []}
    answer = requests.post(f"{sluice_url}/api/3.0/mlflow/traces/metrics", json=body, timeout=30)
    assert answer.json() == {
        "data_points": [{"metric_name": "trace_count", "values": {"COUNT": 3.0}}]
    }


def test_token_metrics_skip_malformed_token_usage(client: MlflowClient, sluice_url: str) -> None:
    """Token usage metadata is client text: a trace whose value is not a JSON object of numbers
    counts for nothing in the token charts, instead of failing the experiment's query."""
    exp_id = client.create_experiment(f"trace-tokens-{uuid.uuid4().hex[:8]}")
    usages = ('{"input_tokens": 5, "output_tokens": 7}', "x", '{"input_tokens": "abc"}', "{")
    for usage in usages:
        info = {
            "trace_id": f"tr-{uuid.uuid4().hex}",
            "trace_location": {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": exp_id},
            },
            "request_time": "2026-01-01T00:00:00Z",
            "execution_duration": "0.005s",
            "state": "OK",
            "trace_metadata": {"mlflow.trace.tokenUsage": usage},
        }
        started = requests.post(
            f"{sluice_url}/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}}, timeout=30
        )
        assert started.status_code == 200, started.text
    body = {
        "experiment_ids": [exp_id],
        "view_type": "TRACES",
        "metric_name": "input_tokens",
        "aggregations": [{"aggregation_type": "SUM"}, {"aggregation_type": "MAX"}],
    }
    answer = requests.post(f"{sluice_url}/api/3.0/mlflow/traces/metrics", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data_points"] == [
        {"metric_name": "input_tokens", "values": {"SUM": 5.0, "MAX": 5.0}}
    ]


def test_a_search_over_many_experiments_pages_in_order(client: MlflowClient) -> None:
    """Past MAX_MERGED_SCANS experiments a search is one scan of them all: the same pages."""
    exp_id, ids = _traced(client)
    others = [client.create_experiment(f"empty-{uuid.uuid4().hex[:8]}") for _ in range(33)]
    wide = [*others, exp_id]
    first = client.search_traces(locations=wide, max_results=2, order_by=["timestamp_ms DESC"])
    rest = client.search_traces(
        locations=wide, max_results=2, order_by=["timestamp_ms DESC"], page_token=first.token
    )
    newest_first = [t.info.trace_id for t in [*first, *rest]]
    narrow = client.search_traces(locations=[exp_id], order_by=["timestamp_ms DESC"])
    assert newest_first == [t.info.trace_id for t in narrow]
    assert set(newest_first) == set(ids.values()) and rest.token is None
