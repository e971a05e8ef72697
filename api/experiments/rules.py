"""Validation of experiment writes: request document in, frozen value out (pure; no I/O).

Order and texts are MLflow 3.17.2's: the handler schema (presence, JSON types), then the
handler's own checks (custom-view count, artifact location), then the store's (name, tags).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.fields import expect_object, get_list, get_string, get_unchecked_string
from schemas.mlflow_errors import invalid_parameter
from schemas.mlflow_names import (
    MAX_EXPERIMENT_TAG_KEY_LENGTH,
    MAX_EXPERIMENT_TAG_VAL_LENGTH,
    validate_experiment_name,
    validate_key,
    validate_length,
)

# MLflow's MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH default.
MAX_ARTIFACT_LOCATION_LENGTH: Final = 2048
MAX_CUSTOM_VIEWS_PER_EXPERIMENT: Final = 50
CUSTOM_VIEW_TAG_PREFIX: Final = "mlflow.customView.view"

Doc = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewExperiment:
    name: str
    artifact_location: str | None  # None: the server's default, <root>/<id>
    tags: list[tuple[str, str]]  # request order; a repeated key is the store's conflict


def validate_create_experiment(doc: Doc) -> NewExperiment:
    """``POST experiments/create``."""
    name = get_string(doc, "name", required=True)
    location = get_string(doc, "artifact_location") or None
    tags = [_tag(item, i) for i, item in enumerate(get_list(doc, "tags"))]
    _check_custom_views(tags)
    if location is not None:
        validate_artifact_location(location)
    validate_experiment_name(name)
    for key, value in tags:
        validate_experiment_tag(key, value)
    return NewExperiment(name, location, tags)


def _tag(item: Any, index: int) -> tuple[str, str]:
    # Nested fields are not in MLflow's schema: absent key and value read as "" (proto default).
    tag = expect_object(item, f"tags[{index}]")
    key = get_unchecked_string(tag, "key", path=f"tags[{index}].key", default="")
    return key, get_string(tag, "value", path=f"tags[{index}].value", default="")


def validate_experiment_tag(key: str, value: str) -> None:
    """MLflow's ``_validate_experiment_tag``: key rules, key <= 250, value <= 20000 (refused,
    never truncated)."""
    validate_key(key, "key")
    validate_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, key)
    validate_length("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, value)


def _check_custom_views(tags: list[tuple[str, str]]) -> None:
    if sum(key.startswith(CUSTOM_VIEW_TAG_PREFIX) for key, _ in tags) > (
        MAX_CUSTOM_VIEWS_PER_EXPERIMENT
    ):
        raise invalid_parameter(
            "Unable to create another custom view; the maximum number of custom views per "
            f"experiment is {MAX_CUSTOM_VIEWS_PER_EXPERIMENT}. Delete an existing custom view "
            "before creating a new one."
        )


def validate_artifact_location(location: str) -> None:
    """MLflow's ``_validate_storage_location_uri`` without the host policy (which depends on
    the deployment's artifact store): no fragment or params, no ``..`` in the query, no
    ``runs:`` URI, at most 2048 characters."""
    parsed = urllib.parse.urlparse(location)
    if parsed.fragment or parsed.params:
        raise invalid_parameter("'artifact_location' URL can't include fragments or params.")
    if ".." in urllib.parse.unquote(parsed.query):
        raise invalid_parameter("Invalid query string")
    if location.startswith("runs:"):
        raise invalid_parameter(f"Artifact location cannot be a runs:/ URI. Given: '{location}'")
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise invalid_parameter(
            "Invalid artifact path length. The length of the artifact path cannot be greater "
            f"than {MAX_ARTIFACT_LOCATION_LENGTH} characters. To configure this limit, please "
            "set the MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable."
        )
