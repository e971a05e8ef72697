"""Class 8 of issue 14, generated: logged models (MLflow 3) — metrics logged with `model_id`
read back on the model, `logged-models/search` ordering and filtering over every attribute of
`LoggedModelInfo` (from the surface) and every entity prefix, and the tags MLflow writes itself
as JSON (`mlflow.modelVersions`, set when a model version names the logged model, and a run's
`mlflow.log-model.history`, appended by `runs/log-model`).

Each case makes three logged models in one experiment, named so that no attribute orders them
the way they were created, with metrics (one of them per dataset), params and tags.
"""

from __future__ import annotations

import json
from typing import Any

from tests.compat import surface
from tests.compat.cases._build import API, T0, case, create_experiment, get, post
from tests.compat.model import Case, Step, step_endpoint

_MODELS = ("b", "c", "a")


def _create(index: int, name: str) -> list[Step]:
    var = f"m{index}"
    return [
        post(
            "logged-models",
            {
                "experiment_id": "${exp}",
                "name": name,
                "model_type": f"type-{name}",
                "source_run_id": "${run}",
                "params": [{"key": "p", "value": f"{(index * 7) % 3}"}],
                "tags": [{"key": "t", "value": name.upper()}],
            },
            capture={var: "model.info.model_id"},
        ),
        post(
            "runs/log-metric",
            {
                "run_id": "${run}",
                "key": "m",
                "value": (index * 5) % 3,
                "timestamp": T0 + index,
                "step": 0,
                "model_id": f"${{{var}}}",
            },
        ),
        post(
            "runs/log-metric",
            {
                "run_id": "${run}",
                "key": "acc",
                "value": index / 10,
                "timestamp": T0,
                "step": 1,
                "model_id": f"${{{var}}}",
                "dataset_name": "ds",
                "dataset_digest": "d1",
            },
        ),
    ]


def _setup() -> list[Step]:
    steps = [
        create_experiment(),
        post(
            "runs/create",
            {"experiment_id": "${exp}", "start_time": T0},
            capture={"run": "run.info.run_id"},
            ignore=("run",),
        ),
    ]
    for index, name in enumerate(_MODELS):
        steps += _create(index, name)
    return steps


_SETS = ("models[*].info.tags", "models[*].data.params", "models[*].data.metrics")


def _search(**body: Any) -> Step:
    return post("logged-models/search", {"experiment_ids": ["${exp}"], **body}, unordered=_SETS)


def _get(var: str) -> Step:
    return {
        "method": "GET",
        "path": API + f"logged-models/${{{var}}}",
        "unordered": ("model.info.tags", "model.data.params", "model.data.metrics"),
    }


# The attributes of a logged model, from MLflow's message: what order_by and filters name.
ATTRIBUTES = tuple(
    f.path.removeprefix("info.")
    for f in surface.fields("mlflow.LoggedModel", depth=1)
    if f.path.startswith("info.") and f.type in ("string", "int64", "enum")
)
ENTITY_KEYS = ("metrics.m", "metrics.acc", "params.p", "tags.t", "nope", "attributes.name")
COMPARATORS = ("=", "!=", "<", ">=", "LIKE", "ILIKE", "IN")


def _value(key: str, comparator: str) -> str:
    if comparator == "IN":
        return "('a', 'b')"
    numeric = key.startswith("metrics.") or key.endswith(("_ms", "creator_id"))
    return "1" if numeric else "'a'"


def _cases() -> list[Case]:
    setup = _setup()
    out = [
        case("logged-models/metrics-read-back", setup, _get("m0"), _get("m1"), _get("m2")),
        case("logged-models/search-default-order", setup, _search()),
        case(
            "logged-models/metric-on-run",
            setup,
            # MLflow lists a run's latest metrics in its table's row order: compared as a set.
            get("runs/get", {"run_id": "${run}"}, unordered=("run.data.tags", "run.data.metrics")),
        ),
        case(
            "logged-models/model-version-tag-json",
            setup,
            post("registered-models/create", {"name": "${uid}"}),
            post(
                "model-versions/create",
                {
                    "name": "${uid}",
                    "source": "models:/${m0}",
                    "run_id": "${run}",
                    "model_id": "${m0}",
                },
            ),
            post(
                "model-versions/create",
                {
                    "name": "${uid}",
                    "source": "models:/${m0}",
                    "run_id": "${run}",
                    "model_id": "${m0}",
                },
            ),
            _get("m0"),
        ),
    ]
    model_json = json.dumps(
        {
            "flavors": {"python_function": {"loader_module": "m", "config": {"a": 1}}, "x": "é"},
            "utc_time_created": "2024-01-01 00:00:00.000000",
            "model_uuid": "u1",
            "artifact_path": "model",
            "run_id": "${run}",
        }
    )
    log_model = post("runs/log-model", {"run_id": "${run}", "model_json": model_json})
    out.append(
        case(
            "logged-models/run-history-tag-json",
            setup,
            log_model,
            log_model,
            get("runs/get", {"run_id": "${run}"}, unordered=("run.data.tags", "run.data.metrics")),
        )
    )
    for key in (*ATTRIBUTES, *ENTITY_KEYS):
        for ascending in (True, False):
            order: dict[str, Any] = {"field_name": key, "ascending": ascending}
            direction = "asc" if ascending else "desc"
            search = _search(order_by=[order])
            if key == "model_id":
                # Model ids are random, on each server its own: their order is not comparable.
                search["unordered"] = (*search["unordered"], "models")
            out.append(case(f"logged-models/order/{key}/{direction}", setup, search))
        for comparator in COMPARATORS:
            term = f"{key} {comparator} {_value(key, comparator)}"
            out.append(
                case(f"logged-models/filter/{key}/{comparator}", setup, _search(filter=term))
            )
    out += [
        case(
            "logged-models/order/metric-on-dataset",
            setup,
            _search(
                order_by=[
                    {
                        "field_name": "metrics.acc",
                        "ascending": False,
                        "dataset_name": "ds",
                        "dataset_digest": "d1",
                    }
                ]
            ),
        ),
        case(
            "logged-models/filter/dataset",
            setup,
            _search(filter="metrics.acc > 0", datasets=[{"dataset_name": "ds"}]),
        ),
        case(
            "logged-models/filter/and", setup, _search(filter="metrics.m >= 0 AND params.p = '0'")
        ),
        case("logged-models/filter/bad", setup, _search(filter="metrics.m >>> 1")),
    ]
    return out


CASES: list[Case] = _cases()
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
