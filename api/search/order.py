"""``order_by`` items of ``runs/search`` and ``experiments/search`` (pure).

An item is ``identifier [ASC|DESC]``: exactly one identifier, optionally one more word, and no
surrounding whitespace (MLflow hands the item to ``sqlparse`` and needs a single identifier
token back). The checks run in MLflow's order: structure, direction word, identifier, entity,
duplicates; for runs a repeated field is MLflow's 500 ``INTERNAL_ERROR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from api.search.filter import Entity, Identify
from api.search.lexer import Kind, Token, strip_quotes, tokenize, trim_backticks
from api.search.rules import (
    EXPERIMENT_ATTRIBUTES,
    RUN_KEY_ALIASES,
    RUN_ORDER_ATTRIBUTES,
    identify_experiment,
    identify_run,
)
from schemas.mlflow_errors import MlflowError, invalid_parameter

_DIRECTIONS: Final = {"asc": True, "desc": False}


@dataclass(frozen=True, slots=True)
class OrderKey:
    entity: Entity
    key: str  # canonical attribute name for attributes (created -> start_time)
    ascending: bool


def parse_run_order_by(order_by: Sequence[str]) -> tuple[OrderKey, ...]:
    """Metrics, params, tags and the orderable run attributes; datasets are not orderable."""
    keys: list[OrderKey] = []
    for item in order_by:
        entity, key, ascending = _parse_item(item, identify_run, RUN_ORDER_ATTRIBUTES)
        if entity is Entity.ATTRIBUTE:
            key = RUN_KEY_ALIASES.get(key, key)
        if entity is Entity.DATASET:
            raise invalid_parameter(f"Invalid identifier type '{entity.value}'")
        if any((k.entity, k.key) == (entity, key) for k in keys):
            raise MlflowError(
                "INTERNAL_ERROR", f"`order_by` contains duplicate fields: {list(order_by)!r}"
            )
        keys.append(OrderKey(entity, key, ascending))
    return tuple(keys)


def parse_experiment_order_by(order_by: Sequence[str]) -> tuple[OrderKey, ...]:
    """Experiment attributes only; MLflow does not reject repeated fields here."""
    keys: list[OrderKey] = []
    for item in order_by:
        entity, key, ascending = _parse_item(item, identify_experiment, EXPERIMENT_ATTRIBUTES)
        if entity is not Entity.ATTRIBUTE:
            raise invalid_parameter(f"Invalid order_by entity: {entity.value}")
        keys.append(OrderKey(entity, key, ascending))
    return tuple(keys)


def _parse_item(
    item: str, identify: Identify, attributes: frozenset[str]
) -> tuple[Entity, str, bool]:
    text, ascending = parse_order_item(item)
    entity, key = identify(text, attributes)
    return entity, key, ascending


def parse_order_item(item: str) -> tuple[str, bool]:
    """An item's structure and direction, shared by every grammar: (identifier text, asc)."""
    tokens = tokenize(item)
    if item != item.strip() or not tokens or len(tokens) > 2 or tokens[0].kind is not Kind.IDENT:
        raise invalid_parameter(f"Invalid order_by clause '{item}'. Could not be parsed.")
    ascending = _direction(tokens[1], item) if len(tokens) == 2 else True
    return tokens[0].text, ascending


def _direction(token: Token, item: str) -> bool:
    if token.kind not in (Kind.IDENT, Kind.KEYWORD):
        raise invalid_parameter(f"Invalid order_by clause '{item}'. Could not be parsed.")
    # MLflow splits the item shell-style, so a quoted direction ("DESC", `desc`) also counts.
    unquoted = strip_quotes(token.text)
    word = trim_backticks(token.text if unquoted is None else unquoted).lower()
    if word not in _DIRECTIONS:
        raise invalid_parameter(f"Invalid ordering key in order_by clause '{item}'.")
    return _DIRECTIONS[word]
