"""The ``filters`` of MLflow's trace metrics query (pure): each string one
``<view>.<entity>[.<key>] = '<value>'`` comparison, checked with MLflow 3.17.2's messages and
compiled to a SQL predicate over the view's rows (``t`` traces, ``s`` spans, ``a`` assessments;
``api/traces/metric_rules.py`` builds the statement around them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from api.search.lexer import Kind, Token, strip_quotes, tokenize, trim_backticks
from schemas.mlflow_errors import invalid_parameter


@dataclass(slots=True)
class Sql:
    """The parameters of the statement being built (``$n`` in order of use)."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


# view type -> entity -> whether a key follows it (trace.tag.<key>, trace.status)
_FILTER_ENTITIES: Final = {
    "trace": {"status": False, "tag": True, "metadata": True},
    "span": {"name": False, "status": False, "type": False},
    "assessment": {"name": False, "type": False},
}
_FILTER_VIEWS: Final = {"span": "SPANS", "assessment": "ASSESSMENTS"}


_COMPARED: Final = (Kind.STRING, Kind.IDENT, Kind.INT, Kind.FLOAT)


def filter_predicate(text: str, view: str, sql: Sql) -> str:
    """One filter string: exactly one ``<view>.<entity>[.<key>] = '<value>'`` comparison."""
    comparisons, invalid = _comparisons(tokenize(text))
    if invalid:
        raise invalid_parameter(f"Invalid clause(s) in filter string: {', '.join(invalid)}")
    if len(comparisons) != 1:
        raise invalid_parameter(f"Invalid filter: '{text}'. Expected one filter clause.")
    ident, op, operand = comparisons[0]
    view_type, entity, key = _identifier(ident.text)
    comparator = " ".join(op.text.split())
    if comparator != "=":
        raise invalid_parameter(
            f"Invalid comparator: '{comparator}', only '=' operator is supported"
        )
    value = _value(entity, operand)
    wanted = _FILTER_VIEWS.get(view_type)
    if wanted is not None and view != wanted:
        raise invalid_parameter(
            f"Filtering by {view_type} is only supported for {wanted} view type, got {view}"
        )
    return _predicate(view_type, entity, key, sql.param(value), sql)


def _comparisons(
    tokens: Sequence[Token],
) -> tuple[list[tuple[Token, Token, Token]], list[str]]:
    """sqlparse's grouping as MLflow sees it: ``a = b`` triples are comparisons, anything else
    is an invalid clause, quoted as written."""
    found: list[tuple[Token, Token, Token]] = []
    invalid: list[str] = []
    pos = 0
    while pos < len(tokens):
        window = tokens[pos : pos + 3]
        if (
            len(window) == 3
            and window[0].kind is Kind.IDENT
            and window[1].kind is Kind.OP
            and window[2].kind in _COMPARED
        ):
            found.append((window[0], window[1], window[2]))
            pos += 3
        else:
            invalid.append(tokens[pos].text)
            pos += 1
    return found, invalid


def _identifier(text: str) -> tuple[str, str, str | None]:
    message = (
        f"Invalid identifier {text!r}. Columns should be specified as "
        "'trace.<key>', 'span.<key>', 'assessment.<key>'."
    )
    parts = text.split(".", 2)
    if len(parts) < 2:
        raise invalid_parameter(message)
    view_type = trim_backticks(parts[0])
    entity = parts[1]
    key = parts[2] if len(parts) == 3 else None
    entities = _FILTER_ENTITIES.get(view_type)
    if entities is None:
        raise invalid_parameter(
            f"Invalid view type '{view_type}'. "
            "Valid values are dict_keys(['trace', 'span', 'assessment'])"
        )
    if entity not in entities:
        raise invalid_parameter(
            f"Invalid entity '{entity}' specified for view type '{view_type}'. "
            f"Valid entities are {list(entities)}"
        )
    if entities[entity] and key is None:
        raise invalid_parameter(
            f"Filtering by {entity} requires a key, e.g. '{view_type}.{entity}.<key> = <value>'"
        )
    if not entities[entity] and key is not None:
        raise invalid_parameter(
            f"Filtering by {entity} does not require a key, use '{view_type}.{entity}' instead"
        )
    if key is not None:
        unquoted = strip_quotes(key)
        key = trim_backticks(key if unquoted is None else unquoted)
    return view_type, entity, key


def _value(entity: str, token: Token) -> str:
    unquoted = strip_quotes(token.text) if token.kind in (Kind.STRING, Kind.IDENT) else None
    if unquoted is None:
        raise invalid_parameter(
            f"Expected a quoted string value for {entity} value (e.g. 'my-value'). "
            f"Got value {token.text}"
        )
    return unquoted


def _predicate(view_type: str, entity: str, key: str | None, value: str, sql: Sql) -> str:
    if view_type == "span":
        column = {"name": "s.name", "status": "s.status", "type": "s.span_type"}[entity]
        return f"{column} = {value}"
    if view_type == "assessment":
        return f"a.{'name' if entity == 'name' else 'kind'} = {value}"
    if entity == "status":
        return f"t.state = {value}"
    column = "t.tags" if entity == "tag" else "t.metadata"
    condition = f"({column}->>{sql.param(key)}) = {value}"
    if entity == "metadata" and key == "mlflow.sourceRun":
        # A trace linked to a run after the fact (link-to-run) counts as that run's.
        return (
            f"({condition} OR EXISTS (SELECT 1 FROM trace_run_links l"
            f" WHERE l.trace_id = t.trace_id AND l.run_id = {value}))"
        )
    return condition
