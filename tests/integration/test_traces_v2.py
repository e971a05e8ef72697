"""MLflow 2.x clients' tracing through the pipeline (issue 13): StartTrace and EndTrace
(``POST /api/2.0/mlflow/traces``, ``PATCH /api/2.0/mlflow/traces/{request_id}``) go through
``sluice front`` to ingest, Kafka and the writer; the reads come from the api. Driven by the
real client's REST store (``deprecated_start_trace_v2`` / ``deprecated_end_trace_v2``, the
calls MLflow 2.x's tracer makes), so the request and answer shapes are the client's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import TraceData
from mlflow.entities.trace_status import TraceStatus
from mlflow.store.tracking.rest_store import RestStore
from mlflow.tracing.client import TracingClient

from tests.fault.faults import end_offsets
from tests.stack import Stack

V2 = "/api/2.0/mlflow/traces"


@pytest.fixture
def client(sluice_url: str) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(sluice_url)
    yield MlflowClient(sluice_url)
    mlflow.set_tracking_uri("")


def _store(client: MlflowClient) -> RestStore:
    store = client._tracking_client.store
    assert isinstance(store, RestStore)
    return store


def _experiment(client: MlflowClient) -> str:
    return client.create_experiment(f"traces-v2-{uuid.uuid4().hex[:8]}")


def test_start_then_end_is_read_back_everywhere(client: MlflowClient, sluice_url: str) -> None:
    exp_id, store = _experiment(client), _store(client)
    t0 = int(time.time() * 1000)
    started = store.deprecated_start_trace_v2(
        exp_id, t0, {"mlflow.trace_schema.version": "2"}, {"mlflow.traceName": "p", "team": "a"}
    )
    assert started.status == TraceStatus.IN_PROGRESS and len(started.request_id) == 32
    assert started.tags["mlflow.artifactLocation"].endswith(
        f"/traces/{started.request_id}/artifacts"
    )
    in_progress = requests.get(f"{sluice_url}{V2}/{started.request_id}/info", timeout=10)
    assert in_progress.json()["trace_info"]["status"] == "IN_PROGRESS"  # a 200 is visible

    ended = store.deprecated_end_trace_v2(
        started.request_id, t0 + 30, TraceStatus.OK, {"out": "x"}, {"team": "b", "extra": "y"}
    )
    assert (ended.status, ended.execution_time_ms, ended.timestamp_ms) == (TraceStatus.OK, 30, t0)
    assert ended.tags["team"] == "b" and ended.tags["mlflow.traceName"] == "p"
    assert ended.request_metadata == {"mlflow.trace_schema.version": "2", "out": "x"}

    info = store.get_trace_info(started.request_id)  # the v3 read
    assert info.state.value == "OK" and info.execution_duration == 30
    assert info.tags["extra"] == "y" and info.trace_metadata["out"] == "x"
    # The 2.x client uploads the spans as an artifact at the trace's artifact location.
    TracingClient(sluice_url)._upload_trace_data(info, TraceData(spans=[]))
    (found,) = mlflow.search_traces(locations=[exp_id], return_type="list")
    assert found.info.trace_id == started.request_id and found.info.tags["team"] == "b"
    listed = requests.get(f"{sluice_url}{V2}", params={"experiment_ids": exp_id}, timeout=10)
    (legacy,) = listed.json()["traces"]
    assert legacy["execution_time_ms"] == 30 and legacy["status"] == "OK"


def test_ends_right_after_starts_are_stored_once(client: MlflowClient) -> None:
    """An end arriving before the writer stored its start waits for it (the fence), and a
    retried end changes nothing: every trace once, with its end's duration and status."""
    exp_id, store = _experiment(client), _store(client)
    t0 = int(time.time() * 1000)

    def one(i: int) -> str:
        started = store.deprecated_start_trace_v2(exp_id, t0 + i, {}, {"i": str(i)})
        status = TraceStatus.ERROR if i % 5 == 0 else TraceStatus.OK
        for _ in range(2 if i % 3 == 0 else 1):  # every third end is sent twice
            store.deprecated_end_trace_v2(started.request_id, t0 + 2 * i + 7, status, {}, {})
        return started.request_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(40)))
    traces = mlflow.search_traces(
        locations=[exp_id], return_type="list", max_results=100, include_spans=False
    )
    assert sorted(t.info.trace_id for t in traces) == sorted(ids)
    by_i = {int(t.info.tags["i"]): t.info for t in traces}
    for i, info in by_i.items():
        assert info.execution_duration == i + 7
        assert info.state.value == ("ERROR" if i % 5 == 0 else "OK")


def _status(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error_code", "")


async def _produced(stack: Stack) -> int:
    """Records in the traces topic so far (every partition's end offset)."""
    return sum((await end_offsets(stack.bootstrap, stack.traces_topic)).values())


def test_bad_input_is_refused_and_nothing_is_produced(
    client: MlflowClient, sluice_url: str, stack: Stack
) -> None:
    exp_id = _experiment(client)
    before = asyncio.run(_produced(stack))
    bad_starts = [
        {"experiment_id": exp_id, "tags": {"a": "b"}},  # not a list
        {"experiment_id": exp_id, "tags": [{"value": "b"}]},  # no key
        {"experiment_id": exp_id, "request_metadata": [5]},
        {"experiment_id": exp_id, "timestamp_ms": "soon"},
        {"experiment_id": exp_id, "timestamp_ms": -5},
        {"experiment_id": exp_id, "tags": [{"key": "mlflow.traceName", "value": "n" * 4097}]},
    ]
    for body in bad_starts:
        response = requests.post(f"{sluice_url}{V2}", json=body, timeout=10)
        assert _status(response) == (400, "INVALID_PARAMETER_VALUE"), body
    unknown = requests.post(f"{sluice_url}{V2}", json={"experiment_id": "987654321"}, timeout=10)
    assert _status(unknown) == (404, "RESOURCE_DOES_NOT_EXIST")
    not_json = requests.post(
        f"{sluice_url}{V2}", data="{", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert not_json.status_code == 400
    for request_id in ("0" * 32, "x" * 300):
        end = requests.patch(f"{sluice_url}{V2}/{request_id}", json={"status": "OK"}, timeout=30)
        assert _status(end) == (404, "RESOURCE_DOES_NOT_EXIST")
    # The api still answers the search on the shared path, and a wrong method gets 405.
    assert requests.get(f"{sluice_url}{V2}", params={"experiment_ids": exp_id}, timeout=10).ok
    assert requests.delete(f"{sluice_url}{V2}", timeout=10).status_code == 405
    assert asyncio.run(_produced(stack)) == before


def test_an_end_before_its_start_is_refused(client: MlflowClient, sluice_url: str) -> None:
    store = _store(client)
    started = store.deprecated_start_trace_v2(_experiment(client), 10_000, {}, {})
    early = requests.patch(
        f"{sluice_url}{V2}/{started.request_id}", json={"timestamp_ms": 9_999}, timeout=10
    )
    assert _status(early) == (400, "INVALID_PARAMETER_VALUE")
    info = requests.get(f"{sluice_url}{V2}/{started.request_id}/info", timeout=10).json()
    assert info["trace_info"]["status"] == "IN_PROGRESS"
