"""What the web UI calls besides the REST API (issue 12): its artifact views and GraphQL.

File downloads are compared by status (and JSON error bodies); the GraphQL bodies field by
field, with camelCase ids and times normalised like their REST spellings."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    AJAX,
    T0,
    api,
    case,
    create_experiment,
    create_run,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
UPLOAD = ARTIFACTS + "${exp}/${run}/artifacts/"

ENDPOINTS = (
    api(
        "experiments/create",
        "runs/create",
        "runs/log-batch",
        "registered-models/create",
        "model-versions/create",
    )
    | {AJAX + "artifacts/list", "/get-artifact", "/graphql"}
    | {ARTIFACTS + "{}"}  # uploads: the route's `{artifact_path}`
)

_GET_EXPERIMENT = """
query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!)
@component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetExperiment(input: $input) {
    apiError { code message }
    experiment {
      artifactLocation creationTime effectiveTraceArchivalRetention experimentId
      lastUpdateTime lifecycleStage name tags { key value }
    }
  }
}
"""
_GET_RUN = """
query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetRun(input: $data) {
    apiError { helpUrl code message }
    run {
      info {
        runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId
      }
      experiment {
        experimentId name tags { key value } artifactLocation lifecycleStage lastUpdateTime
      }
      modelVersions { status version name source }
      data {
        metrics { key value step timestamp }
        params { key value }
        tags { key value }
      }
      inputs {
        datasetInputs {
          dataset { digest name profile schema source sourceType }
          tags { key value }
        }
        modelInputs { modelId }
      }
      outputs { modelOutputs { modelId step } }
    }
  }
}
"""
_BULK_INTERVAL = """
query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
@component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetMetricHistoryBulkInterval(input: $data) {
    __typename
    metrics { timestamp step runId key value }
    apiError { code message }
  }
}
"""
_SEARCH_RUNS = """
query SearchRuns($data: MlflowSearchRunsInput!) {
  mlflowSearchRuns(input: $data) {
    apiError { code message }
    runs { info { runUuid runName } modelVersions { name version status source runId } }
  }
}
"""
_RUN_SETS = tuple(f"data.mlflowGetRun.run.data.{f}" for f in ("tags", "params", "metrics"))


def graphql(query: str, variables: dict[str, Any] | None = None, **options: Any) -> Step:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return post("", body, prefix="/graphql", **options)


def _runs_with_versions() -> list[Step]:
    """Three runs: two versions from the first, one from the second, none from the third."""
    steps = [create_experiment(), post("registered-models/create", {"name": "${uid}"})]
    for i, var in enumerate(("run", "run2", "run3")):
        steps.append(create_run(var, run_name=var, start_time=T0 + i))
    for var in ("run", "run", "run2"):
        source = f"runs:/${{{var}}}/model"
        body = {"name": "${uid}", "source": source, "run_id": f"${{{var}}}"}
        steps.append(post("model-versions/create", body, expect=200))
    return steps


def upload(name: str, text: str) -> Step:
    return {"method": "PUT", "path": UPLOAD + name, "data": text, "expect": 200}


def _logged_run() -> list[Step]:
    batch = {
        "run_id": "${run}",
        "metrics": [
            {"key": "loss", "value": 1.0 / (i + 1), "timestamp": T0 + i, "step": i}
            for i in range(5)
        ],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "ui"}],
    }
    return [*run_setup(), post("runs/log-batch", batch, expect=200)]


def _artifact(path: str, expect: int, message_prefix: str | None = None) -> Step:
    step: Step = {
        "method": "GET",
        "path": "/get-artifact",
        "query": {"run_uuid": "${run}", "path": path},
        "expect": expect,
    }
    if message_prefix:
        step["message_prefix"] = message_prefix
    return step


def _listing(expect: int = 200, message_prefix: str | None = None, **query: str) -> Step:
    step: Step = {
        "method": "GET",
        "path": AJAX + "artifacts/list",
        "query": {"run_id": "${run}", **query},
        "expect": expect,
    }
    if message_prefix:
        step["message_prefix"] = message_prefix
    return step


_GRAPHQL: list[Case] = [
    case(
        "graphql/get-experiment",
        create_experiment(),
        graphql(_GET_EXPERIMENT, {"input": {"experimentId": "${exp}"}}, expect=200),
    ),
    case(
        "graphql/get-run",
        _logged_run(),
        graphql(_GET_RUN, {"data": {"runId": "${run}"}}, expect=200, unordered=_RUN_SETS),
    ),
    case(
        "graphql/get-run-unknown",
        graphql(_GET_RUN, {"data": {"runId": "0" * 32}}, expect=200),
    ),
    case(
        "graphql/bulk-interval",
        _logged_run(),
        graphql(
            _BULK_INTERVAL,
            {"data": {"runIds": ["${run}"], "metricKey": "loss", "maxResults": 320}},
            expect=200,
        ),
    ),
    case(
        "graphql/search-runs-model-versions",
        _runs_with_versions(),
        graphql(
            _SEARCH_RUNS,
            {"data": {"experimentIds": ["${exp}"], "orderBy": ["attributes.start_time DESC"]}},
            expect=200,
        ),
        doc="each run of a search page with its own versions (Sluice reads them in one query)",
    ),
    case(
        "graphql/unknown-field",
        graphql('{ mlflowGetRun(input: {runId: "x"}) { nope } }', expect=200),
    ),
    case(
        "graphql/too-deep",
        graphql("query { a { " * 1 + "b { " * 11 + "c" + " }" * 12 + " }", expect=200),
        doc="refused before validation, with MLflow's message",
    ),
]

_ARTIFACTS: list[Case] = [
    case(
        "ui-artifacts/list-and-get",
        _logged_run(),
        upload("notes.txt", "hello"),
        upload("dir/plot.png", "not really a png"),
        _listing(),
        _listing(path="dir"),
        _listing(path="missing"),
        _artifact("notes.txt", 200),
        _artifact("dir/plot.png", 200),
        _artifact("missing.txt", 404, message_prefix="No such artifact: "),
    ),
    case(
        "ui-artifacts/unknown-run",
        {
            "method": "GET",
            "path": "/get-artifact",
            "query": {"run_uuid": "0" * 32, "path": "a.txt"},
            "expect": 404,
        },
        {"method": "GET", "path": AJAX + "artifacts/list", "query": {"run_id": "0" * 32}},
    ),
    *[
        case(
            f"ui-artifacts/hostile-path-{i}",
            _logged_run(),
            _artifact(path, 400, message_prefix="Invalid path"),
            _listing(400, message_prefix="Invalid path", path=path),
        )
        # (Backslashes and "." segments: MLflow looks the name up (404), Sluice refuses it (400), as on the
        # mlflow-artifacts routes; tests/integration/test_artifact_hostile.py covers them.)
        for i, path in enumerate(("../x", "a/../../x", "/etc/passwd", "%2e%2e/x"))
    ],
]

CASES: list[Case] = [*_GRAPHQL, *_ARTIFACTS]
