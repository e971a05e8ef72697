"""Compile a ``runs/search`` request into one parameterised PostgreSQL query (pure).

The query returns the ``run_uuid`` of one page of runs in MLflow's order, fetching one row more
than ``max_results`` so that ``api.search.request.page_of`` can tell whether a next page exists.
Its shape, for a param filter and the default order::

    SELECT r.run_uuid FROM runs r
    WHERE r.experiment_id = $1::bigint AND r.lifecycle_stage = ANY($2::text[])
      AND EXISTS (SELECT 1 FROM params x WHERE x.run_uuid = r.run_uuid
                  AND x.key = $3::text AND x.value = $4::text)
    ORDER BY r.start_time DESC, r.run_uuid
    LIMIT $5::bigint OFFSET $6::bigint

Every filter on metrics, params and tags is an ``EXISTS`` probe on a primary key
(``(run_uuid, key)``), and every ordering key a ``LEFT JOIN`` on the same key, so the cost per
run is a few index lookups however many runs an experiment holds; the default order
(``start_time DESC, run_uuid``) is the ``runs_by_experiment`` index itself. An order led by a
metric is split into segments so that it, too, is an index walk (see ``_metric_first``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from api.search.filter import Clause, Entity
from api.search.order import OrderKey
from api.search.request import ViewType, lifecycle_stages
from api.search.sql import (
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
    leading = _leading_metric(order_by)
    where = [_experiment_scope(ids, binder), _lifecycle(view_type, binder)]
    where += [_predicate(clause, binder, datasets_available, leading) for clause in clauses]
    source = "FROM runs r" + "".join(joins)
    if leading is not None:
        if not any(_excludes_nan_and_missing(clause, leading) for clause in clauses):
            return _metric_first(source, where, order_terms, binder, max_results, offset)
        # The filter already says NOT o1.is_nan: only the first segment exists, and its order
        # is the full one without the rank term (0 for every real value).
        order_terms = order_terms[1:]
    page = _select(source, where, order_terms)
    return binder.query(page + _page_window(binder, max_results, offset))


def _select(source: str, where: Sequence[str], order_terms: Sequence[str]) -> str:
    return (
        f"SELECT r.run_uuid {source} WHERE {' AND '.join(where)} ORDER BY {', '.join(order_terms)}"
    )


def _page_window(binder: Binder, max_results: int, offset: int) -> str:
    limit = binder.bind(max_results + 1, "bigint")
    return f" LIMIT {limit} OFFSET {binder.bind(offset, 'bigint')}"


def _experiment_scope(ids: list[int], binder: Binder) -> str:
    # A plain equality for the usual single experiment lets the planner read runs_by_experiment
    # in order and stop after LIMIT rows; "= ANY(array)" would sort the whole experiment.
    if len(ids) == 1:
        return f"r.experiment_id = {binder.bind(ids[0], 'bigint')}"
    return f"r.experiment_id = ANY({binder.bind(ids, 'bigint[]')})"


def _lifecycle(view_type: ViewType, binder: Binder) -> str:
    return f"r.lifecycle_stage = ANY({binder.bind(list(lifecycle_stages(view_type)), 'text[]')})"


# ---------------------------------------------------------------- filters


def _predicate(
    clause: Clause, binder: Binder, datasets_available: bool, leading: str | None
) -> str:
    if clause.entity is Entity.METRIC and clause.key == leading:
        return _leading_metric_predicate(clause, binder)
    if clause.entity is Entity.METRIC:
        return _metric_predicate(clause, binder)
    if clause.entity in _KEY_VALUE_TABLES:
        return _key_value_predicate(_KEY_VALUE_TABLES[clause.entity], clause, binder)
    if clause.entity is Entity.DATASET:
        return _dataset_predicate(clause, binder, datasets_available)
    return _attribute_predicate(clause, binder)


def _metric_predicate(clause: Clause, binder: Binder) -> str:
    key = binder.bind(clause.key, "text")
    test = _metric_test("m", clause.comparator, binder.bind(clause.value, "float8"))
    return (
        "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid"
        f" AND m.key = {key} AND {test})"
    )


def _leading_metric_predicate(clause: Clause, binder: Binder) -> str:
    """A filter on the metric that leads the order tests the joined row ``o1`` (the run's only
    latest row of that key) instead of probing again, so the walk starts where the filter does.
    The value is an InitPlan, ``(SELECT $n)``: planned as unknown, the range gets PostgreSQL's
    default selectivity (1/3) rather than one from the value histogram, which mixes every
    metric key, and its estimates made PostgreSQL sort where it should walk the index
    (docs/design.md, "Search: measured choices")."""
    value = f"(SELECT {binder.bind(clause.value, 'float8')})"
    return _metric_test("o1", clause.comparator, value)


def _metric_test(alias: str, comparator: str, value: str) -> str:
    # NaN is stored as value 0 with is_nan. As in IEEE arithmetic (and MLflow), a NaN latest
    # value satisfies "!=" and nothing else, so the stored 0 must never take part.
    if comparator == "!=":
        return f"({alias}.value <> {value} OR {alias}.is_nan)"
    return f"{alias}.value {SQL_OPS[comparator]} {value} AND NOT {alias}.is_nan"


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


# ---------------------------------------------------------------- metric-first order


def _leading_metric(order_by: Sequence[OrderKey]) -> str | None:
    """The metric key that leads the order (joined as ``o1``), if a metric leads it."""
    if order_by and order_by[0].entity is Entity.METRIC:
        return order_by[0].key
    return None


def _excludes_nan_and_missing(clause: Clause, leading: str) -> bool:
    """Only real values pass a filter on the leading metric, except ``!=`` (NaN passes)."""
    return clause.entity is Entity.METRIC and clause.key == leading and clause.comparator != "!="


def _metric_first(
    source: str,
    where: list[str],
    order_terms: list[str],
    binder: Binder,
    max_results: int,
    offset: int,
) -> Query:
    """An order led by a metric, as two segments that concatenate to MLflow's order: runs with
    a real value, in value order, then -- only when those cannot fill the page -- runs whose
    value is NaN, then runs without the metric::

        WITH valued AS MATERIALIZED (
            SELECT r.run_uuid, row_number() OVER (ORDER BY o1.value DESC, ...) AS pos
            FROM runs r LEFT JOIN latest_metrics o1 ON ... WHERE ... AND NOT o1.is_nan
            ORDER BY o1.value DESC, ... LIMIT $wanted)
        SELECT run_uuid FROM (
            SELECT 0 AS segment, pos, run_uuid FROM valued
            UNION ALL (SELECT 1, pos, run_uuid FROM (
                SELECT r.run_uuid, row_number() OVER (ORDER BY <rank>, ...) AS pos ...
                WHERE ... AND (o1.run_uuid IS NULL OR o1.is_nan)
                  AND (SELECT count(*) FROM valued) < $wanted
                ORDER BY <rank>, ... LIMIT $wanted) rest)
        ) page ORDER BY segment, pos LIMIT $limit OFFSET $offset

    The first segment's order is the full order without its rank term (0 for every real
    value), so PostgreSQL walks ``latest_metrics_by_value`` (schemas/sql/0008), probes each
    run and stops after ``$wanted`` = offset + max_results + 1 rows; one ``ORDER BY rank,
    value`` had to rank and sort every run of the experiment. ``NOT o1.is_nan`` also makes
    the ``LEFT JOIN`` an inner join. The second segment keeps the full order (rank 1 for NaN,
    2 for missing); its condition on the first segment's count is planned as a one-time
    filter, so it costs nothing when the first segment fills the page.

    ``row_number()`` over the segment's own order is pipelined under its LIMIT, and ordering
    the page by (segment, number) is exact whatever order UNION ALL yields rows in. When a
    filter on the leading metric already rejects NaN and missing values, the page is the first
    segment alone, without the numbering (``compile_run_search``).

    Measured against one sorted query, and the walk's known weak case (other experiments'
    runs with the same key): docs/design.md, "Search: measured choices".
    """
    valued_terms = order_terms[1:]  # order_terms[0] is the rank (_joined_order)
    valued = [*where, "NOT o1.is_nan"]
    wanted = binder.bind(offset + max_results + 1, "bigint")
    gate = f"(SELECT count(*) FROM valued) < {wanted}"
    first = _numbered(source, valued, valued_terms, wanted)
    second = _numbered(
        source, [*where, "(o1.run_uuid IS NULL OR o1.is_nan)", gate], order_terms, wanted
    )
    return binder.query(
        f"WITH valued AS MATERIALIZED ({first})"
        " SELECT run_uuid FROM (SELECT 0 AS segment, pos, run_uuid FROM valued"
        f" UNION ALL (SELECT 1, pos, run_uuid FROM ({second}) rest)) page"
        " ORDER BY segment, pos" + _page_window(binder, max_results, offset)
    )


def _numbered(source: str, where: Sequence[str], order_terms: Sequence[str], wanted: str) -> str:
    order = ", ".join(order_terms)
    return (
        f"SELECT r.run_uuid, row_number() OVER (ORDER BY {order}) AS pos {source}"
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {wanted}"
    )
