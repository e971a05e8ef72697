"""MLflow's rules for names and sizes: metric/param/tag keys, run and experiment ids, limits.

Behaviour and message texts follow MLflow 3.17.2 ``mlflow/utils/validation.py`` on a POSIX server
(a Windows server forbids ``:`` in keys; Sluice does not emulate that). Pure functions; each raises
``MlflowError`` (INVALID_PARAMETER_VALUE, 400) or returns normally.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

from schemas.mlflow_errors import invalid_parameter
from schemas.protojson import invalid_value
from schemas.wire import INT64_MAX, INT64_MIN

MAX_ENTITY_KEY_LENGTH: Final = 250  # metric, param and run tag keys
MAX_PARAM_VAL_LENGTH: Final = 6000  # longer param values are truncated, not rejected
MAX_TAG_VAL_LENGTH: Final = 8000  # longer run tag values are truncated, not rejected
MAX_EXPERIMENT_NAME_LENGTH: Final = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH: Final = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH: Final = 20000  # rejected, not truncated
MAX_MODEL_REGISTRY_TAG_KEY_LENGTH: Final = 250
MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH: Final = 100_000
MAX_METRICS_PER_BATCH: Final = 1000
MAX_PARAMS_TAGS_PER_BATCH: Final = 100  # each of params and tags
MAX_ENTITIES_PER_BATCH: Final = 1000  # metrics + params + tags

# MLflow calls re.match with a "$"-anchored pattern, and "$" also matches before a final newline:
# "loss\n" is a valid key (and "abc\n" a valid run id) on an MLflow server, so both are here.
_NAME: Final = re.compile(r"^[/\w.\- :]*$")
_RUN_ID: Final = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")

BAD_CHARACTER_MESSAGE: Final = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)


def validate_key(key: str, label: str) -> None:
    """A metric, param or tag key: allowed characters, then path stability.

    ``label`` is the parameter named in the message: ``name`` for log-metric, ``key`` for
    log-param/set-tag, ``metrics[3].name``/``params[0].key``/``tags[1].key`` in log-batch.
    Length is a separate check (``validate_length``) because MLflow names it differently.
    """
    if _NAME.match(key) is None:
        raise invalid_value(label, key, BAD_CHARACTER_MESSAGE)
    if _resolves_elsewhere(key):
        raise invalid_value(label, key, _bad_path_message(key))


def _resolves_elsewhere(key: str) -> bool:
    # Keys become file names in some stores, so "a/../b", "./a", "a/", "a//b", "/abs", "..x" and
    # "" (which would all name another file or escape the directory) are refused.
    norm = posixpath.normpath(key)
    return norm != key or norm == "." or norm.startswith("..") or norm.startswith("/")


def _bad_path_message(key: str) -> str:
    return (
        "Names may be treated as files in certain cases, and must not resolve to other names"
        f" when treated as such. This name would resolve to {posixpath.normpath(key)!r}"
    )


def validate_length(entity: str, limit: int, value: str) -> None:
    """Reject ``value`` longer than ``limit`` characters (code points, as Python's ``len``).

    ``entity`` is MLflow's wording, which varies by call: "Metric name", "Param key", "key",
    "tags[2].key", "value", "name".
    """
    if len(value) > limit:
        raise invalid_parameter(f"'{entity}' exceeds the maximum length of {limit} characters")


def truncate_param_value(value: str) -> str:
    """Param values over 6000 characters are cut, not refused: the MLflow server's default
    (``MLFLOW_TRUNCATE_LONG_VALUES=true``), which clients rely on for long reprs."""
    return value[:MAX_PARAM_VAL_LENGTH]


def truncate_tag_value(value: str) -> str:
    """Run tag values over 8000 characters are cut, as ``truncate_param_value``."""
    return value[:MAX_TAG_VAL_LENGTH]


def validate_run_id_format(run_id: str, path: str = "run_id") -> None:
    """The run-id shape MLflow checks in log-batch and log-inputs only; elsewhere an unknown id is
    a 404 from the lookup. Message: ``Invalid value "x" for parameter 'run_id' supplied.``"""
    if _RUN_ID.match(run_id) is None:
        raise invalid_value(path, run_id)


def validate_experiment_name(name: str) -> None:
    """An experiment name: non-empty, at most 500 characters.

    Whitespace-only names are accepted: MLflow 3.17.2 creates an experiment named " " (checked).
    """
    if name == "":
        raise invalid_parameter(f"Invalid experiment name: '{name}'")
    validate_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)


def validate_experiment_id(raw: str) -> int:
    """An experiment id as the integer MLflow's SQL store parses with ``int()``.

    ``int()`` rules apply, so " 0", "+0" and "1_0" are ids 0, 0 and 10 there and here. Ids outside
    int64 are refused with the same message (MLflow answers them with a database 500).
    """
    try:
        number = int(raw)
    except ValueError:
        number = None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise invalid_parameter(
            f"Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."
        )
    return number
