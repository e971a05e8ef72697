"""Compile a ``runs/search`` request into one parameterised PostgreSQL query (pure).

The query returns the ``run_uuid`` of one page of runs in MLflow's order, fetching one row more
than ``max_results`` so that ``search_request.page_of`` can tell whether a next page exists.
Its shape, for a metric filter and a metric ordering::

    SELECT r.run_uuid FROM runs r
    LEFT JOIN latest_metrics o1 ON o1.run_uuid = r.run_uuid AND o1.key = $1::text
    WHERE r.experiment_id = $2::bigint AND r.lifecycle_stage = ANY($3::text[])
      AND EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid
                  AND m.key = $4::text AND m.value > $5::float8 AND NOT m.is_nan)
    ORDER BY CASE WHEN o1.is_nan THEN 1 WHEN o1.run_uuid IS NULL THEN 2 ELSE 0 END,
             o1.value DESC, r.start_time DESC, r.run_uuid
    LIMIT $6::bigint OFFSET $7::bigint

Every filter on metrics, params and tags is an ``EXISTS`` probe on a primary key
(``(run_uuid, key)``), and every ordering key a ``LEFT JOIN`` on the same key, so the cost per
run is a few index lookups however many runs an experiment holds; the default order
(``start_time DESC, run_uuid``) is the ``runs_by_experiment`` index itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from api.search_filter import Clause, Entity
from api.search_order import OrderKey
from api.search_request import ViewType, lifecycle_stages
from api.search_sql import (
    SQL_OPS,
    Binder,
    Query,
    bind_number,
    direction,
    key_value_probe,
    text_compare,
)
from schemas.mlflow_errors import invalid_parameter
from schemas.mlflow_names import validate_experiment_id

# MLflow attribute name -> runs column (run_name is runs.name, kept equal to tag mlflow.runName).
_COLUMNS: Final = {
    "run_id": "run_uuid",
    "run_name": "name",
    "status": "status",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
    "start_time": "start_time",
    "end_time": "end_time",
}
_NUMERIC_COLUMNS: Final = frozenset({"start_time", "end_time"})
_KEY_VALUE_TABLES: Final = {Entity.PARAM: "params", Entity.TAG: "tags"}


def compile_run_search(
    experiment_ids: Sequence[str],
    clauses: Sequence[Clause],
    view_type: ViewType,
    order_by: Sequence[OrderKey],
    max_results: int,
    offset: int,
    *,
    datasets_available: bool = False,
) -> Query:
    """The page query. ``clauses`` and ``order_by`` come from ``parse_run_filter`` and
    ``parse_run_order_by``; ``max_results`` is already checked. Raises MLflow's 400 for a
    non-integer experiment id, and for dataset filters unless ``datasets_available`` (the api
    passes True: ``schemas/sql/0002_run_inputs.sql`` has the tables)."""
    ids = [validate_experiment_id(experiment_id) for experiment_id in experiment_ids]
    binder = Binder()
    joins, order_terms = _ordering(order_by, binder)
    where = [_experiment_scope(ids, binder), _lifecycle(view_type, binder)]
    where += [_predicate(clause, binder, datasets_available) for clause in clauses]
    limit = binder.bind(max_results + 1, "bigint")
    start = binder.bind(offset, "bigint")
    return binder.query(
        "SELECT r.run_uuid FROM runs r"
        + "".join(joins)
        + " WHERE "
        + " AND ".join(where)
        + " ORDER BY "
        + ", ".join(order_terms)
        + f" LIMIT {limit} OFFSET {start}"
    )


def _experiment_scope(ids: list[int], binder: Binder) -> str:
    # A plain equality for the usual single experiment lets the planner read runs_by_experiment
    # in order and stop after LIMIT rows; "= ANY(array)" would sort the whole experiment.
    if len(ids) == 1:
        return f"r.experiment_id = {binder.bind(ids[0], 'bigint')}"
    return f"r.experiment_id = ANY({binder.bind(ids, 'bigint[]')})"


def _lifecycle(view_type: ViewType, binder: Binder) -> str:
    return f"r.lifecycle_stage = ANY({binder.bind(list(lifecycle_stages(view_type)), 'text[]')})"


# ---------------------------------------------------------------- filters


def _predicate(clause: Clause, binder: Binder, datasets_available: bool) -> str:
    if clause.entity is Entity.METRIC:
        return _metric_predicate(clause, binder)
    if clause.entity in _KEY_VALUE_TABLES:
        return _key_value_predicate(_KEY_VALUE_TABLES[clause.entity], clause, binder)
    if clause.entity is Entity.DATASET:
        return _dataset_predicate(clause, binder, datasets_available)
    return _attribute_predicate(clause, binder)


def _metric_predicate(clause: Clause, binder: Binder) -> str:
    key = binder.bind(clause.key, "text")
    value = binder.bind(clause.value, "float8")
    op = SQL_OPS[clause.comparator]
    # NaN is stored as value 0 with is_nan. As in IEEE arithmetic (and MLflow), a NaN latest
    # value satisfies "!=" and nothing else, so the stored 0 must never take part.
    if clause.comparator == "!=":
        test = f"(m.value <> {value} OR m.is_nan)"
    else:
        test = f"m.value {op} {value} AND NOT m.is_nan"
    return (
        "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid"
        f" AND m.key = {key} AND {test})"
    )


def _key_value_predicate(table: str, clause: Clause, binder: Binder) -> str:
    return key_value_probe(table, "x.run_uuid = r.run_uuid", clause, binder)


def _attribute_predicate(clause: Clause, binder: Binder) -> str:
    column = "r." + _COLUMNS[clause.key]
    if clause.key in _NUMERIC_COLUMNS:
        # A NULL end_time compares as unknown, so runs still running never match, as in MLflow.
        return f"{column} {SQL_OPS[clause.comparator]} {bind_number(clause.value, binder)}"
    return text_compare(column, clause.comparator, clause.value, binder)


def _dataset_predicate(clause: Clause, binder: Binder, datasets_available: bool) -> str:
    """A run matches when any of its dataset inputs does (MLflow joins its inputs). Assumes
    ``run_inputs(run_uuid, dataset_uuid, context)`` and ``datasets(dataset_uuid, name,
    digest)``, ``context`` being the input tag ``mlflow.data.context``."""
    if not datasets_available:
        raise invalid_parameter(
            f"Filtering runs by dataset ('datasets.{clause.key}') is not supported by this "
            "server yet."
        )
    column = "i.context" if clause.key == "context" else f"d.{clause.key}"
    test = text_compare(column, clause.comparator, clause.value, binder)
    return (
        "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid"
        f" WHERE i.run_uuid = r.run_uuid AND {test})"
    )


# ---------------------------------------------------------------- ordering


def _ordering(order_by: Sequence[OrderKey], binder: Binder) -> tuple[list[str], list[str]]:
    """(joins, ORDER BY terms): the requested keys, then MLflow's tie-breakers
    ``start_time DESC`` (unless ordered by start_time already) and ``run_id ASC``."""
    joins: list[str] = []
    terms: list[str] = []
    for number, item in enumerate(order_by, start=1):
        alias = f"o{number}"
        if item.entity is Entity.ATTRIBUTE:
            terms += _attribute_order(item)
            continue
        table = "latest_metrics" if item.entity is Entity.METRIC else _KEY_VALUE_TABLES[item.entity]
        joins.append(
            f" LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid"
            f" AND {alias}.key = {binder.bind(item.key, 'text')}"
        )
        terms += _joined_order(item, alias)
    if not any(k.entity is Entity.ATTRIBUTE and k.key == "start_time" for k in order_by):
        terms.append("r.start_time DESC")
    terms.append("r.run_uuid")
    return joins, terms


def _joined_order(item: OrderKey, alias: str) -> list[str]:
    """Missing values last in both directions; for metrics real values first, then NaN, then
    runs without the metric (MLflow's rule)."""
    if item.entity is Entity.METRIC:
        rank = f"CASE WHEN {alias}.is_nan THEN 1 WHEN {alias}.run_uuid IS NULL THEN 2 ELSE 0 END"
        return [rank, f"{alias}.value{direction(item.ascending)}"]
    return [f"{alias}.value IS NULL", f'{alias}.value COLLATE "C"{direction(item.ascending)}']


def _attribute_order(item: OrderKey) -> list[str]:
    column = "r." + _COLUMNS[item.key]
    if item.key == "start_time":
        # runs/create stores 0 for a missing start_time, so the column is never NULL and MLflow's
        # "NULL last" key can be left out: the bare column keeps runs_by_experiment usable for
        # the UI's default order_by ("attributes.start_time DESC").
        return [f"{column}{direction(item.ascending)}"]
    if item.key == "end_time":
        return [f"{column} IS NULL", f"{column}{direction(item.ascending)}"]
    # Code-point order, as MLflow's reference stores sort, whatever the cluster's locale.
    return [f'{column} COLLATE "C"{direction(item.ascending)}']
