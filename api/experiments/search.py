"""Compile an ``experiments/search`` request into one parameterised PostgreSQL query (pure).

The query returns the ``experiment_id`` of one page in MLflow's order (default
``creation_time DESC, experiment_id ASC``; a custom order without ``experiment_id`` gets
``experiment_id DESC`` as tie-breaker), fetching ``max_results + 1`` rows so that
``api.search.request.page_of`` can tell whether a next page exists. Tag filters are ``EXISTS``
probes on ``experiment_tags``' primary key, so ``IS NULL`` (the UI's
``tags.`mlflow.experiment.isGateway` IS NULL``) costs one index lookup per experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from api.search.filter import Clause, Entity
from api.search.order import OrderKey
from api.search.request import ViewType, lifecycle_stages
from api.search.rules import EXPERIMENT_ATTRIBUTES
from api.search.sql import (
    SQL_OPS,
    Binder,
    Query,
    bind_number,
    direction,
    key_value_probe,
    text_compare,
)
from api.search.visibility import readable_experiment
from schemas.access import Viewer
from schemas.mlflow_names import validate_experiment_id

_COLUMNS: Final = {name: f"e.{name}" for name in EXPERIMENT_ATTRIBUTES}
_DEFAULT_ORDER: Final = (
    OrderKey(Entity.ATTRIBUTE, "creation_time", ascending=False),
    OrderKey(Entity.ATTRIBUTE, "experiment_id", ascending=True),
)


def compile_experiment_search(
    clauses: Sequence[Clause],
    view_type: ViewType,
    order_by: Sequence[OrderKey],
    max_results: int,
    offset: int,
    viewer: Viewer | None = None,
) -> Query:
    """The page query. ``clauses`` and ``order_by`` come from ``parse_experiment_filter`` and
    ``parse_experiment_order_by``; ``max_results`` is already checked; only experiments
    ``viewer`` may read are listed."""
    binder = Binder()
    stages = binder.bind(list(lifecycle_stages(view_type)), "text[]")
    where = [f"e.lifecycle_stage = ANY({stages})"]
    where += [_predicate(clause, binder) for clause in clauses]
    if viewer is not None:
        where.append(readable_experiment(viewer, "e.experiment_id", binder))
    limit = binder.bind(max_results + 1, "bigint")
    start = binder.bind(offset, "bigint")
    return binder.query(
        "SELECT e.experiment_id FROM experiments e WHERE "
        + " AND ".join(where)
        + " ORDER BY "
        + ", ".join(_order_terms(order_by))
        + f" LIMIT {limit} OFFSET {start}"
    )


def _predicate(clause: Clause, binder: Binder) -> str:
    if clause.entity is Entity.TAG:
        return _tag_predicate(clause, binder)
    if clause.key == "experiment_id":
        return _id_predicate(clause, binder)
    if clause.key == "name":
        return text_compare("e.name", clause.comparator, clause.value, binder)
    column = _COLUMNS[clause.key]
    return f"{column} {SQL_OPS[clause.comparator]} {bind_number(clause.value, binder)}"


def _tag_predicate(clause: Clause, binder: Binder) -> str:
    return key_value_probe("experiment_tags", "x.experiment_id = e.experiment_id", clause, binder)


def _id_predicate(clause: Clause, binder: Binder) -> str:
    """Ids are quoted in the filter and were checked to be integers by the parser."""
    if isinstance(clause.value, tuple):
        ids = [validate_experiment_id(value) for value in clause.value]
        test = "= ANY" if clause.comparator == "IN" else "<> ALL"
        return f"e.experiment_id {test}({binder.bind(ids, 'bigint[]')})"
    value = validate_experiment_id(str(clause.value))
    return f"e.experiment_id {SQL_OPS[clause.comparator]} {binder.bind(value, 'bigint')}"


def _order_terms(order_by: Sequence[OrderKey]) -> list[str]:
    keys = list(order_by or _DEFAULT_ORDER)
    if not any(key.key == "experiment_id" for key in keys):
        keys.append(OrderKey(Entity.ATTRIBUTE, "experiment_id", ascending=False))
    return [_order_term(key) for key in keys]


def _order_term(key: OrderKey) -> str:
    # Names in code-point order, as MLflow's reference stores sort, whatever the locale.
    collate = ' COLLATE "C"' if key.key == "name" else ""
    return f"{_COLUMNS[key.key]}{collate}{direction(key.ascending)}"
