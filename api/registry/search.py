"""Registered-model and model-version search: filter and order_by to SQL (pure).

Grammar from ``api.search.filter`` with registry dialects (mlflow-api.md §4.3, §4.4). Values
are bound parameters only. Prompts (tag ``mlflow.prompt.is_prompt = 'true'``) are excluded
unless the filter itself constrains that tag, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from api.registry.rules import DELETED_STAGE, PROMPT_TAG
from api.search.filter import Clause, Dialect, Entity, parse_filter, set_repr, split_identifier
from api.search.order import parse_order_item
from api.search.rules import identify_experiment
from api.search.sql import SQL_OPS, Binder, Query, bind_number, direction, text_compare
from api.search.visibility import readable_model
from schemas.access import Viewer
from schemas.int_fields import IntField, check_int_at_most
from schemas.mlflow_errors import MlflowError, invalid_parameter

_STRING_OPS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LIST_OPS: Final = frozenset({"IN", "NOT IN"})
_NUMERIC_OPS: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})
# As MLflow's registry grammars spell them: no plural "attributes", no backticks around them.
_PREFIXES: Final = {"attribute": Entity.ATTRIBUTE, "tag": Entity.TAG, "tags": Entity.TAG}
RM_ATTRIBUTES: Final = frozenset({"name"})
MV_ATTRIBUTES: Final = frozenset({"name", "run_id", "source_path", "version_number"})
_MV_COLUMNS: Final = {
    "name": "m.name",
    "run_id": "v.run_id",
    "source_path": "v.source",
    "version_number": "v.version",
}
RM_MAX_RESULTS: Final = 1000
RM_DEFAULT_RESULTS: Final = 100
MV_MAX_RESULTS: Final = 200_000


def _identify(text: str, attributes: frozenset[str]) -> tuple[Entity, str]:
    prefix, key = split_identifier(text)
    entity = Entity.ATTRIBUTE
    if prefix is not None:
        if prefix not in _PREFIXES:
            raise invalid_parameter(
                f"Invalid entity type '{prefix}'. Valid entity types are "
                "('attribute', 'tag', 'tags')"
            )
        entity = _PREFIXES[prefix]
    if entity is Entity.ATTRIBUTE and key not in attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{set_repr(attributes)}'"
        )
    return entity, key


def _no_null(entity: Entity, key: str) -> MlflowError | None:
    return invalid_parameter(f"Invalid comparator for {entity.value} '{key}': IS NULL")


# Attributes MLflow's model-version grammar takes numbers for (only version_number is also a
# filter key; the others fail as unknown keys first).
MV_NUMERIC_VALUES: Final = frozenset(
    {"version_number", "creation_timestamp", "last_updated_timestamp"}
)
RM_DIALECT: Final = Dialect(
    identify=_identify,
    attributes=RM_ATTRIBUTES,
    aliases={},
    numeric=frozenset(),
    list_keys=frozenset({"name"}),
    quote_invalid=False,
    null_error=_no_null,
    registry_numeric=frozenset(),
)
MV_DIALECT: Final = Dialect(
    identify=_identify,
    attributes=MV_ATTRIBUTES,
    aliases={},
    numeric=frozenset(),
    list_keys=frozenset({"name", "run_id"}),
    quote_invalid=False,
    null_error=_no_null,
    registry_numeric=MV_NUMERIC_VALUES,
)


@dataclass(frozen=True, slots=True)
class Order:
    column: str
    ascending: bool


def model_search_limit(field: IntField) -> int:
    """``registered-models/search``'s page size: MLflow's schema lambda on the raw value, then
    its store's bound on what protobuf kept (default 100). The store checks no lower bound:
    0 and -1 make a LIMIT 1 / LIMIT 0 query whose empty page still carries a next-page token
    (as here); below -1 SQLite reads no limit and PostgreSQL fails, so that is a 400 here."""
    check_int_at_most(field, RM_MAX_RESULTS, "max_results")
    limit = RM_DEFAULT_RESULTS if field.parsed is None else field.parsed
    if limit > RM_MAX_RESULTS:
        raise invalid_parameter(
            "Invalid value for request parameter max_results. It must be at most "
            f"{RM_MAX_RESULTS}, but got value {limit}"
        )
    if limit < -1:
        raise invalid_parameter(
            f"Invalid value {limit} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    return limit


def version_search_limit(field: IntField) -> int:
    """``model-versions/search``'s page size: the schema lambda, then the store's checks."""
    check_int_at_most(field, MV_MAX_RESULTS, "max_results")
    limit = MV_MAX_RESULTS if field.parsed is None else field.parsed
    if limit < 1:
        raise invalid_parameter(
            f"Invalid value for max_results. It must be a positive integer, but got {limit}"
        )
    return limit


def _check(clause: Clause, numeric: frozenset[str], lists: frozenset[str]) -> None:
    """MLflow's store-side checks of one clause, in its order and words."""
    comparator = clause.comparator
    if clause.entity is Entity.TAG:
        if comparator not in _STRING_OPS:
            raise invalid_parameter(f"Invalid comparator for tag: {comparator}")
        return
    if clause.key in numeric:
        if comparator not in _NUMERIC_OPS:
            raise invalid_parameter(f"Invalid comparator for attribute {clause.key}: {comparator}")
        if isinstance(clause.value, float) or _as_int(clause.value) is None:
            raise invalid_parameter(
                f"Invalid value for numeric attribute '{clause.key}': {clause.value!r}"
            )
        return
    if comparator not in _STRING_OPS | _LIST_OPS or (
        comparator in _LIST_OPS and clause.key not in lists
    ):
        raise invalid_parameter(f"Invalid comparator for attribute: {comparator}")
    if isinstance(clause.value, tuple) != (comparator in _LIST_OPS):
        # MLflow hands the database a list it cannot bind (or a string to IN) and passes the
        # driver's error on; the request is what is wrong.
        shape = "a list" if isinstance(clause.value, tuple) else "a single value"
        raise invalid_parameter(
            f"Invalid value for attribute '{clause.key}' with comparator {comparator}: {shape}"
        )


def _as_int(value: object) -> int | None:
    """``int(value)`` as MLflow applies it to a numeric attribute's value, or None."""
    if not isinstance(value, (int, str)):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _tag_sql(table: str, owner: str, clause: Clause, binder: Binder) -> str:
    key = binder.bind(clause.key, "text")
    if clause.key == PROMPT_TAG and clause.comparator == "!=":
        # A model without the tag is not a prompt: it satisfies != 'true' (MLflow's rule).
        value = binder.bind(clause.value, "text")
        match = f"{owner} AND t.key = {key} AND t.value = {value}"
        return f"NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
    compare = text_compare("t.value", clause.comparator, clause.value, binder)
    return f"EXISTS (SELECT 1 FROM {table} t WHERE {owner} AND t.key = {key} AND {compare})"


def _prompt_clause(clauses: Sequence[Clause], table: str, owner: str) -> str:
    if any(c.entity is Entity.TAG and c.key == PROMPT_TAG for c in clauses):
        return "TRUE"
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} t WHERE {owner}"
        f" AND t.key = '{PROMPT_TAG}' AND lower(t.value) = 'true')"
    )


def model_search(
    filter_string: str | None,
    order_by: Sequence[str],
    limit: int,
    offset: int,
    viewer: Viewer | None = None,
) -> Query:
    """Ids of matching registered models ``viewer`` may read, one page (+1 row to know about
    a next page)."""
    clauses = parse_filter(filter_string, RM_DIALECT)
    binder = Binder()
    where = [
        _prompt_clause(clauses, "registered_model_tags", "t.model_id = m.id"),
        readable_model(viewer, "m.name", binder),
    ]
    for clause in clauses:
        _check(clause, frozenset(), frozenset({"name"}))
        if clause.entity is Entity.TAG:
            where.append(_tag_sql("registered_model_tags", "t.model_id = m.id", clause, binder))
        else:
            where.append(text_compare("m.name", clause.comparator, clause.value, binder))
    orders = _orders(order_by, _RM_ORDER, default=(Order("m.name", True),))
    if not any(o.column == "m.name" for o in orders):
        orders = (*orders, Order("m.name", True))
    sql = (
        f"SELECT m.id FROM registered_models m WHERE {' AND '.join(where)}"
        f" ORDER BY {_order_sql(orders)}"
        f" LIMIT {binder.bind(limit + 1, 'bigint')} OFFSET {binder.bind(offset, 'bigint')}"
    )
    return binder.query(sql)


def version_search(
    filter_string: str | None,
    order_by: Sequence[str],
    limit: int,
    offset: int,
    columns: str,
    viewer: Viewer | None = None,
) -> Query:
    """Matching live model versions of models ``viewer`` may read, with ``columns``
    (store.MV_COLUMNS), one page (+1)."""
    clauses = parse_filter(filter_string, MV_DIALECT)
    binder = Binder()
    where = [
        f"v.current_stage <> '{DELETED_STAGE}'",
        _prompt_clause(clauses, "registered_model_tags", "t.model_id = m.id"),
        readable_model(viewer, "m.name", binder),
    ]
    for clause in clauses:
        _check(clause, frozenset({"version_number"}), frozenset({"name", "run_id"}))
        where.append(_version_clause(clause, binder))
    default = (
        Order("v.last_updated_timestamp", False),
        Order("m.name", True),
        Order("v.version", False),
    )
    orders = _orders(order_by, _MV_ORDER, default=default)
    for tie in (Order("m.name", True), Order("v.version", False)):
        if not any(o.column == tie.column for o in orders):
            orders = (*orders, tie)
    sql = (
        f"SELECT {columns} FROM model_versions v JOIN registered_models m ON m.id = v.model_id"
        f" WHERE {' AND '.join(where)} ORDER BY {_order_sql(orders)}"
        f" LIMIT {binder.bind(limit + 1, 'bigint')} OFFSET {binder.bind(offset, 'bigint')}"
    )
    return binder.query(sql)


def _version_clause(clause: Clause, binder: Binder) -> str:
    if clause.entity is Entity.TAG:
        owner = "t.model_id = v.model_id AND t.version = v.version"
        return _tag_sql("model_version_tags", owner, clause, binder)
    column = _MV_COLUMNS[clause.key]
    if clause.key == "version_number":
        number = _as_int(clause.value)
        assert number is not None  # _check
        return f"{column} {SQL_OPS[clause.comparator]} {bind_number(number, binder)}"
    return text_compare(column, clause.comparator, clause.value, binder)


_RM_ORDER: Final = {
    "name": "m.name",
    "timestamp": "m.last_updated_timestamp",
    "last_updated_timestamp": "m.last_updated_timestamp",
}
# MLflow's message names only these two of the three keys it takes.
_RM_ORDER_SHOWN: Final = frozenset({"name", "timestamp"})
_MV_ORDER: Final = {
    "name": "m.name",
    "version_number": "v.version",
    "creation_timestamp": "v.creation_timestamp",
    "last_updated_timestamp": "v.last_updated_timestamp",
}


def _orders(
    order_by: Sequence[str], columns: dict[str, str], default: tuple[Order, ...]
) -> tuple[Order, ...]:
    if not order_by:
        return default
    parsed: list[Order] = []
    for item in order_by:
        parsed.append(_order_item(item, columns))
    seen = [o.column for o in parsed]
    if len(seen) != len(set(seen)):
        raise MlflowError(
            "INTERNAL_ERROR", "`order_by` contains duplicate fields: " + str(list(order_by))
        )
    return tuple(parsed)


def _order_item(item: str, columns: dict[str, str]) -> Order:
    """One item, checked in MLflow's order: structure and direction (the tracking grammar's
    parser), then the key: registered models compare the raw key text with their keys; model
    versions identify it as the experiment grammar does, then check the attribute."""
    key_text, ascending = parse_order_item(item)
    if columns is _RM_ORDER:
        if key_text not in columns:
            raise invalid_parameter(
                f"Invalid order by key '{key_text}' specified. Valid keys are "
                f"'{set_repr(_RM_ORDER_SHOWN)}'"
            )
        return Order(columns[key_text], ascending)
    _entity, key = identify_experiment(key_text, frozenset(columns))
    if key not in columns:
        raise invalid_parameter(
            f"Invalid order by key '{key}' specified. Valid keys are {set_repr(frozenset(columns))}"
        )
    return Order(columns[key], ascending)


def _order_sql(orders: Sequence[Order]) -> str:
    return ", ".join(f"{o.column}{direction(o.ascending)}" for o in orders)
