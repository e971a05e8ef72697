"""Logged-model request fields (pure): name, status, tag and param pairs, and the search
request compiled to SQL (the attribute subset of MLflow's logged-model filter, ordered and
paged), with every value bound as a parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from api.search.sql import Binder, Query
from schemas.fields import expect_object, get_bool, get_list, get_string
from schemas.mlflow_errors import invalid_parameter
from schemas.mlflow_names import validate_key

STATUSES: Final = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0,
    "LOGGED_MODEL_PENDING": 1,
    "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3,
}
_BAD_NAME: Final = re.compile(r"[/:.%\"']")
_SEARCH_COLUMNS: Final = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "last_updated_time": "last_updated_timestamp",
}
_CLAUSE: Final = re.compile(
    r"""^\s*(?:attributes?\.)?`?(\w+)`?\s*(=|!=|<=|>=|<|>|LIKE|ILIKE)\s*"""
    r"""('(?:[^']*)'|"(?:[^"]*)"|-?\d+)\s*$""",
    re.IGNORECASE,
)
# ``model_id IN ('m-1', 'm-2')``: the run page asks for its logged models this way.
_IN_CLAUSE: Final = re.compile(
    r"""^\s*(?:attributes?\.)?`?(\w+)`?\s+(NOT\s+IN|IN)\s*\(\s*"""
    r"""((?:'[^']*'|"[^"]*")(?:\s*,\s*(?:'[^']*'|"[^"]*"))*)\s*\)\s*$""",
    re.IGNORECASE,
)


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


def _filter_sql(filter_string: str, binder: Binder) -> list[str]:
    """The attribute subset of MLflow's logged-model filter (``name = 'model'`` is what
    ``register_model`` and ``list_artifacts`` send); anything else is a 400."""
    where: list[str] = []
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        if not part.strip():
            continue
        listed = _IN_CLAUSE.match(part)
        if listed is not None and listed.group(1) in _SEARCH_COLUMNS:
            values = [v[1:-1] for v in re.findall(r"'[^']*'|\"[^\"]*\"", listed.group(3))]
            op = "<> ALL" if listed.group(2).upper().startswith("NOT") else "= ANY"
            column = _SEARCH_COLUMNS[listed.group(1)]
            where.append(f"{column}::text {op}({binder.bind(values, 'text[]')})")
            continue
        match = _CLAUSE.match(part)
        if match is None or match.group(1) not in _SEARCH_COLUMNS:
            raise invalid_parameter(f"Invalid or unsupported filter clause: {part!r}")
        column, op, value = _SEARCH_COLUMNS[match.group(1)], match.group(2).upper(), match.group(3)
        if value[0] in "'\"":
            where.append(f"{column}::text {op} {binder.bind(value[1:-1], 'text')}")
        else:
            where.append(f"{column} {op} {binder.bind(int(value), 'bigint')}")
    return where


def _order_sql(order_by: list[Any]) -> str:
    items = []
    for i, item in enumerate(order_by):
        obj = expect_object(item, f"order_by[{i}]")
        field = get_string(obj, "field_name", required=True)
        if field not in _SEARCH_COLUMNS:
            raise invalid_parameter(f"Invalid order by field name: {field}")
        ascending = get_bool(obj, "ascending", default=True)
        items.append(f"{_SEARCH_COLUMNS[field]}{'' if ascending else ' DESC'}")
    return ", ".join([*items, "creation_timestamp DESC", "model_id"])


def compile_search(
    exp_ids: list[int], filter_string: str, order_by: list[Any], limit: int, offset: int
) -> Query:
    """The model ids of one page, one more than ``limit`` to tell whether a next page exists."""
    binder = Binder()
    where = [
        "lifecycle_stage = 'active'",
        f"experiment_id = ANY({binder.bind(exp_ids, 'bigint[]')})",
        *_filter_sql(filter_string, binder),
    ]
    sql = (
        f"SELECT model_id FROM logged_models WHERE {' AND '.join(where)}"
        f" ORDER BY {_order_sql(order_by)}"
        f" LIMIT {binder.bind(limit + 1, 'bigint')} OFFSET {binder.bind(offset, 'bigint')}"
    )
    return Query(sql, tuple(binder.values))
