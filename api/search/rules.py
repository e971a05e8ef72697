"""Which identifiers, comparators and values MLflow accepts in run and experiment filters (pure).

``parse_run_filter`` and ``parse_experiment_filter`` are the entry points: the shared grammar
(``api.search.filter``) followed by the comparator rules that MLflow only applies later, in its
store. Messages are MLflow 3.17's, typos included (some lack their closing quote, the numeric
attribute one lists the string comparators), because clients and tests match on them. MLflow
prints Python sets in hash order, which varies by process; we print them sorted.
"""

from __future__ import annotations

from typing import Final

from api.search.filter import Clause, Dialect, Entity, parse_filter, set_repr, split_identifier
from api.search.lexer import trim_backticks
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.mlflow_names import validate_experiment_id

RUN_NUMERIC_ATTRIBUTES: Final = frozenset({"start_time", "end_time", "created", "Created"})
RUN_FILTER_ATTRIBUTES: Final = frozenset(
    {"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}
    | {"created", "Created", "run name", "Run name", "Run Name"}
)
RUN_ORDER_ATTRIBUTES: Final = frozenset(
    {"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}
    | {"created", "Created"}
)
RUN_KEY_ALIASES: Final = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
EXPERIMENT_ATTRIBUTES: Final = frozenset(
    {"name", "experiment_id", "creation_time", "last_update_time"}
)
EXPERIMENT_NUMERIC_ATTRIBUTES: Final = frozenset({"creation_time", "last_update_time"})
DATASET_KEYS: Final = frozenset({"name", "digest", "context"})

_RUN_ENTITIES: Final = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
    "dataset": Entity.DATASET,
    "datasets": Entity.DATASET,
}
_EXPERIMENT_ENTITIES: Final = {"attribute": Entity.ATTRIBUTE, "tag": Entity.TAG, "tags": Entity.TAG}

NUMERIC_OPS: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NULL_OPS: Final = frozenset({"IS NULL", "IS NOT NULL"})
_LIST_OPS: Final = frozenset({"IN", "NOT IN"})
_KEY_VALUE_OPS: Final = _STRING_OPS | _NULL_OPS  # params and tags
_ATTRIBUTE_OPS: Final = _STRING_OPS | _LIST_OPS  # string attributes and datasets

# ---------------------------------------------------------------- identifiers


def identify_run(text: str, attributes: frozenset[str]) -> tuple[Entity, str]:
    prefix, key = split_identifier(text)
    entity = Entity.ATTRIBUTE
    if prefix is not None:
        name = trim_backticks(prefix)
        if name not in _RUN_ENTITIES:
            raise invalid_parameter(
                f"Invalid entity type '{name}'. Valid values are "
                "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
            )
        entity = _RUN_ENTITIES[name]
    _check_key(entity, key, attributes)
    return entity, key


def identify_experiment(text: str, attributes: frozenset[str]) -> tuple[Entity, str]:
    """Unlike runs, the prefix is checked before backticks are trimmed, and only the singular
    ``attribute`` is accepted (MLflow's ``SearchExperimentsUtils``)."""
    prefix, key = split_identifier(text)
    entity = Entity.ATTRIBUTE
    if prefix is not None:
        if prefix not in _EXPERIMENT_ENTITIES:
            raise invalid_parameter(
                f"Invalid entity type '{prefix}'. "
                "Valid entity types are ('attribute', 'tag', 'tags')"
            )
        entity = _EXPERIMENT_ENTITIES[prefix]
    _check_key(entity, key, attributes)
    return entity, key


def _check_key(entity: Entity, key: str, attributes: frozenset[str]) -> None:
    if entity is Entity.ATTRIBUTE and key not in attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{set_repr(attributes)}'"
        )
    if entity is Entity.DATASET and key not in DATASET_KEYS:
        raise invalid_parameter(
            f"Invalid dataset key '{key}' specified. Valid keys are '{set_repr(DATASET_KEYS)}'"
        )


# ---------------------------------------------------------------- runs


def _run_null_error(entity: Entity, key: str) -> MlflowError | None:
    if entity in (Entity.PARAM, Entity.TAG):
        return None
    return invalid_parameter(
        "IS NULL / IS NOT NULL is only supported for tags and params, "
        f"not for '{entity.value}' '{key}'"
    )


RUNS: Final = Dialect(
    identify=identify_run,
    attributes=RUN_FILTER_ATTRIBUTES,
    aliases=RUN_KEY_ALIASES,
    numeric=RUN_NUMERIC_ATTRIBUTES,
    list_keys=frozenset({"run_id"}),
    quote_invalid=True,
    null_error=_run_null_error,
)


def parse_run_filter(filter_string: str | None) -> tuple[Clause, ...]:
    """The clauses of a ``runs/search`` filter, or MLflow's 400 for the first problem."""
    clauses = parse_filter(filter_string, RUNS)
    for clause in clauses:
        _check_run_comparator(clause)
        _check_list_use(clause)
    return clauses


# entity kind -> (accepted comparators, comparators the message lists, message closes its quote)
_RUN_RULES: Final = {
    "metric": (NUMERIC_OPS, NUMERIC_OPS, False),
    "parameter": (_KEY_VALUE_OPS, _KEY_VALUE_OPS, True),
    "tag": (_KEY_VALUE_OPS, _KEY_VALUE_OPS, False),
    "dataset": (_ATTRIBUTE_OPS, _ATTRIBUTE_OPS, False),
    "numeric attribute": (NUMERIC_OPS, _ATTRIBUTE_OPS, False),
    "string attribute": (_ATTRIBUTE_OPS, _ATTRIBUTE_OPS, True),
}


def _check_run_comparator(clause: Clause) -> None:
    kind = clause.entity.value
    if clause.entity is Entity.ATTRIBUTE:
        numeric = clause.key in RUN_NUMERIC_ATTRIBUTES
        kind = "numeric attribute" if numeric else "string attribute"
    accepted, listed, closed = _RUN_RULES[kind]
    if clause.comparator not in accepted:
        quote = "'" if closed else ""
        raise invalid_parameter(
            f"Invalid comparator '{clause.comparator}' not one of '{set_repr(listed)}{quote}"
        )


def _check_list_use(clause: Clause) -> None:
    """MLflow lets ``run_id = ('a')`` through to the database; we answer it with a 400."""
    if isinstance(clause.value, tuple) and clause.comparator not in _LIST_OPS:
        raise invalid_parameter(
            f"Invalid comparator '{clause.comparator}' for a list of values: use IN or NOT IN."
        )


# ---------------------------------------------------------------- experiments


def _experiment_null_error(entity: Entity, key: str) -> MlflowError | None:
    if entity is Entity.TAG:
        return None
    return invalid_parameter(
        f"IS NULL / IS NOT NULL is only supported for tags, not for attribute '{key}'"
    )


EXPERIMENTS: Final = Dialect(
    identify=identify_experiment,
    attributes=EXPERIMENT_ATTRIBUTES,
    aliases={},
    numeric=EXPERIMENT_NUMERIC_ATTRIBUTES,
    list_keys=frozenset({"experiment_id"}),
    quote_invalid=False,
    null_error=_experiment_null_error,
)


def parse_experiment_filter(filter_string: str | None) -> tuple[Clause, ...]:
    """The clauses of an ``experiments/search`` filter, or MLflow's 400 for the first problem.
    ``experiment_id`` values stay strings but are checked to be integers."""
    clauses = parse_filter(filter_string, EXPERIMENTS)
    for clause in clauses:
        _check_experiment_clause(clause)
        _check_list_use(clause)
    return clauses


def _check_experiment_clause(clause: Clause) -> None:
    if clause.entity is Entity.TAG:
        _check_experiment_tag(clause.comparator)
    elif clause.key == "experiment_id":
        _check_experiment_id(clause)
    elif clause.key in EXPERIMENT_NUMERIC_ATTRIBUTES:
        _check_experiment_time(clause)
    else:
        _check_experiment_name(clause.comparator)


def _check_experiment_tag(comparator: str) -> None:
    if comparator not in _KEY_VALUE_OPS:
        raise invalid_parameter(f"Invalid comparator for tag: {comparator}")


def _check_experiment_id(clause: Clause) -> None:
    if clause.comparator not in {"=", "!="} | _LIST_OPS:
        raise invalid_parameter(f"Invalid comparator for experiment_id: {clause.comparator}")
    values = clause.value if isinstance(clause.value, tuple) else (str(clause.value),)
    for value in values:
        validate_experiment_id(value)


def _check_experiment_time(clause: Clause) -> None:
    if clause.comparator not in NUMERIC_OPS:
        raise invalid_parameter(
            f"Invalid comparator '{clause.comparator}' not one of '{set_repr(_ATTRIBUTE_OPS)}"
        )
    if isinstance(clause.value, float):
        raise invalid_parameter(
            f"Invalid value for numeric attribute '{clause.key}': {str(clause.value)!r}"
        )


def _check_experiment_name(comparator: str) -> None:
    if comparator not in _ATTRIBUTE_OPS:
        raise invalid_parameter(
            f"Invalid comparator '{comparator}' not one of '{set_repr(_ATTRIBUTE_OPS)}'"
        )
    if comparator not in _STRING_OPS:
        raise invalid_parameter(f"Invalid comparator for string attribute: {comparator}")
