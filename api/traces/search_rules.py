"""MLflow's trace search language compiled to SQL over ``trace_info t`` (pure).

Filters are comparisons joined by AND (MLflow has no OR here either). Supported:

- attributes (bare, ``attribute.``, ``attributes.``, ``trace.``): ``timestamp[_ms]``,
  ``execution_time[_ms]``, ``end_time[_ms]`` (numbers: = != < <= > >=); ``status`` / ``state``,
  ``request_id``, ``client_request_id``, ``name`` (the trace name tag), ``run_id``
  (``mlflow.sourceRun`` metadata or a link-to-run) with = != IN NOT IN LIKE ILIKE RLIKE;
- ``tags.<key>`` / ``tag.<key>``, ``metadata.<key>`` / ``request_metadata.<key>``:
  = != LIKE ILIKE RLIKE, IS NULL, IS NOT NULL;
- ``span.name``, ``span.type``, ``span.status``: some span of the trace matches;
- ``feedback.<name>``, ``expectation.<name>``: an assessment of that name whose value, as JSON
  text, compares (``feedback.correct = 'true'``).

Order keys: ``timestamp[_ms]``, ``execution_time[_ms]``, ``end_time[_ms]``, ``status``,
``request_id``, ``name``, ``experiment_id``, each ASC or DESC; default request time descending;
the trace id ascending breaks ties, so pages are stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from api.search.filter import parse_list, split_identifier
from api.search.lexer import Kind, Token, tokenize
from schemas.mlflow_errors import MlflowError, invalid_parameter

_NUMERIC: Final = {
    "timestamp": "t.request_time_ms",
    "timestamp_ms": "t.request_time_ms",
    "execution_time": "t.execution_ms",
    "execution_time_ms": "t.execution_ms",
    "end_time": "(t.request_time_ms + t.execution_ms)",
    "end_time_ms": "(t.request_time_ms + t.execution_ms)",
}
_STRINGS: Final = {
    "status": "t.state",
    "state": "t.state",
    "request_id": "t.trace_id",
    "client_request_id": "t.client_request_id",
    "name": "(t.tags->>'mlflow.traceName')",
    "run_id": "RUN",  # two places: metadata and links
}
_ORDER: Final = {
    **_NUMERIC,
    "status": "t.state",
    "request_id": "t.trace_id",
    "name": "(t.tags->>'mlflow.traceName')",
    "experiment_id": "t.experiment_id",
}
_ATTRIBUTE_PREFIXES: Final = frozenset({None, "attribute", "attributes", "trace"})
_TAG_PREFIXES: Final = frozenset({"tag", "tags"})
_METADATA_PREFIXES: Final = frozenset({"metadata", "request_metadata"})
_SPAN_COLUMNS: Final = {"name": "s.name", "type": "s.span_type", "status": "s.status"}
_COMPARE: Final = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<="}
_COMPARE_MORE: Final = {">": ">", ">=": ">="}
_TEXT_OPS: Final = {"LIKE": "LIKE", "ILIKE": "ILIKE", "RLIKE": "~", "NOT LIKE": "NOT LIKE"}


@dataclass(slots=True)
class Sql:
    """WHERE fragments and their parameters ($1, $2, ... in order)."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def _bad(message: str) -> MlflowError:
    return invalid_parameter(message)


def compile_filter(filter_string: str | None, sql: Sql) -> None:
    """Add the filter's conditions to ``sql``; MLflow's 400 for what it cannot parse."""
    if not filter_string or not filter_string.strip():
        return
    tokens = tokenize(filter_string)
    pos = 0
    while True:
        pos = _comparison(tokens, pos, sql, filter_string)
        if pos == len(tokens):
            return
        if not tokens[pos].is_keyword("AND"):
            raise _bad(f"Invalid filter '{filter_string}'. Only AND is supported between clauses.")
        pos += 1


def _comparison(tokens: list[Token], pos: int, sql: Sql, text: str) -> int:
    if pos + 2 > len(tokens) or tokens[pos].kind is not Kind.IDENT:
        raise _bad(f"Invalid filter '{text}'. Could not be parsed.")
    prefix, key = split_identifier(tokens[pos].text)
    op, pos = _operator(tokens, pos + 1, text)
    if op in ("IS NULL", "IS NOT NULL"):
        sql.where.append(_null_check(prefix, key, op, sql))
        return pos
    if pos >= len(tokens):
        raise _bad(f"Invalid filter '{text}'. Could not be parsed.")
    sql.where.append(_condition(prefix, key, op, tokens[pos], sql))
    return pos + 1


def _operator(tokens: list[Token], pos: int, text: str) -> tuple[str, int]:
    token = tokens[pos] if pos < len(tokens) else None
    if token is None:
        raise _bad(f"Invalid filter '{text}'. Could not be parsed.")
    if token.is_keyword("IS"):
        nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
        if nxt is not None and nxt.is_keyword("NULL"):
            return "IS NULL", pos + 2
        if nxt is not None and nxt.is_keyword("NOT NULL"):
            return "IS NOT NULL", pos + 2
        raise _bad(f"Invalid filter '{text}'. Could not be parsed.")
    if token.is_keyword("IN"):
        return "IN", pos + 1
    if token.is_keyword("NOT") and pos + 1 < len(tokens) and tokens[pos + 1].is_keyword("IN"):
        return "NOT IN", pos + 2
    if token.kind is Kind.OP:
        return " ".join(token.word.split()), pos + 1
    raise _bad(f"Invalid comparator '{token.text}' in filter '{text}'.")


def _null_check(prefix: str | None, key: str, op: str, sql: Sql) -> str:
    column = _map_column(prefix, key, sql)
    if column is None:
        raise _bad(f"Invalid comparator '{op}' for key '{key}'. Use it with tags or metadata.")
    return f"{column} {op}"


def _map_column(prefix: str | None, key: str, sql: Sql) -> str | None:
    if prefix in _TAG_PREFIXES:
        return f"(t.tags->>{sql.param(key)})"
    if prefix in _METADATA_PREFIXES:
        return f"(t.metadata->>{sql.param(key)})"
    return None


def _condition(prefix: str | None, key: str, op: str, value: Token, sql: Sql) -> str:
    column = _map_column(prefix, key, sql)
    if column is not None:
        return _compare(column, op, value, sql, lists=False)
    if prefix == "span":
        if key not in _SPAN_COLUMNS:
            raise _bad(f"Invalid span attribute '{key}'. Supported: name, type, status.")
        inner = _compare(_SPAN_COLUMNS[key], op, value, sql, lists=True)
        return f"EXISTS (SELECT 1 FROM trace_spans s WHERE s.trace_id = t.trace_id AND {inner})"
    if prefix in ("feedback", "expectation"):
        kind = sql.param(prefix)
        name = sql.param(key)
        inner = _compare(f"(a.doc->{kind}->'value')::text", op, _as_json(value), sql, lists=False)
        return (
            "EXISTS (SELECT 1 FROM trace_assessments a WHERE a.trace_id = t.trace_id"
            f" AND a.doc->>'assessment_name' = {name} AND a.doc ? {kind} AND {inner})"
        )
    if prefix not in _ATTRIBUTE_PREFIXES:
        raise _bad(
            f"Invalid entity type '{prefix}'. Valid entity types are attributes, tags, "
            "metadata, span, feedback and expectation."
        )
    return _attribute(key, op, value, sql)


def _as_json(token: Token) -> Token:
    """Assessment values are JSON: 'x' compares with "x", true and 1.5 with themselves."""
    if token.kind is Kind.STRING:
        text = _string(token)
        if text in ("true", "false") or _is_number(text):
            return Token(Kind.STRING, "'" + text + "'")
        return Token(Kind.STRING, "'" + '"' + text.replace("'", "''") + '"' + "'")
    return Token(Kind.STRING, "'" + token.text + "'")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _attribute(key: str, op: str, value: Token, sql: Sql) -> str:
    if key in _NUMERIC:
        if value.kind not in (Kind.INT, Kind.FLOAT) or op not in {**_COMPARE, **_COMPARE_MORE}:
            raise _bad(f"Invalid numeric comparison for attribute '{key}': {op} {value.text}")
        return f"{_NUMERIC[key]} {_sql_op(op)} {sql.param(int(float(value.text)))}"
    if key not in _STRINGS:
        valid = ", ".join(sorted({*_NUMERIC, *_STRINGS}))
        raise _bad(f"Invalid attribute key '{key}' specified. Valid keys are '{{{valid}}}'")
    if key == "run_id":
        metadata = _compare("(t.metadata->>'mlflow.sourceRun')", op, value, sql, lists=True)
        link = _compare("l.run_id", op, value, sql, lists=True)
        exists = (
            f"EXISTS (SELECT 1 FROM trace_run_links l WHERE l.trace_id = t.trace_id AND {link})"
        )
        return f"({metadata} OR {exists})"
    return _compare(_STRINGS[key], op, value, sql, lists=True)


def _compare(column: str, op: str, value: Token, sql: Sql, *, lists: bool) -> str:
    if op in ("IN", "NOT IN"):
        if not lists or value.kind is not Kind.PAREN:
            raise _bad(f"Invalid comparator '{op}' for this key.")
        items = list(parse_list(value))
        negate = "NOT " if op == "NOT IN" else ""
        return f"{negate}({column} = ANY({sql.param(items)}::text[]))"
    if value.kind is not Kind.STRING:
        raise _bad(f"Expected a quoted string value, got {value.text}")
    return f"{column} {_sql_op(op)} {sql.param(_string(value))}"


def _sql_op(op: str) -> str:
    mapped = _COMPARE.get(op) or _COMPARE_MORE.get(op) or _TEXT_OPS.get(op)
    if mapped is None:
        raise _bad(f"Invalid comparator '{op}'.")
    return mapped


def _string(token: Token) -> str:
    inner = token.text[1:-1]
    return inner.replace("''", "'").replace("\\'", "'")


# -- order ------------------------------------------------------------------------------------


def compile_order(order_by: Sequence[str]) -> str:
    """ORDER BY text (keys from a fixed table, never user text), the trace id last."""
    terms: list[str] = []
    for item in order_by:
        words = item.strip().split()
        if not words or len(words) > 2:
            raise _bad(f"Invalid order_by clause '{item}'. Could not be parsed.")
        prefix, key = split_identifier(words[0])
        if prefix not in _ATTRIBUTE_PREFIXES or key not in _ORDER:
            valid = ", ".join(sorted(_ORDER))
            raise _bad(f"Invalid order by key '{words[0]}' specified. Valid keys are '{{{valid}}}'")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise _bad(f"Invalid ordering key in order_by clause '{item}'.")
        terms.append(f"{_ORDER[key]} {direction} NULLS LAST")
    if not terms:
        terms.append("t.request_time_ms DESC")
    return ", ".join([*terms, "t.trace_id ASC"])
