"""A small path language for JSON bodies: `run.info.run_id`, `metrics[0].value`,
`runs[*].data.tags`. Used by captures (one value) and by `unordered`/`ignore` (every match)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Token = str | int  # a dict key, a list index, or "*" for every list element
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")


def parse(path: str) -> list[Token]:
    """`runs[*].data.tags` -> ["runs", "*", "data", "tags"]."""
    tokens: list[Token] = []
    for name, index in _TOKEN.findall(path):
        if name:
            tokens.append(name)
        else:
            tokens.append("*" if index == "*" else int(index))
    return tokens


def extract(body: Any, path: str) -> Any:
    """The single value at `path` (no wildcards); KeyError/IndexError/TypeError when absent."""
    value = body
    for token in parse(path):
        if token == "*":
            raise ValueError(f"wildcard not allowed in a capture path: {path}")
        value = value[token]
    return value


def _has(value: Any, token: Token) -> bool:
    if isinstance(token, int):
        return isinstance(value, list) and token < len(value)
    return isinstance(value, dict) and token in value


def _parents(body: Any, tokens: list[Token]) -> list[tuple[Any, Token]]:
    """(container, last token) for every match of the path whose container exists."""
    current = [body]
    for token in tokens[:-1]:
        following: list[Any] = []
        for value in current:
            if token == "*" and isinstance(value, list):
                following.extend(value)
            elif _has(value, token):
                following.append(value[token])
        current = following
    return [(container, tokens[-1]) for container in current]


def update(body: Any, path: str, change: Callable[[Any], Any]) -> None:
    """Replace, in place, every value matched by `path` with `change(value)`."""
    for container, last in _parents(body, parse(path)):
        if isinstance(container, dict) and isinstance(last, str) and last in container:
            container[last] = change(container[last])
        elif isinstance(container, list) and last == "*":
            container[:] = [change(item) for item in container]
        elif isinstance(container, list) and isinstance(last, int) and last < len(container):
            container[last] = change(container[last])


def remove(body: Any, path: str) -> None:
    """Delete, in place, every dict key matched by `path`."""
    for container, last in _parents(body, parse(path)):
        if isinstance(container, dict) and isinstance(last, str):
            container.pop(last, None)
