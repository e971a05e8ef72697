"""Model registry through the real MLflow client and raw REST: MLflow's semantics (issue 4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

# Stages are deprecated in the client (FutureWarning) but still part of the API we serve.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture
def client(sluice_url: str) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(sluice_url)
    yield MlflowClient(sluice_url, registry_uri=sluice_url)
    mlflow.set_tracking_uri("")


def _name(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _run(client: MlflowClient) -> str:
    exp = client.create_experiment(_name("exp"))
    return str(client.create_run(exp).info.run_id)


def _api(base: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{base}/api/2.0/mlflow/{path}", timeout=30, **kwargs)


def test_registered_model_lifecycle(client: MlflowClient) -> None:
    name = _name()
    created = client.create_registered_model(name, tags={"team": "a"}, description="first")
    assert created.name == name and created.description == "first"
    assert created.tags == {"team": "a"}
    with pytest.raises(MlflowException) as exc:
        client.create_registered_model(name)
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.update_registered_model(name, description="second")
    assert client.get_registered_model(name).description == "second"
    client.set_registered_model_tag(name, "k", "v")
    client.delete_registered_model_tag(name, "team")
    client.delete_registered_model_tag(name, "never-set")  # missing tag: 200
    assert client.get_registered_model(name).tags == {"k": "v"}

    new_name = _name("renamed")
    client.rename_registered_model(name, new_name)
    with pytest.raises(MlflowException) as exc:
        client.get_registered_model(name)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(new_name)
    with pytest.raises(MlflowException) as exc:
        client.get_registered_model(new_name)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_versions_never_reused_ready_and_latest_per_stage(client: MlflowClient) -> None:
    name = _name()
    client.create_registered_model(name)
    run_id = _run(client)
    source = f"runs:/{run_id}/model"
    versions = [client.create_model_version(name, source, run_id=run_id) for _ in range(3)]
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert all(v.status == "READY" for v in versions)
    client.delete_model_version(name, "3")
    assert client.create_model_version(name, source, run_id=run_id).version == "4"
    with pytest.raises(MlflowException) as exc:
        client.get_model_version(name, "3")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.transition_model_version_stage(name, "1", "production")
    client.transition_model_version_stage(name, "2", "Staging")
    model = client.get_registered_model(name)
    stages = {v.current_stage: v.version for v in model.latest_versions}
    assert stages == {"Production": "1", "Staging": "2", "None": "4"}
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["1"]

    client.transition_model_version_stage(name, "4", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    # MLflow answers a 500 here, which the client retries for minutes: check it raw.
    r = _api(
        client.tracking_uri,
        "POST",
        "model-versions/transition-stage",
        json={"name": name, "version": "4", "stage": "Archived", "archive_existing_versions": True},
    )
    assert r.status_code == 500 and r.json()["error_code"] == "INTERNAL_ERROR"

    client.update_model_version(name, "2", description="d")
    assert client.get_model_version(name, "2").description == "d"
    client.set_model_version_tag(name, "2", "k", "v")
    assert client.get_model_version(name, "2").tags == {"k": "v"}
    client.delete_model_version_tag(name, "2", "k")
    client.delete_model_version_tag(name, "2", "missing")
    assert client.get_model_version(name, "2").tags == {}
    assert client.get_model_version_download_uri(name, "2") == source


def test_aliases(client: MlflowClient) -> None:
    name = _name()
    client.create_registered_model(name)
    run_id = _run(client)
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/m", run_id=run_id)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")  # moves
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "2").aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    assert client.get_model_version_by_alias(name, "latest").version == "2"
    for bad in ("latest", "v3", "LATEST", "a b"):
        with pytest.raises(MlflowException) as exc:
            client.set_registered_model_alias(name, bad, "1")
        assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.get_model_version_by_alias(name, "nope")
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    client.delete_model_version(name, "2")  # its aliases go with it
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, "champion")
    client.delete_registered_model_alias(name, "never-set")


def test_search(client: MlflowClient) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"search-{tag}-{i}" for i in range(5)]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={"group": tag, "i": str(i)})
    found = client.search_registered_models(filter_string=f"name LIKE 'search-{tag}-%'")
    assert [m.name for m in found] == names
    page = client.search_registered_models(
        filter_string=f"tags.group = '{tag}'", max_results=2, order_by=["name DESC"]
    )
    assert [m.name for m in page] == names[::-1][:2] and page.token
    rest = client.search_registered_models(
        filter_string=f"tags.group = '{tag}'",
        max_results=10,
        order_by=["name DESC"],
        page_token=page.token,
    )
    assert [m.name for m in rest] == names[::-1][2:]
    with pytest.raises(MlflowException):
        client.search_registered_models(filter_string="creation_timestamp > 0")

    run_id = _run(client)
    for _ in range(3):
        client.create_model_version(names[0], f"runs:/{run_id}/m", run_id=run_id)
    versions = client.search_model_versions(f"name='{names[0]}'")
    assert sorted(v.version for v in versions) == ["1", "2", "3"]
    assert len(client.search_model_versions(f"run_id = '{run_id}' AND version_number >= 2")) == 2


def test_rest_error_contract(sluice_url: str) -> None:
    r = _api(sluice_url, "GET", "model-versions/get", params={"name": "x", "version": "abc"})
    assert r.status_code == 400
    assert r.json()["message"] == "Parameter 'version' must be an integer, got 'abc'."
    r = _api(sluice_url, "GET", "registered-models/get", params={"name": "no-such"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = _api(sluice_url, "POST", "registered-models/create", json={"name": "a/b"})
    assert r.status_code == 400
    r = _api(sluice_url, "GET", "registered-models/search", params={"max_results": "1001"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "file:/etc",
        "runs:/{run}/../../../etc",
        "runs:/{run}/%2e%2e/%2e%2e/etc",
        "runs:/{run}/%252e%252e/etc",
        "mlflow-artifacts:/0/../../etc",
        "mlflow-artifacts://evil.example:80/0/x",
        "http://169.254.169.254/latest/meta-data",
        "https://example.com/model",
        "ftp://example.com/x",
        "runs:/{run}/a#/../../x",
        "runs:/{run}/a\\..\\..\\x",
        "runs:/{run}/a\x00b",
        "s3://other-bucket/x",
        "relative/path",
        "models:/m-00000000000000000000000000000000",
        "runs:/not-my-run/model",
    ],
)
def test_hostile_sources_refused(client: MlflowClient, source: str) -> None:
    name = _name()
    client.create_registered_model(name)
    run_id = _run(client)
    with pytest.raises(MlflowException) as exc:
        client.create_model_version(name, source.replace("{run}", run_id), run_id=run_id)
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
