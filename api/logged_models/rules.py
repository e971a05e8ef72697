"""Logged-model request fields (pure): name, status, tag and param pairs, and the search
request compiled to SQL (the filter of ``api.logged_models.filter`` over attributes, metrics,
params and tags; datasets; order_by on attributes and on metrics' latest values; paging), with
every value bound as a parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from api.logged_models.filter import ALIASES, NUMERIC_ATTRIBUTES, Comparison, Entity, parse
from api.search.sql import SQL_OPS, Binder, Query, text_compare
from api.search.visibility import readable_experiment
from schemas.access import Viewer
from schemas.fields import expect_object, get_bool, get_list, get_string
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.mlflow_names import validate_key

STATUSES: Final = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0,
    "LOGGED_MODEL_PENDING": 1,
    "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3,
}
_BAD_NAME: Final = re.compile(r"[/:.%\"']")


def check_name(name: str) -> str:
    if _BAD_NAME.search(name):
        raise invalid_parameter(
            f"Invalid model name '{name}'. Names cannot contain any of the following "
            "characters: ['/', ':', '.', '%', '\"', \"'\"]"
        )
    return name


def pairs(doc: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    items: dict[str, str] = {}
    for i, item in enumerate(get_list(doc, field)):
        obj = expect_object(item, f"{field}[{i}]")
        key = get_string(obj, "key", path=f"{field}[{i}].key", required=True)
        validate_key(key, f"{field}[{i}].key")
        items[key] = get_string(obj, "value", path=f"{field}[{i}].value", default="")
    return list(items.items())


# Sluice's column for each attribute MLflow's filters and order_by name. MLflow stores status
# as an integer (unspecified 0, pending 1, ready 2, upload failed 3): its filters compare that
# number's text, and it orders by the number.
_STATUS_NUMBER: Final = (
    "CASE m.status WHEN 'LOGGED_MODEL_PENDING' THEN 1 WHEN 'LOGGED_MODEL_READY' THEN 2"
    " WHEN 'LOGGED_MODEL_UPLOAD_FAILED' THEN 3 ELSE 0 END"
)
_COLUMNS: Final = {
    "model_id": "m.model_id",
    "experiment_id": "m.experiment_id",
    "name": "m.name",
    "artifact_location": "m.artifact_location",
    "creation_timestamp_ms": "m.creation_timestamp",
    "last_updated_timestamp_ms": "m.last_updated_timestamp",
    "status": _STATUS_NUMBER,
    "lifecycle_stage": "m.lifecycle_stage",
    "model_type": "m.model_type",
    "source_run_id": "m.source_run_id",
    "status_message": "m.status_message",
}
_TEXT_ORDER: Final = frozenset(
    {"model_id", "name", "artifact_location", "lifecycle_stage", "model_type", "source_run_id"}
    | {"status_message"}
)


@dataclass(frozen=True, slots=True)
class DatasetFilter:
    name: str
    # None when not given ("" included): MLflow then matches points without a digest only (its
    # handler passes None, which SQLAlchemy compares as IS NULL), never "any digest".
    digest: str | None


def datasets(doc: Mapping[str, Any]) -> list[DatasetFilter]:
    """The request's ``datasets``: each names a dataset (MLflow refuses one without)."""
    found = []
    for i, item in enumerate(get_list(doc, "datasets")):
        obj = expect_object(item, f"datasets[{i}]")
        name = get_string(obj, "dataset_name", path=f"datasets[{i}].dataset_name", default="")
        if not name:
            raise invalid_parameter("`dataset_name` in the `datasets` clause must be specified.")
        digest = get_string(obj, "dataset_digest", path=f"datasets[{i}].dataset_digest")
        found.append(DatasetFilter(name, digest or None))
    return found


def _datasets_sql(found: list[DatasetFilter], binder: Binder) -> str:
    """Rows of ``logged_model_metrics x`` on any of the datasets (OR), "" for none."""
    terms = []
    for d in found:
        term = f"x.dataset_name = {binder.bind(d.name, 'text')} AND x.dataset_digest"
        if d.digest is None:
            term += " IS NULL"
        else:
            term += f" = {binder.bind(d.digest, 'text')}"
        terms.append(f"({term})")
    return f" AND ({' OR '.join(terms)})" if terms else ""


def _metric_probe(binder: Binder, where: str) -> str:
    return f"EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id{where})"


def _comparison_sql(c: Comparison, binder: Binder, on_datasets: str) -> str:
    if isinstance(c.value, tuple) and c.op not in ("IN", "NOT IN"):
        raise invalid_parameter(f"Invalid value for {c.entity.value}.{c.key} {c.op}: a list.")
    if c.entity is Entity.METRIC:
        where = f" AND x.key = {binder.bind(c.key, 'text')}"
        where += f" AND x.value {SQL_OPS[c.op]} {binder.bind(c.value, 'float8')}"
        return _metric_probe(binder, where + on_datasets)
    if c.entity is Entity.PARAM or c.entity is Entity.TAG:
        table = "logged_model_params" if c.entity is Entity.PARAM else "logged_model_tags"
        return (
            f"EXISTS (SELECT 1 FROM {table} x WHERE x.model_id = m.model_id"
            f" AND x.key = {binder.bind(c.key, 'text')}"
            f" AND {text_compare('x.value', c.op, c.value, binder)})"
        )
    column = _COLUMNS[c.key]
    if c.key in NUMERIC_ATTRIBUTES:
        return f"{column} {SQL_OPS[c.op]} {binder.bind(c.value, 'float8')}"
    return text_compare(f"({column})::text", c.op, c.value, binder)


def _filter_sql(filter_string: str, found: list[DatasetFilter], binder: Binder) -> list[str]:
    """MLflow's semantics: a metric condition holds when any point of the model matches it
    (on one of the requested datasets, if any); datasets alone keep models with a metric on
    one of them."""
    comparisons = parse(filter_string)
    on_datasets = _datasets_sql(found, binder)
    where = [_comparison_sql(c, binder, on_datasets) for c in comparisons]
    if on_datasets and not any(c.entity is Entity.METRIC for c in comparisons):
        where.append(_metric_probe(binder, on_datasets))
    return where


def _order_sql(order_by: list[Any], binder: Binder) -> tuple[list[str], list[str]]:
    """(lateral joins, ORDER BY terms): each item sorts NULLs last, then the model's creation
    time (newest first) and id break ties unless the request ordered by them already."""
    joins: list[str] = []
    terms: list[str] = []
    named: set[str] = set()
    for i, item in enumerate(order_by):
        obj = expect_object(item, f"order_by[{i}]")
        field = get_string(obj, "field_name", default="")
        ascending = get_bool(obj, "ascending", default=True)
        if "." in field:
            joins.append(_latest_metric_join(i, field, obj, binder))
            column, collate = f"o{i}.value", ""
        else:
            name = ALIASES.get(field, field)
            if name not in _COLUMNS:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE",
                    f"Invalid order by field name: {field}",
                    error_class="ATTRIBUTE_NOT_FOUND",
                )
            named.add(name)
            # MLflow's SQLite compares text bytewise
            column, collate = _COLUMNS[name], ' COLLATE "C"' if name in _TEXT_ORDER else ""
        terms += [f"{column} IS NULL", f"{column}{collate}{'' if ascending else ' DESC'}"]
    if "creation_timestamp_ms" not in named:
        terms.append("m.creation_timestamp DESC")
    if "model_id" not in named:
        terms.append('m.model_id COLLATE "C"')
    return joins, terms


def _latest_metric_join(i: int, field: str, obj: Mapping[str, Any], binder: Binder) -> str:
    """The model's latest value of a metric (newest timestamp, then step, then first run id),
    on the item's dataset name/digest when given."""
    entity, key = field.split(".", 1)
    if entity != "metrics":
        raise invalid_parameter(
            f"Invalid order by field name: {field}. Only metrics are supported."
        )
    where = f"x.model_id = m.model_id AND x.key = {binder.bind(key, 'text')}"
    for column in ("dataset_name", "dataset_digest"):
        value = get_string(obj, column, default="")
        if value:
            where += f" AND x.{column} = {binder.bind(value, 'text')}"
    return (
        f" LEFT JOIN LATERAL (SELECT x.value FROM logged_model_metrics x WHERE {where}"
        f' ORDER BY x.timestamp DESC, x.step DESC, x.run_uuid COLLATE "C" LIMIT 1) o{i} ON true'
    )


def compile_search(
    exp_ids: list[int],
    filter_string: str,
    found: list[DatasetFilter],
    order_by: list[Any],
    page: tuple[int, int],
    viewer: Viewer | None = None,
) -> Query:
    """The model ids of one page (``page``: limit, offset), one more than ``limit`` to tell
    whether a next page exists; only models of experiments ``viewer`` may read."""
    limit, offset = page
    binder = Binder()
    where = [
        "m.lifecycle_stage <> 'deleted'",
        f"m.experiment_id = ANY({binder.bind(exp_ids, 'bigint[]')})",
        *_filter_sql(filter_string, found, binder),
        readable_experiment(viewer, "m.experiment_id", binder),
    ]
    joins, terms = _order_sql(order_by, binder)
    sql = (
        f"SELECT m.model_id FROM logged_models m{''.join(joins)} WHERE {' AND '.join(where)}"
        f" ORDER BY {', '.join(terms)}"
        f" LIMIT {binder.bind(limit + 1, 'bigint')} OFFSET {binder.bind(offset, 'bigint')}"
    )
    return Query(sql, tuple(binder.values))
