"""Bounds on a GraphQL document, checked before validation and execution (pure).

The parser stops at ``MAX_TOKENS`` tokens; then the operations are walked with fragments
expanded (each fragment once per path, so a cycle ends): at most ``MAX_DEPTH`` levels,
``MAX_SELECTIONS`` fields in all, ``MAX_ROOT_FIELDS`` root fields and ``MAX_ALIASES`` aliases on
one level. MLflow uses the same depth, selection, root-field and alias bounds. The texts are
MLflow's, so a hostile query gets the same answer from both servers.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

MAX_TOKENS: Final = 10_000  # the UI's largest query has ~300
MAX_DEPTH: Final = 10
MAX_SELECTIONS: Final = 1000
MAX_ROOT_FIELDS: Final = 10
MAX_ALIASES: Final = 10


class QueryTooLarge(Exception):
    """The document exceeds a bound; its message is the client's answer."""


def _level(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> tuple[list[FieldNode], int, frozenset[str]]:
    """The fields of one level (inline fragments and spreads merged in) and its alias count."""
    fields: list[FieldNode] = []
    aliases = 0
    pending = deque(selection_set.selections)
    while pending:
        node = pending.popleft()
        if isinstance(node, FieldNode):
            fields.append(node)
            aliases += node.alias is not None
        elif isinstance(node, InlineFragmentNode):
            pending.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen = seen | {name}
                pending.extend(fragment.selection_set.selections)
    return fields, aliases, seen


def check(document: DocumentNode) -> None:
    """Raise QueryTooLarge when ``document`` exceeds a bound."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    selections = 0
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        stack = [(operation.selection_set, 1, frozenset[str]())]
        while stack:
            selection_set, depth, seen = stack.pop()
            if depth > MAX_DEPTH:
                raise QueryTooLarge(f"Query exceeds maximum depth of {MAX_DEPTH}")
            fields, aliases, seen = _level(selection_set, fragments, seen)
            if depth == 1 and len(fields) > MAX_ROOT_FIELDS:
                raise QueryTooLarge(_count_error(MAX_ROOT_FIELDS, "root fields", len(fields)))
            if aliases > MAX_ALIASES:
                raise QueryTooLarge(_count_error(MAX_ALIASES, "aliases", aliases))
            selections += len(fields)
            if selections > MAX_SELECTIONS:
                raise QueryTooLarge(f"Query exceeds maximum total selections of {MAX_SELECTIONS}")
            stack += [(f.selection_set, depth + 1, seen) for f in fields if f.selection_set]


def _count_error(limit: int, what: str, got: int) -> str:
    return f"GraphQL queries should have at most {limit} {what}, got {got} {what}."
