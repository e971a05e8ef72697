"""The filter language of ``logged-models/search`` (pure).

Not the run/experiment grammar (``api.search.filter``): MLflow parses logged-model filters on
their own (``search_logged_model_utils``), also with ``sqlparse`` but with other rules and
messages. A filter is a list of comparisons, ``AND`` between them optional (MLflow only skips
the ``AND`` tokens); anything that is neither is refused as a whole. A comparison is
``entity op value`` or ``entity [NOT] IN (list)``:

- the entity is ``metrics.<key>``, ``params.<key>``, ``tags.<key>``, ``attributes.<name>`` or a
  bare attribute name (``creation_time`` and ``creation_timestamp`` mean
  ``creation_timestamp_ms``, ``last_updated_timestamp`` means ``last_updated_timestamp_ms``);
- metrics and the two timestamps take ``< <= > >= = !=`` and a number, everything else
  ``= != LIKE ILIKE IN NOT IN`` and a string (``'...'`` loses its quotes; a bare word is taken
  as written; ``( ... )`` is a Python literal).

Where MLflow fails with an uncaught exception (an attribute its table lacks, a number that is
not one) this answers a 400 instead: bad input is never a server error here.
"""

from __future__ import annotations

import ast
import enum
import re
from dataclasses import dataclass
from typing import Final

from api.search.lexer import Kind, Token, tokenize
from schemas.mlflow_errors import invalid_parameter


class Entity(enum.Enum):
    ATTRIBUTE = "attributes"
    METRIC = "metrics"
    PARAM = "params"
    TAG = "tags"


Value = float | str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    entity: Entity
    key: str  # the attribute name after aliases, or the metric/param/tag key
    op: str  # upper case, as written: = != < <= > >= LIKE ILIKE IN NOT IN
    value: Value  # float for numeric entities


# MLflow's LoggedModel table columns, by the names filters and order_by use.
ATTRIBUTES: Final = frozenset(
    {
        "model_id",
        "experiment_id",
        "name",
        "artifact_location",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
        "status",
        "lifecycle_stage",
        "model_type",
        "source_run_id",
        "status_message",
    }
)
ALIASES: Final = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
NUMERIC_ATTRIBUTES: Final = frozenset({"creation_timestamp_ms", "last_updated_timestamp_ms"})
NUMERIC_OPS: Final = ("<", "<=", ">", ">=", "=", "!=")
STRING_OPS: Final = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")

_ENTITY: Final = re.compile(r"^([a-z]+)\.(.+)$", re.DOTALL)
_OPERANDS: Final = frozenset({Kind.IDENT, Kind.INT, Kind.FLOAT, Kind.STRING})


def parse(filter_string: str | None) -> list[Comparison]:
    if not filter_string:
        return []
    tokens = tokenize(filter_string)
    semis = [i for i, token in enumerate(tokens) if token.kind is Kind.SEMI]
    if semis and semis[0] < len(tokens) - 1:
        raise invalid_parameter(
            f"Invalid filter string: {filter_string!r}. Expected a single SQL expression."
        )
    comparisons: list[Comparison] = []
    pos = 0
    while pos < len(tokens):
        if tokens[pos].is_keyword("AND"):
            pos += 1
            continue
        found, pos = _comparison(tokens, pos, filter_string)
        comparisons.append(found)
    return comparisons


def _comparison(tokens: list[Token], pos: int, filter_string: str) -> tuple[Comparison, int]:
    """The comparison starting at ``pos`` and the position after it."""
    window = tokens[pos : pos + 4]
    kinds = [t.kind for t in window]
    words = [t.word for t in window]
    if len(window) >= 3 and kinds[0] in _OPERANDS:
        if kinds[1] is Kind.OP and kinds[2] in (*_OPERANDS, Kind.PAREN):
            return _build(window[0].text, window[1].word, window[2]), pos + 3
        if words[1] == "IN" and kinds[2] is Kind.PAREN:
            return _build(window[0].text, "IN", window[2]), pos + 3
        if words[1:3] == ["NOT", "IN"] and len(window) == 4 and kinds[3] is Kind.PAREN:
            return _build(window[0].text, "NOT IN", window[3]), pos + 4
        if words[1] == "IS" and words[2] in ("NULL", "NOT NULL"):
            raise invalid_parameter(
                f"Invalid comparison: {window[0].text}IS {words[2]}. "
                "Expected a comparison with 3 tokens."
            )
    raise invalid_parameter(
        f"Invalid filter string: {filter_string!r}. Expected a list of comparisons separated"
        " by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01')."
    )


def _build(identifier: str, op: str, value: Token) -> Comparison:
    entity, key = entity_of(identifier)
    numeric = entity is Entity.METRIC or key in NUMERIC_ATTRIBUTES
    ops = NUMERIC_OPS if numeric else STRING_OPS
    if op not in ops:
        raise invalid_parameter(
            f"Invalid comparison operator for {entity.value}.{key}: {op!r}. Expected one of {ops}."
        )
    if entity is Entity.ATTRIBUTE and key not in ATTRIBUTES:
        raise invalid_parameter(f"Invalid attribute key {key!r} for logged models.")
    if numeric:
        return Comparison(entity, key, op, _number(value.text))
    return Comparison(entity, key, op, _string(value))


def entity_of(identifier: str) -> tuple[Entity, str]:
    """(entity, key) as MLflow reads an identifier: a lower-case prefix before the first dot
    names the entity, anything else is an attribute name (aliases applied); the key loses its
    backticks."""
    match = _ENTITY.match(identifier)
    if match is None:
        return Entity.ATTRIBUTE, ALIASES.get(identifier, identifier).strip("`")
    try:
        entity = Entity(match.group(1))
    except ValueError:
        raise invalid_parameter(
            f"Invalid entity type: {match.group(1)!r}. Expected one of {[e.value for e in Entity]}."
        ) from None
    return entity, match.group(2).strip("`")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise invalid_parameter(f"Invalid numeric value {text!r} in the filter.") from None


def _string(token: Token) -> str | tuple[str, ...]:
    if token.kind is not Kind.PAREN:
        return token.text.strip("'")
    try:
        value = ast.literal_eval(token.text)
    except (ValueError, SyntaxError):
        raise invalid_parameter(f"Invalid list value {token.text!r} in the filter.") from None
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, tuple) or not all(isinstance(v, str) for v in items):
        raise invalid_parameter(f"Invalid list value {token.text!r} in the filter.")
    return items
