"""Validation of runs/log-inputs and runs/outputs: request document in, frozen value out (pure).

MLflow 3.17.2's order: the handler schema (run_id present, ``datasets``/``models`` lists), the
run-id shape, then every dataset and its tags (``_validate_dataset_inputs``). Missing dataset
fields are not refused: protobuf leaves them "" and MLflow stores that. Existence and state of
the run are the shell's checks, after these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.mlflow_names import validate_length, validate_run_id_format
from schemas.protojson import expect_object, get_int64, get_list, get_string

MAX_DATASET_NAME_SIZE: Final = 500
MAX_DATASET_DIGEST_SIZE: Final = 36
MAX_DATASET_SOURCE_SIZE: Final = 65535
MAX_DATASET_SCHEMA_SIZE: Final = 1048575
MAX_DATASET_PROFILE_SIZE: Final = 16777215
MAX_INPUT_TAG_KEY_SIZE: Final = 255
MAX_INPUT_TAG_VALUE_SIZE: Final = 500
CONTEXT_TAG: Final = "mlflow.data.context"

Doc = Mapping[str, Any]


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
    run_id = get_string(doc, "run_id", required=True, storable=False)
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
    return get_int64(expect_object(item, path), "step", path=f"{path}.step", default=0)


def _first_per_name_digest(inputs: list[DatasetInput]) -> list[DatasetInput]:
    # MLflow deduplicates the request on (name, digest), keeping the first occurrence.
    first: dict[tuple[str, str], DatasetInput] = {}
    for item in inputs:
        first.setdefault((item.dataset.name, item.dataset.digest), item)
    return list(first.values())
