"""Validation of run writes: request document in, value out (pure; existence and state of the
run are the store's checks, after these).

runs/create and runs/update: tags, run name, status. runs/log-inputs and runs/outputs: MLflow
3.17.2's order, the handler schema (run_id present, ``datasets``/``models`` lists), the
run-id shape, then every dataset and its tags (``_validate_dataset_inputs``). Missing dataset
fields are not refused: protobuf leaves them "" and MLflow stores that. Existence and state of
the run are the shell's checks, after these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from api.run_names import random_run_name
from schemas.fields import expect_object, get_list, get_string, get_unchecked_string
from schemas.int_fields import get_int64, get_nested_int64
from schemas.mlflow_errors import MlflowError, invalid_parameter, missing_parameter
from schemas.mlflow_names import (
    truncate_tag_value,
    validate_experiment_id,
    validate_key,
    validate_length,
    validate_run_id_format,
)

MAX_DATASET_NAME_SIZE: Final = 500
MAX_DATASET_DIGEST_SIZE: Final = 36
MAX_DATASET_SOURCE_SIZE: Final = 65535
MAX_DATASET_SCHEMA_SIZE: Final = 1048575
MAX_DATASET_PROFILE_SIZE: Final = 16777215
MAX_INPUT_TAG_KEY_SIZE: Final = 255
MAX_INPUT_TAG_VALUE_SIZE: Final = 500
CONTEXT_TAG: Final = "mlflow.data.context"

RUN_NAME_TAG: Final = "mlflow.runName"
_RUN_STATUSES: Final = frozenset({"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"})
_RUN_STATUS_NUMBERS: Final = {
    "1": "RUNNING",
    "2": "SCHEDULED",
    "3": "FINISHED",
    "4": "FAILED",
    "5": "KILLED",
}

Doc = Mapping[str, Any]


def run_id_of(doc: Doc) -> str:
    """``run_id``, or the legacy ``run_uuid`` the client also sends."""
    run_id = get_string(doc, "run_id") or get_string(doc, "run_uuid")
    if not run_id:
        raise missing_parameter("run_id")
    return run_id


@dataclass(frozen=True, slots=True)
class NewRun:
    raw_experiment_id: str  # as sent: MLflow's messages quote it
    experiment_id: int
    name: str
    user_id: str
    start_time: int
    tags: list[tuple[str, str]]  # ``mlflow.runName`` = ``name`` last


def validate_create_run(doc: Doc) -> NewRun:
    """``POST runs/create``: the last value of a repeated tag key wins; the name is the given
    one, the ``mlflow.runName`` tag, or a random one."""
    raw_exp = get_string(doc, "experiment_id")
    if not raw_exp:
        # MLflow does not default the experiment: its insert fails on the foreign key.
        raise MlflowError(
            "BAD_REQUEST", "FOREIGN KEY constraint failed: a run needs an experiment_id."
        )
    exp_id = validate_experiment_id(raw_exp)
    tags: dict[str, str] = {}
    for i, item in enumerate(get_list(doc, "tags")):
        key = get_string(item, "key", path=f"tags[{i}].key", required=True) or ""
        validate_key(key, f"tags[{i}].key")
        tags[key] = truncate_tag_value(get_string(item, "value", path=f"tags[{i}].value") or "")
    name = _run_name(doc, tags.get(RUN_NAME_TAG))
    start_time = get_int64(doc, "start_time") or 0
    return NewRun(
        raw_exp,
        exp_id,
        name,
        get_string(doc, "user_id") or "",
        start_time,
        [(k, v) for k, v in tags.items() if k != RUN_NAME_TAG] + [(RUN_NAME_TAG, name)],
    )


def _run_name(doc: Doc, tagged: str | None) -> str:
    given = get_string(doc, "run_name") or None
    if given and tagged and given != tagged:
        raise invalid_parameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{given}', mlflow.runName='{tagged}')."
        )
    return given or tagged or random_run_name()


def run_status(doc: Doc) -> str | None:
    """MLflow ignores an unparsable status instead of rejecting it (verified behaviour)."""
    raw = doc.get("status")
    if raw is None:
        return None
    text = str(raw)
    return text if text in _RUN_STATUSES else _RUN_STATUS_NUMBERS.get(text)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: list[tuple[str, str]]  # request order

    @property
    def context(self) -> str | None:
        return dict(self.tags).get(CONTEXT_TAG)


@dataclass(frozen=True, slots=True)
class LogInputs:
    run_id: str
    datasets: list[DatasetInput]  # one per (name, digest): the first occurrence wins
    models: list[str]  # logged-model ids, request order


@dataclass(frozen=True, slots=True)
class LogOutputs:
    run_id: str
    models: list[tuple[str, int]]  # (model_id, step)


def validate_log_inputs(doc: Doc) -> LogInputs:
    """``POST runs/log-inputs``."""
    run_id = get_unchecked_string(doc, "run_id", required=True)
    raw_datasets = get_list(doc, "datasets")
    raw_models = get_list(doc, "models")
    validate_run_id_format(run_id)
    inputs = [_dataset_input(item, f"datasets[{i}]") for i, item in enumerate(raw_datasets)]
    models = [_model_id(item, f"models[{i}]") for i, item in enumerate(raw_models)]
    return LogInputs(run_id, _first_per_name_digest(inputs), models)


def validate_log_outputs(doc: Doc) -> LogOutputs:
    """``POST runs/outputs``: ``models`` is required (an empty list counts as missing)."""
    run_id = get_string(doc, "run_id", required=True)
    raw = get_list(doc, "models", required=True)
    models = [
        (_model_id(item, f"models[{i}]"), _step(item, f"models[{i}]")) for i, item in enumerate(raw)
    ]
    return LogOutputs(run_id, models)


def _dataset_input(item: Any, path: str) -> DatasetInput:
    doc = expect_object(item, path)
    dataset = _dataset(expect_object(doc.get("dataset") or {}, f"{path}.dataset"), path)
    tags = [_input_tag(t, f"{path}.tags[{i}]") for i, t in enumerate(get_list(doc, "tags"))]
    return DatasetInput(dataset, tags)


def _dataset(doc: Doc, path: str) -> Dataset:
    def text(name: str) -> str:
        return get_string(doc, name, path=f"{path}.dataset.{name}", default="")

    dataset = Dataset(
        name=text("name"),
        digest=text("digest"),
        source_type=text("source_type"),
        source=text("source"),
        schema=get_string(doc, "schema", path=f"{path}.dataset.schema"),
        profile=get_string(doc, "profile", path=f"{path}.dataset.profile"),
    )
    validate_length("name", MAX_DATASET_NAME_SIZE, dataset.name)
    validate_length("digest", MAX_DATASET_DIGEST_SIZE, dataset.digest)
    validate_length("source", MAX_DATASET_SOURCE_SIZE, dataset.source)
    validate_length("schema", MAX_DATASET_SCHEMA_SIZE, dataset.schema or "")
    validate_length("profile", MAX_DATASET_PROFILE_SIZE, dataset.profile or "")
    return dataset


def _input_tag(item: Any, path: str) -> tuple[str, str]:
    doc = expect_object(item, path)
    key = get_string(doc, "key", path=f"{path}.key", default="")
    value = get_string(doc, "value", path=f"{path}.value", default="")
    validate_length("key", MAX_INPUT_TAG_KEY_SIZE, key)
    validate_length("value", MAX_INPUT_TAG_VALUE_SIZE, value)
    return key, value


def _model_id(item: Any, path: str) -> str:
    return get_string(expect_object(item, path), "model_id", path=f"{path}.model_id", default="")


def _step(item: Any, path: str) -> int:
    # Nothing type-checks a nested field: a value protobuf refuses reads as 0.
    return get_nested_int64(expect_object(item, path), "step", path=f"{path}.step", default=0)


def _first_per_name_digest(inputs: list[DatasetInput]) -> list[DatasetInput]:
    # MLflow deduplicates the request on (name, digest), keeping the first occurrence.
    first: dict[tuple[str, str], DatasetInput] = {}
    for item in inputs:
        first.setdefault((item.dataset.name, item.dataset.digest), item)
    return list(first.values())
