"""runs/log-inputs: dataset inputs with their tags, deduplication, limits, run state, and the
`datasets.*` filters of runs/search."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    RUNS_SETS,
    api,
    case,
    get_run,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create", "runs/create", "runs/get", "runs/delete", "runs/log-inputs", "runs/search"
)

RUN_INPUTS = ("run.data.tags", "run.inputs.dataset_inputs", "run.inputs.dataset_inputs[*].tags")


def dataset(name: str = "train", digest: str = "d1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "digest": digest,
        "source_type": "local",
        "source": "/data/" + name,
        **extra,
    }


def dataset_input(context: str | None = "training", **fields: Any) -> dict[str, Any]:
    tags = [] if context is None else [{"key": "mlflow.data.context", "value": context}]
    return {"tags": tags, "dataset": dataset(**fields)}


def log_inputs(*inputs: dict[str, Any], expect: int = 200, run: str = "${run}") -> Step:
    return post("runs/log-inputs", {"run_id": run, "datasets": list(inputs)}, expect=expect)


def read() -> Step:
    return get_run(unordered=RUN_INPUTS)


def _stored(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, run_setup(), *steps, read(), doc=doc)


def _rejected(case_id: str, *inputs: dict[str, Any]) -> Case:
    return case(case_id, run_setup(), log_inputs(*inputs, expect=400), read())


def _without(field: str) -> dict[str, Any]:
    item = dataset_input()
    del item["dataset"][field]
    return item


_STORED: list[Case] = [
    _stored("log-inputs/one-dataset", log_inputs(dataset_input())),
    _stored(
        "log-inputs/two-datasets",
        log_inputs(dataset_input(), dataset_input("eval", name="test", digest="d2")),
    ),
    _stored("log-inputs/no-tags", log_inputs(dataset_input(None))),
    _stored(
        "log-inputs/schema-and-profile",
        log_inputs(dataset_input(schema='{"cols": ["a"]}', profile='{"rows": 3}')),
    ),
    _stored(
        "log-inputs/same-dataset-twice",
        log_inputs(dataset_input()),
        log_inputs(dataset_input("eval")),
        doc="the run-dataset link is deduplicated; tags are kept from the first link",
    ),
    _stored(
        "log-inputs/same-name-new-digest",
        log_inputs(dataset_input()),
        log_inputs(dataset_input(digest="d2")),
    ),
    _stored(
        "log-inputs/empty-datasets", post("runs/log-inputs", {"run_id": "${run}", "datasets": []})
    ),
    _stored("log-inputs/no-datasets-field", post("runs/log-inputs", {"run_id": "${run}"})),
    _stored("log-inputs/digest-36-chars", log_inputs(dataset_input(digest="d" * 36))),
    _stored("log-inputs/name-500-chars", log_inputs(dataset_input(name="n" * 500))),
]

_REJECTED: list[Case] = [
    *(
        _stored(
            f"log-inputs/missing-{field.replace('_', '-')}-accepted",
            log_inputs(_without(field)),
            doc="MLflow 3.17 does not require the dataset's name/digest/source_type/source",
        )
        for field in ("name", "digest", "source_type", "source")
    ),
    _rejected("log-inputs/digest-37-chars", dataset_input(digest="d" * 37)),
    _rejected("log-inputs/name-501-chars", dataset_input(name="n" * 501)),
    _rejected(
        "log-inputs/tag-key-256-chars",
        {"tags": [{"key": "k" * 256, "value": "v"}], "dataset": dataset()},
    ),
    _rejected(
        "log-inputs/tag-value-501-chars",
        {"tags": [{"key": "k", "value": "v" * 501}], "dataset": dataset()},
    ),
    case(
        "log-inputs/datasets-not-a-list",
        run_setup(),
        post("runs/log-inputs", {"run_id": "${run}", "datasets": "x"}, expect=400),
    ),
    case(
        "log-inputs/missing-run-id",
        post("runs/log-inputs", {"datasets": [dataset_input()]}, expect=400),
    ),
    case("log-inputs/malformed-run-id", log_inputs(dataset_input(), run="not a run!", expect=400)),
    case("log-inputs/unknown-run", log_inputs(dataset_input(), run="0" * 32, expect=404)),
    case(
        "log-inputs/deleted-run",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        log_inputs(dataset_input(), expect=400),
    ),
]


def _search(filter_: str) -> Step:
    body = {"experiment_ids": ["${exp}"], "filter": filter_}
    return post("runs/search", body, unordered=(*RUNS_SETS, "runs[*].inputs.dataset_inputs"))


_SEARCH: list[Case] = [
    case(
        f"log-inputs/search-{name}",
        run_setup(),
        log_inputs(dataset_input(), dataset_input("eval", name="test", digest="d2")),
        _search(expression),
    )
    for name, expression in {
        "dataset-name": "datasets.name = 'train'",
        "dataset-digest-in": "datasets.digest IN ('d2', 'zz')",
        "dataset-context": "dataset.context = 'eval'",
        "dataset-name-like": "datasets.name LIKE 'te%'",
        "dataset-no-match": "datasets.name = 'nope'",
    }.items()
]

CASES = _STORED + _REJECTED + _SEARCH
