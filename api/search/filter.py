"""The grammar of MLflow's search filters, shared by runs and experiments (pure).

A filter is ``clause (AND clause)*``; a clause is ``identifier comparator value``,
``identifier [NOT] IN (list)`` or ``identifier IS [NOT] NULL``. ``parse_filter`` turns a string
into ``Clause`` tuples with canonical attribute keys (``created`` -> ``start_time``) and typed
values (metrics float, numeric attributes int or float, lists tuples of str). What differs per
entity (prefixes, attribute names, comparator rules) is a ``Dialect``: see ``api.search.rules``.

Structure, order of checks and messages follow MLflow 3.17 (``SearchUtils``), including its
leniencies: ``AND`` may be doubled, leading, trailing or even left out between two clauses,
because MLflow only rejects tokens that are neither ``AND`` nor part of a comparison.
"""

from __future__ import annotations

import ast
import enum
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from api.search.lexer import Kind, Token, strip_quotes, tokenize, trim_backticks
from schemas.mlflow_errors import MlflowError, invalid_parameter


class Entity(enum.Enum):
    METRIC = "metric"
    PARAM = "parameter"
    TAG = "tag"
    ATTRIBUTE = "attribute"
    DATASET = "dataset"


Value = str | int | float | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Clause:
    entity: Entity
    key: str  # canonical attribute name for attributes; the metric/param/tag/dataset key otherwise
    comparator: str  # upper case: = != < <= > >= LIKE ILIKE IN NOT IN IS NULL IS NOT NULL
    value: Value  # None only for IS [NOT] NULL


@dataclass(frozen=True, slots=True)
class _Raw:
    """A comparison as grouped from tokens, before any type rule ran."""

    left: Token
    comparator: str
    right: Token | None  # None for IS [NOT] NULL


Identify = Callable[[str, frozenset[str]], tuple[Entity, str]]

_DQ_STRING: Final = re.compile(r"\"(?:\"\"|\\\"|[^\"])*\"")


def set_repr(names: frozenset[str]) -> str:
    """A Python set literal, sorted so that messages are stable (MLflow's vary by process)."""
    return "{" + ", ".join(repr(name) for name in sorted(names)) + "}"


def split_identifier(text: str) -> tuple[str | None, str]:
    """(entity prefix or None, key) as MLflow splits them: at the first dot only, so
    ``tags.mlflow.runName`` is tag ``mlflow.runName``; the key loses one level of quotes
    and then of backticks."""
    entity, dot, key = text.partition(".")
    key = key if dot else text
    unquoted = strip_quotes(key)
    return (entity if dot else None), trim_backticks(key if unquoted is None else unquoted)


# ---------------------------------------------------------------- filter structure


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the run and the experiment filter languages."""

    identify: Identify
    attributes: frozenset[str]
    aliases: Mapping[str, str]  # attribute spellings MLflow translates (created -> start_time)
    numeric: frozenset[str]
    list_keys: frozenset[str]  # the only attributes that take ( ... ) lists
    quote_invalid: bool  # runs quote each invalid token in the message; experiments do not
    null_error: Callable[[Entity, str], MlflowError | None]
    # The registry grammars word attribute values their own way; None: the tracking wording.
    # The set holds the attributes that take numbers there (model versions); the registered
    # model grammar takes none.
    registry_numeric: frozenset[str] | None = None


def parse_filter(filter_string: str | None, dialect: Dialect) -> tuple[Clause, ...]:
    """Clauses of ``filter_string`` with structure and value types checked (not comparators:
    MLflow checks those later, in its store). Empty or None means no filter."""
    if not filter_string:
        return ()
    if not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    tokens = tokenize(filter_string)
    _reject_statements(tokens, filter_string)
    return tuple(_clause(raw, dialect) for raw in _group(tokens, dialect))


def _reject_statements(tokens: list[Token], filter_string: str) -> None:
    semis = [i for i, token in enumerate(tokens) if token.kind is Kind.SEMI]
    if semis and semis[0] < len(tokens) - 1:
        raise invalid_parameter(
            f"Search filter contained multiple expression {filter_string!r}. "
            "Provide AND-ed expression list."
        )


def _group(tokens: list[Token], dialect: Dialect) -> list[_Raw]:
    raws: list[_Raw] = []
    invalid: list[Token] = []
    pos = 0
    while pos < len(tokens):
        if tokens[pos].is_keyword("AND"):
            pos += 1
            continue
        matched = _match(tokens, pos)
        if matched is None:
            invalid.append(tokens[pos])
            pos += 1
            continue
        raws.append(matched[0])
        pos = matched[1]
    if invalid:
        shown = (f"'{t.text}'" if dialect.quote_invalid else t.text for t in invalid)
        raise invalid_parameter(f"Invalid clause(s) in filter string: {', '.join(shown)}")
    return raws


_OPERANDS: Final = frozenset({Kind.IDENT, Kind.STRING, Kind.INT, Kind.FLOAT, Kind.PAREN})


def _match(tokens: list[Token], pos: int) -> tuple[_Raw, int] | None:
    """The comparison starting at ``pos`` and the position after it, if one starts there."""
    first, rest = tokens[pos], tokens[pos + 1 : pos + 4]
    if first.kind is Kind.IDENT:
        special = _match_keywords(first, rest)
        if special is not None:
            return special[0], pos + 1 + special[1]
    if len(rest) >= 2 and first.kind in _OPERANDS and rest[0].kind is Kind.OP:
        right = rest[1]
        if right.kind in _OPERANDS or right.is_keyword("NULL"):
            return _Raw(first, rest[0].text.upper(), right), pos + 3
    return None


def _match_keywords(first: Token, rest: list[Token]) -> tuple[_Raw, int] | None:
    """``IN (..)``, ``NOT IN (..)``, ``IS NULL`` and ``IS NOT NULL`` (the latter with exactly one
    space, because MLflow compares the ``NOT NULL`` token text)."""
    words = [token.word if token.kind is Kind.KEYWORD else "" for token in rest]
    if words[:1] == ["IN"] and len(rest) > 1 and rest[1].kind is Kind.PAREN:
        return _Raw(first, "IN", rest[1]), 2
    if words[:2] == ["IS", "NULL"]:
        return _Raw(first, "IS NULL", None), 2
    if words[:2] == ["IS", "NOT NULL"]:
        return _Raw(first, "IS NOT NULL", None), 2
    if words[:2] == ["NOT", "IN"] and len(rest) > 2 and rest[2].kind is Kind.PAREN:
        return _Raw(first, "NOT IN", rest[2]), 3
    return None


def _clause(raw: _Raw, dialect: Dialect) -> Clause:
    if raw.left.kind is not Kind.IDENT:
        raise invalid_parameter(
            f"Invalid comparison clause. Expected 'Identifier' found '{raw.left.text}'"
        )
    entity, key = dialect.identify(raw.left.text, dialect.attributes)
    if raw.right is None:
        error = dialect.null_error(entity, key)
        if error is not None:
            raise error
        return Clause(entity, key, raw.comparator, None)
    value = _value(entity, key, raw.right, dialect)
    if entity is Entity.ATTRIBUTE:
        key = dialect.aliases.get(key, key)
    return Clause(entity, key, raw.comparator, value)


# ---------------------------------------------------------------- values


def _value(entity: Entity, key: str, token: Token, dialect: Dialect) -> Value:
    if entity is Entity.METRIC:
        if token.kind not in (Kind.INT, Kind.FLOAT):
            raise invalid_parameter(f"Expected numeric value type for metric. Found {token.text}")
        return float(token.text)
    if entity in (Entity.PARAM, Entity.TAG):
        if token.kind in (Kind.STRING, Kind.IDENT):
            return _quoted(token)
        raise invalid_parameter(
            f"Expected a quoted string value for {entity.value} (e.g. 'my-value'). "
            f"Got value {token.text}"
        )
    if entity is Entity.DATASET:
        return _dataset_value(token)
    if dialect.registry_numeric is not None:
        return _registry_attribute_value(key, token, dialect, dialect.registry_numeric)
    if key in dialect.numeric:
        return _number(key, token)
    return _attribute_value(key, token, dialect)


def _quoted(token: Token) -> str:
    value = strip_quotes(token.text)
    if value is None:
        raise invalid_parameter(
            "Parameter value is either not quoted or unidentified quote types used for string "
            f"value {token.text}. Use either single or double quotes."
        )
    return value


def _number(key: str, token: Token) -> int | float:
    if token.kind is Kind.INT:
        return int(token.text)
    if token.kind is Kind.FLOAT:
        return float(token.text)
    raise invalid_parameter(
        f"Expected numeric value type for numeric attribute: {key}. Found {token.text}"
    )


def _attribute_value(key: str, token: Token, dialect: Dialect) -> Value:
    if token.kind in (Kind.STRING, Kind.IDENT):
        return _quoted(token)
    if token.kind is Kind.PAREN:
        if key not in dialect.list_keys:
            raise invalid_parameter(
                f"Only {sorted(dialect.list_keys)} attributes support comparison with a list "
                "of quoted string values."
            )
        return parse_list(token)
    raise invalid_parameter(
        f"Expected a quoted string value for attributes. Got value {token.text}"
    )


def _registry_attribute_value(
    key: str, token: Token, dialect: Dialect, numeric: frozenset[str]
) -> Value:
    """Registered-model and model-version attributes: strings, lists for the list keys, and
    numbers only for ``numeric`` (comparators and numeric kinds are the store's checks)."""
    if token.kind in (Kind.STRING, Kind.IDENT, Kind.PAREN):
        return _attribute_value(key, token, dialect)
    if numeric and token.kind in (Kind.INT, Kind.FLOAT):
        if key not in numeric:
            raise invalid_parameter(
                f"Only the '{set_repr(numeric)}' attributes support comparison with numeric values."
            )
        return int(token.text) if token.kind is Kind.INT else float(token.text)
    raise invalid_parameter(
        "Expected a quoted string value or a list of quoted string values for attributes. "
        f"Got value {token.text}"
    )


def _dataset_value(token: Token) -> Value:
    if token.kind in (Kind.STRING, Kind.IDENT):
        return _quoted(token)
    if token.kind is Kind.PAREN:
        return parse_list(token)
    raise invalid_parameter(
        f"Expected a quoted string value for dataset attributes. Got value {token.text}"
    )


_ILL_FORMED: Final = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got ill-formed list."
)


def parse_list(token: Token) -> tuple[str, ...]:
    """``('a', "b")`` -> ``('a', 'b')``. MLflow evaluates the group as a Python literal (so
    escapes and adjacent-string concatenation follow Python); we do the same, but only after
    checking that it holds nothing but literals, commas and parentheses."""
    if not all(_list_token(t) for t in tokenize(token.text, group_parens=False)):
        raise invalid_parameter(_ILL_FORMED)
    try:
        with warnings.catch_warnings():  # invalid escapes like '\d' only warn, as in MLflow
            warnings.simplefilter("ignore")
            parsed = ast.literal_eval(token.text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise invalid_parameter(_ILL_FORMED) from None
    items = parsed if isinstance(parsed, tuple) else (parsed,)
    if not items:
        raise invalid_parameter(
            "While parsing a list in the query, expected a non-empty list of string values, "
            "but got empty list"
        )
    if not all(isinstance(item, str) for item in items):
        raise invalid_parameter(
            "While parsing a list in the query, expected string value, punctuation, or "
            f"whitespace, but got different type in list: {items}"
        )
    return items


def _list_token(token: Token) -> bool:
    if token.kind in (Kind.STRING, Kind.INT, Kind.FLOAT, Kind.COMMA):
        return True
    if token.kind is Kind.IDENT:
        return _DQ_STRING.fullmatch(token.text) is not None
    return token.kind is Kind.OTHER and token.text in "()"
