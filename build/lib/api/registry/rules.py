"""Model-registry request rules (pure): names, versions, stages, aliases, tags.

Messages follow MLflow 3.17.2 (``mlflow/utils/validation.py``, ``model_registry`` store).
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.mlflow_names import (
    MAX_MODEL_REGISTRY_TAG_KEY_LENGTH,
    MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH,
    validate_key,
    validate_length,
)

STAGES: Final = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES: Final = ("Staging", "Production")
DELETED_STAGE: Final = "Deleted_Internal"
PROMPT_TAG: Final = "mlflow.prompt.is_prompt"
MAX_ALIAS_LENGTH: Final = 255

_ALIAS: Final = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS: Final = re.compile(r"^[vV]\d+$")


def validate_model_name(name: str) -> None:
    """MLflow's ``_validate_model_name``: non-blank, no '/' or ':', stable under normpath."""
    if not name.strip():
        raise invalid_parameter("Registered model name cannot be empty.")
    if "/" in name or ":" in name:
        raise invalid_parameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if posixpath.normpath(name) != name or name in (".", ".."):
        raise invalid_parameter(
            f"Invalid model name '{name}'. Names must not resolve to a different path."
        )


def parse_version(raw: str) -> int:
    """A model version number from its string form (MLflow's ``_validate_model_version``)."""
    try:
        version = int(raw)
    except ValueError:
        raise invalid_parameter(f"Parameter 'version' must be an integer, got '{raw}'.") from None
    return version


def canonical_stage(raw: str) -> str:
    """``staging`` -> ``Staging``; anything else is MLflow's 400."""
    for stage in STAGES:
        if raw.lower() == stage.lower():
            return stage
    raise invalid_parameter(
        f"Invalid Model Version stage: {raw}. Value must be one of {', '.join(STAGES)}."
    )


def check_archivable(stage: str) -> None:
    """``archive_existing_versions`` is only legal when moving to an active stage (500, as in
    MLflow, which raises an un-coded MlflowException)."""
    if stage not in ACTIVE_STAGES:
        raise MlflowError(
            "INTERNAL_ERROR",
            f"Model version transition cannot archive existing model versions because "
            f"'{stage}' is not an Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}",
        )


def validate_alias(alias: str) -> None:
    if not alias:
        raise invalid_parameter("Registered model alias name cannot be empty.")
    if _ALIAS.match(alias) is None:
        raise invalid_parameter(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    validate_length("alias", MAX_ALIAS_LENGTH, alias)
    if alias.lower() == "latest":
        raise invalid_parameter("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS.match(alias):
        raise invalid_parameter(f"Version alias name '{alias}' is reserved.")


def validate_tag(key: str, value: str) -> None:
    validate_key(key, "key")
    validate_length("key", MAX_MODEL_REGISTRY_TAG_KEY_LENGTH, key)
    validate_length("value", MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, value)
