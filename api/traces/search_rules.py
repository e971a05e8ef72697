"""MLflow's trace search language compiled to SQL over ``trace_info t`` (pure).

Filters are comparisons joined by AND (MLflow has no OR here either). Supported:

- attributes (bare, ``attribute.``, ``attributes.``, ``trace.``): ``timestamp[_ms]``,
  ``execution_time[_ms]``, ``end_time[_ms]`` (numbers: = != < <= > >=); ``status`` / ``state``,
  ``request_id``, ``client_request_id``, ``name`` (the trace name tag), ``run_id``
  (``mlflow.sourceRun`` metadata or a link-to-run) with = != IN NOT IN LIKE ILIKE RLIKE;
- ``tags.<key>`` / ``tag.<key>``, ``metadata.<key>`` / ``request_metadata.<key>``:
  = != LIKE ILIKE RLIKE, IS NULL, IS NOT NULL;
- ``span.name``, ``span.type``, ``span.status`` (= != IN NOT IN LIKE ILIKE RLIKE),
  ``span.content`` / ``trace.text`` (LIKE ILIKE: the span as MLflow stores it, JSON text) and
  ``span.attributes.<key>`` (MLflow's pattern over that JSON text): one span of the trace meets
  every span condition of the filter. Name, type and status are SQL; content and attributes
  are tested on each candidate span in Python (``SpanTest``), since spans are stored as OTLP
  messages;
- ``prompt = 'name/version'``: a prompt version linked to the trace (traces/link-prompts);
- ``feedback.<name>``, ``expectation.<name>``: an assessment of that name whose value, as JSON
  text, compares (``feedback.correct = 'true'``).

Order keys: ``timestamp[_ms]``, ``execution_time[_ms]``, ``end_time[_ms]``, ``status``,
``request_id``, ``name``, ``experiment_id``, each ASC or DESC; default request time descending;
the trace id ascending breaks ties, so pages are stable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from api.search.filter import parse_list, split_identifier
from api.search.lexer import Kind, Token, tokenize, trim_backticks
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
_SPAN_FIELDS: Final = {"name": "name", "type": "span_type", "status": "status"}
_COMPARE: Final = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<="}
_COMPARE_MORE: Final = {">": ">", ">=": ">="}
_TEXT_OPS: Final = {"LIKE": "LIKE", "ILIKE": "ILIKE", "RLIKE": "~", "NOT LIKE": "NOT LIKE"}


@dataclass(frozen=True, slots=True)
class SpanTest:
    """One span condition: ``field`` is name | span_type | status | content, ``op`` MLflow's
    comparator, ``value`` a string or (IN) a tuple of strings."""

    field: str
    op: str
    value: Any


@dataclass(slots=True)
class Sql:
    """WHERE fragments and their parameters ($1, $2, ... in order), and the span conditions
    (one span must meet them all; ``finish`` turns them into SQL where it can)."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    spans: list[SpanTest] = field(default_factory=list)

    @property
    def scans_spans(self) -> bool:
        """Some span condition needs each candidate span's content (tested in Python)."""
        return any(t.field == "content" for t in self.spans)

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
            _span_exists(sql)
            return
        if not tokens[pos].is_keyword("AND"):
            raise _bad(f"Invalid filter '{filter_string}'. Only AND is supported between clauses.")
        pos += 1


def _comparison(tokens: list[Token], pos: int, sql: Sql, text: str) -> int:
    if pos + 2 > len(tokens) or tokens[pos].kind is not Kind.IDENT:
        raise _bad(f"Invalid filter '{text}'. Could not be parsed.")
    ident = tokens[pos].text
    if tokens[pos + 1].text == ".":  # "span.attributes." : sqlparse keeps the dot on the name
        ident, pos = ident + ".", pos + 1
    prefix, key = split_identifier(ident)
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
        sql.spans.append(_span_test(key, op, value))
        return "true"
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


_SPAN_OPS: Final = ("!=", "=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE")
_CONTENT_OPS: Final = ("ILIKE", "LIKE")


def _ops(ops: Sequence[str]) -> str:
    """A comparator set as MLflow prints it (a Python set: its order is the hash order)."""
    return "{" + ", ".join(f"'{op}'" for op in ops) + "}"


def _span_test(key: str, op: str, value: Token) -> SpanTest:
    """MLflow's span keys: name/type/status, content, attributes.<name>."""
    if key.startswith("attributes."):
        name = trim_backticks(key.removeprefix("attributes."))
        if not name:
            raise _bad("Span attribute name cannot be empty after 'attributes.'")
        if op not in _SPAN_OPS:
            raise _bad(f"span.{key} comparator '{op}' not one of '{_ops(_SPAN_OPS)}'")
        return SpanTest("content", op, _attribute_pattern(name, op, value, key))
    if key in _SPAN_COLUMNS:
        if op not in _SPAN_OPS:
            raise _bad(f"span.{key} comparator '{op}' not one of '{_ops(_SPAN_OPS)}'")
        return SpanTest(_SPAN_FIELDS[key], op, _span_value(op, value))
    if key == "content":
        if op not in _CONTENT_OPS:
            raise _bad(f"span.{key} comparator '{op}' not one of '{_ops(_CONTENT_OPS)}'")
        return SpanTest("content", op, _span_value(op, value))
    raise _bad(
        f"Invalid span attribute '{key}'. "
        "Supported attributes: name, status, type, attributes.<attribute_name>."
    )


def _span_value(op: str, value: Token) -> Any:
    if op in ("IN", "NOT IN"):
        if value.kind is not Kind.PAREN:
            raise _bad(f"Invalid comparator '{op}' for this key.")
        return tuple(parse_list(value))
    if value.kind is not Kind.STRING:
        raise _bad(f"Expected a quoted string value, got {value.text}")
    return _string(value)


def _attribute_pattern(name: str, op: str, value: Token, key: str) -> str:
    """What MLflow compares the span JSON with for ``span.attributes.<name>``: a LIKE pattern
    around ``"<name>"`` (so ``=`` and ``!=`` compare the JSON with that pattern literally), or
    for RLIKE a regex anchored inside the attribute's JSON-encoded value."""
    if op in ("IN", "NOT IN"):
        shown = repr(tuple(parse_list(value))) if value.kind is Kind.PAREN else value.text
        raise MlflowError(
            "BAD_REQUEST",
            "IN expression list, SELECT construct, or bound parameter object expected, "
            f"got '%\"{name}\"{shown}%'.",
        )
    text = _span_value(op, value)
    if op != "RLIKE":
        return f'%"{name}"{text}%'
    prefix, suffix = '"\\\\".*', ""
    if text.startswith("^"):
        text, prefix = text[1:], '"\\\\"'
    if text.endswith("$"):
        text, suffix = text[:-1], '\\\\"'
    return f'"{name}": {prefix}{text}{suffix}'


def _span_exists(sql: Sql) -> None:
    """The span conditions SQL can test (name, type, status) as one EXISTS: the same span must
    meet them all, as in MLflow. With content conditions this is a prefilter; the candidate
    spans are then tested whole in Python (``span_matches``)."""
    columns = [t for t in sql.spans if t.field != "content"]
    if not columns:
        return
    inner = " AND ".join(_span_sql(t, sql) for t in columns)
    sql.where.append(
        f"EXISTS (SELECT 1 FROM trace_spans s WHERE s.trace_id = t.trace_id AND {inner})"
    )


def _span_sql(test: SpanTest, sql: Sql) -> str:
    column = f"s.{test.field}"
    if test.op in ("IN", "NOT IN"):
        negate = "NOT " if test.op == "NOT IN" else ""
        return f"{negate}({column} = ANY({sql.param(list(test.value))}::text[]))"
    return f"{column} {_sql_op(test.op)} {sql.param(test.value)}"


def span_matches(tests: Sequence[SpanTest], span: Mapping[str, Any], content: str | None) -> bool:
    """Whether one span meets every test; ``content`` is its JSON text (None: not needed)."""
    for test in tests:
        subject = content if test.field == "content" else span[test.field]
        if subject is None or not _python_compare(test.op, str(subject), test.value):
            return False
    return True


def _python_compare(op: str, subject: str, value: Any) -> bool:
    if op in ("=", "=="):
        return bool(subject == value)
    if op in ("!=", "<>"):
        return bool(subject != value)
    if op == "IN":
        return subject in value
    if op == "NOT IN":
        return subject not in value
    if op == "RLIKE":
        try:
            return re.search(value, subject) is not None
        except re.error:
            raise _bad(f"Invalid regular expression '{value}'") from None
    flags = re.IGNORECASE | re.DOTALL if op == "ILIKE" else re.DOTALL
    return re.fullmatch(_like_regex(value), subject, flags) is not None


def _like_regex(pattern: str) -> str:
    """A SQL LIKE pattern (``%``, ``_``, backslash escapes, as PostgreSQL) as a regex."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _prompt(op: str, value: Token, sql: Sql) -> str:
    """``prompt = 'name/version'``: a link made by traces/link-prompts."""
    if op != "=":
        raise _bad(
            f"Invalid comparator '{op}' for prompts filter. "
            "Only '=' is supported with format: prompt = \"name/version\""
        )
    text = _span_value(op, value)
    if text.count("/") != 1:
        raise _bad(
            f"Invalid prompts filter value '{text}'. Expected format: prompt = \"name/version\""
        )
    return (
        "EXISTS (SELECT 1 FROM trace_prompt_links p WHERE p.trace_id = t.trace_id"
        f" AND p.prompt = {sql.param(text)})"
    )


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
    if key == "text":  # MLflow maps it to the span content
        sql.spans.append(_span_test("content", op, value))
        return "true"
    if key == "prompt":
        return _prompt(op, value, sql)
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
