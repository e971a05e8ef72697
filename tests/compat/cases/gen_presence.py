"""Classes 2, 3 and 4 of issue 14, generated: which fields each route's rendering of an entity
carries, how zero/empty/false values are rendered, and the order of lists.

Scenarios build entities once with every optional field set (`full`) and once with zeros and
empty values (`sparse`: empty descriptions, time 0, no tags, an empty artifact file). Then
every route whose MLflow response message carries an entity is called (the readers below; a
route of the table whose response carries one and has no reader fails collection), and the
whole body is compared. `presence/*` and `zero/*` compare lists as multisets (every repeated
field of the response message, from the surface); `order/*` repeats the full scenario with the
lists compared in order, so a list MLflow orders deterministically must come in its order: all
but tags, params, aliases and a run's latest metrics, which MLflow reads without an ORDER BY.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.compat import surface
from tests.compat.cases._build import API, T0, case, get, post
from tests.compat.model import Case, Step, step_endpoint

_ART = API.replace("/mlflow/", "/") + "mlflow-artifacts/artifacts/"


def _step(method: str, endpoint: str, body: Any = None, **options: Any) -> Step:
    step: Step = {"method": method, "path": API + endpoint}
    if body is not None:
        step["json"] = body
    step.update(options)  # type: ignore[typeddict-item]
    return step


def _put(path: str, content: str) -> Step:
    return {
        "method": "PUT",
        "path": _ART + path,
        "body_bytes": content,
        "headers": {"Content-Type": "application/octet-stream"},
        "expect": 200,
    }


# ---------------------------------------------------------------- scenarios


def _full() -> list[Step]:
    version = {"name": "${uid}", "source": "runs:/${run}/m", "run_id": "${run}"}
    return [
        post(
            "experiments/create",
            {"name": "${uid}", "tags": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}]},
            capture={"exp": "experiment_id"},
        ),
        post(
            "runs/create",
            {
                "experiment_id": "${exp}",
                "run_name": "r",
                "start_time": T0,
                "tags": [{"key": "z", "value": "1"}, {"key": "y", "value": "2"}],
            },
            capture={"run": "run.info.run_id"},
            ignore=("run",),
        ),
        post(
            "runs/log-batch",
            {
                "run_id": "${run}",
                "metrics": [
                    {"key": "m2", "value": 2.5, "timestamp": T0, "step": 3},
                    {"key": "m1", "value": -1, "timestamp": T0 + 1, "step": 1},
                ],
                "params": [{"key": "p2", "value": "v"}, {"key": "p1", "value": "w"}],
            },
        ),
        post(
            "runs/log-inputs",
            {
                "run_id": "${run}",
                "datasets": [
                    {
                        "dataset": {
                            "name": "d",
                            "digest": "abc",
                            "source_type": "local",
                            "source": "{}",
                            "schema": "{}",
                            "profile": "{}",
                        },
                        "tags": [{"key": "mlflow.data.context", "value": "train"}],
                    }
                ],
            },
        ),
        post(
            "logged-models",
            {
                "experiment_id": "${exp}",
                "name": "lm",
                "source_run_id": "${run}",
                "model_type": "t",
                "params": [{"key": "k2", "value": "v"}, {"key": "k1", "value": "w"}],
                "tags": [{"key": "t2", "value": "x"}, {"key": "t1", "value": "y"}],
            },
            capture={"model": "model.info.model_id"},
            ignore=("model",),
        ),
        post("runs/outputs", {"run_id": "${run}", "models": [{"model_id": "${model}", "step": 2}]}),
        post(
            "runs/update",
            {"run_id": "${run}", "status": "FINISHED", "end_time": T0 + 5},
            ignore=("run_info",),
        ),
        post(
            "registered-models/create",
            {
                "name": "${uid}",
                "description": "d",
                "tags": [{"key": "rb", "value": "1"}, {"key": "ra", "value": "2"}],
            },
        ),
        post(
            "model-versions/create",
            {
                **version,
                "description": "v1",
                "tags": [{"key": "vb", "value": "1"}, {"key": "va", "value": "2"}],
            },
        ),
        post("model-versions/create", version),
        post("model-versions/create", version),
        post(
            "model-versions/transition-stage",
            {
                "name": "${uid}",
                "version": "3",
                "stage": "Staging",
                "archive_existing_versions": False,
            },
        ),
        post(
            "model-versions/transition-stage",
            {
                "name": "${uid}",
                "version": "1",
                "stage": "Production",
                "archive_existing_versions": False,
            },
        ),
        post("registered-models/alias", {"name": "${uid}", "alias": "zeta", "version": "1"}),
        post("registered-models/alias", {"name": "${uid}", "alias": "alpha", "version": "1"}),
        post("registered-models/alias", {"name": "${uid}", "alias": "mid", "version": "2"}),
        _put("${uid}/dir/b.txt", "bb"),
        _put("${uid}/a.txt", "a"),
        post(
            "webhooks",
            {
                "name": "w-${uid}",
                "description": "d",
                "url": "https://8.8.8.8/hook",
                "secret": "s",
                "status": "DISABLED",
                "events": [
                    {"entity": "MODEL_VERSION_TAG", "action": "SET"},
                    {"entity": "REGISTERED_MODEL", "action": "CREATED"},
                ],
            },
            capture={"hook": "webhook.webhook_id"},
        ),
    ]


def _sparse() -> list[Step]:
    version = {"name": "${uid}", "source": "runs:/${run}/m", "run_id": "${run}"}
    return [
        post("experiments/create", {"name": "${uid}"}, capture={"exp": "experiment_id"}),
        post(
            "runs/create",
            {"experiment_id": "${exp}", "run_name": "r", "start_time": 0},
            capture={"run": "run.info.run_id"},
            ignore=("run",),
        ),
        post(
            "runs/log-batch",
            {
                "run_id": "${run}",
                "metrics": [{"key": "m", "value": 0, "timestamp": 0, "step": 0}],
                "params": [{"key": "p", "value": ""}],
                "tags": [{"key": "t", "value": ""}],
            },
        ),
        post(
            "logged-models",
            {"experiment_id": "${exp}"},
            capture={"model": "model.info.model_id"},
            ignore=("model",),
        ),
        post("registered-models/create", {"name": "${uid}", "description": ""}),
        post("model-versions/create", {**version, "description": ""}),
        _put("${uid}/empty.txt", ""),
        _put("${uid}/dir/empty", ""),
        post(
            "webhooks",
            {
                "name": "w-${uid}",
                "description": "",
                "secret": "",
                "url": "https://8.8.8.8/hook",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            },
            capture={"hook": "webhook.webhook_id"},
        ),
    ]


# ---------------------------------------------------------------- readers

_LM_SEARCH = {"experiment_ids": ["${exp}"]}
READERS: dict[tuple[str, str], Sequence[Step]] = {
    ("GET", "/mlflow/experiments/get"): [get("experiments/get", {"experiment_id": "${exp}"})],
    ("GET", "/mlflow/experiments/get-by-name"): [
        get("experiments/get-by-name", {"experiment_name": "${uid}"})
    ],
    ("POST", "/mlflow/experiments/search"): [
        post("experiments/search", {"filter": "name = '${uid}'", "max_results": 10})
    ],
    ("GET", "/mlflow/experiments/search"): [
        get("experiments/search", {"filter": "name = '${uid}'", "max_results": "10"})
    ],
    ("GET", "/mlflow/runs/get"): [get("runs/get", {"run_id": "${run}"})],
    ("POST", "/mlflow/runs/search"): [post("runs/search", {"experiment_ids": ["${exp}"]})],
    ("GET", "/mlflow/metrics/get-history"): [
        get("metrics/get-history", {"run_id": "${run}", "metric_key": "m"}),
        get("metrics/get-history", {"run_id": "${run}", "metric_key": "m1"}),
    ],
    ("GET", "/mlflow/metrics/get-history-bulk-interval"): [
        get("metrics/get-history-bulk-interval", {"run_ids": "${run}", "metric_key": "m"}),
        get("metrics/get-history-bulk-interval", {"run_ids": "${run}", "metric_key": "m2"}),
    ],
    ("GET", "/mlflow/registered-models/get"): [get("registered-models/get", {"name": "${uid}"})],
    ("GET", "/mlflow/registered-models/search"): [
        get("registered-models/search", {"filter": "name = '${uid}'"})
    ],
    ("POST", "/mlflow/registered-models/get-latest-versions"): [
        post("registered-models/get-latest-versions", {"name": "${uid}"})
    ],
    ("GET", "/mlflow/registered-models/get-latest-versions"): [
        get("registered-models/get-latest-versions", {"name": "${uid}"})
    ],
    ("GET", "/mlflow/registered-models/alias"): [
        get("registered-models/alias", {"name": "${uid}", "alias": "alpha"})
    ],
    ("GET", "/mlflow/model-versions/get"): [
        get("model-versions/get", {"name": "${uid}", "version": "1"})
    ],
    ("GET", "/mlflow/model-versions/search"): [
        get("model-versions/search", {"filter": "name = '${uid}'"})
    ],
    ("GET", "/mlflow/model-versions/get-download-uri"): [
        get("model-versions/get-download-uri", {"name": "${uid}", "version": "1"})
    ],
    ("POST", "/mlflow/logged-models/search"): [post("logged-models/search", _LM_SEARCH)],
    ("GET", "/mlflow/logged-models/{model_id}"): [_step("GET", "logged-models/${model}")],
    ("GET", "/mlflow-artifacts/artifacts"): [
        {"method": "GET", "path": _ART.rstrip("/"), "query": {"path": "${uid}"}},
        {"method": "GET", "path": _ART.rstrip("/"), "query": {"path": "${uid}/dir"}},
    ],
    # The newest webhook is the scenario's own (list-webhooks has no filter).
    ("GET", "/mlflow/webhooks"): [get("webhooks", {"max_results": "1"})],
    ("GET", "/mlflow/webhooks/{webhook_id}"): [_step("GET", "webhooks/${hook}")],
}


def _repeated_paths(endpoint: surface.Endpoint, *, only_unsorted: bool = False) -> tuple[str, ...]:
    """Every repeated field of the response message, as `unordered` paths; `only_unsorted`:
    just the tag, param and latest-metric lists, which MLflow reads without ORDER BY."""
    if endpoint.response is None:
        return ()
    paths = [f.path for f in surface.fields(endpoint.response, depth=4) if f.repeated]
    if only_unsorted:
        paths = [p for p in paths if _unsorted(p)]
    return tuple(p.replace("[]", "[*]") for p in paths)


def _unsorted(path: str) -> bool:
    # Aliases too: MLflow on SQLite lists them by name, on PostgreSQL by insertion.
    return path.rsplit(".", 1)[-1] in ("tags", "params", "aliases") or path.endswith("data.metrics")


def _reader_endpoints() -> list[surface.Endpoint]:
    out = []
    for endpoint in surface.endpoints():
        key = (endpoint.route.method, endpoint.route.path)
        if key in READERS:
            out.append(endpoint)
        elif (
            endpoint.response
            and endpoint.route.method == "GET"
            and any(f.message for f in surface.fields(endpoint.response))
        ):
            raise KeyError(f"gen_presence: no reader for {key}, whose answer has entities")
    return out


def _endpoint_of(step: Step) -> surface.Endpoint | None:
    for endpoint in surface.endpoints():
        if endpoint.route.method == step["method"] and step["path"] in endpoint.route.urls():
            return endpoint
    return None


def _multisets(steps: list[Step], only_unsorted: bool) -> list[Step]:
    """The scenario's steps with the lists of their answers compared as multisets."""
    out: list[Step] = []
    for step in steps:
        endpoint = _endpoint_of(step)
        paths = _repeated_paths(endpoint, only_unsorted=only_unsorted) if endpoint else ()
        unordered: Step = {**step, "unordered": paths}
        out.append(unordered)
    return out


def _cases(label: str, scenario: list[Step], ordered: bool) -> list[Case]:
    out = []
    scenario = _multisets(scenario, only_unsorted=ordered)
    for endpoint in _reader_endpoints():
        unordered = _repeated_paths(endpoint, only_unsorted=ordered)
        reads: list[Step] = [
            {**step, "unordered": unordered}
            for step in READERS[(endpoint.route.method, endpoint.route.path)]
        ]
        slug = (
            endpoint.route.path.removeprefix("/")
            .replace("/", "-")
            .replace("{", "")
            .replace("}", "")
        )
        out.append(case(f"{label}/{endpoint.route.method.lower()}-{slug}", scenario, *reads))
    return out


# The scenarios' own steps (creates and updates) compare their answers as well; their lists
# are multisets except in the order cases.
CASES: list[Case] = [
    *_cases("presence", _full(), ordered=False),
    *_cases("zero", _sparse(), ordered=False),
    *_cases("order", _full(), ordered=True),
]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
