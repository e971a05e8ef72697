"""Tokens of MLflow's search filter language (pure).

MLflow parses filters with ``sqlparse`` and then inspects the token groups; clients and the UI
only send what that combination accepts. This lexer reproduces the token boundaries that matter
for it (identifiers with dots and quotes, the literal forms, keyword pairs such as ``NOT NULL``,
parenthesised groups) so that the parser can accept and reject the same strings and quote the
same offending text in its messages. It is not a SQL lexer: anything unusual becomes ``OTHER``,
which the parser reports as an invalid clause.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from api.search.keywords import SQL_KEYWORDS


class Kind(enum.Enum):
    IDENT = "identifier"  # metrics.acc, tags.`a b`, "quoted" (MLflow treats "x" as an identifier)
    STRING = "string"  # 'single quoted'
    INT = "integer"
    FLOAT = "float"
    OP = "comparison"  # = != < <= > >= <> == ... LIKE ILIKE RLIKE NOT LIKE
    KEYWORD = "keyword"  # AND OR NOT IN IS NULL, "NOT NULL" as one token, other SQL keywords
    PAREN = "parenthesis"  # a balanced (...) group, kept as raw text
    COMMA = "comma"
    SEMI = "semicolon"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # exactly as written: MLflow quotes raw token text in its messages

    @property
    def word(self) -> str:
        return self.text.upper()

    def is_keyword(self, *words: str) -> bool:
        return self.kind is Kind.KEYWORD and self.word in words


_KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL"})

_PART: Final = r"(?:`(?:``|[^`])*`|\"(?:\"\"|\\\"|[^\"])*\"|\w+)"
_WORD_END: Final = r"(?![_A-ZÀ-Ü])"  # with IGNORECASE, as sqlparse: 5abc is not a number

# Order matters, as in sqlparse: the first pattern that matches at a position wins.
_RULES: Final[tuple[tuple[Kind | None, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (None, r"\s+"),
        (Kind.OTHER, r"(?:--|# ).*?(?:\r\n|\r|\n|$)"),  # SQL comments: never valid in a filter
        (Kind.KEYWORD, r"NOT\s+NULL\b"),
        (Kind.OP, r"(?:NOT\s+)?(?:LIKE|ILIKE|RLIKE)\b"),
        (Kind.OTHER, r"-?0x[0-9A-F]+"),  # hexadecimal is a number sqlparse never compares
        (Kind.FLOAT, r"-?\d+(?:\.\d+)?E-?\d+"),
        (Kind.FLOAT, r"-?(?:\d+\.\d*|\.\d+)" + _WORD_END),
        (Kind.INT, r"-?\d+" + _WORD_END),
        (Kind.STRING, r"'(?:''|\\'|[^'])*'"),
        # sqlparse keeps a trailing dot in the identifier ("tags." is tag "", matching nothing)
        (Kind.IDENT, _PART + r"(?:\." + _PART + r")*\.?"),
        (Kind.OP, r"[<>=~!]+"),
        (Kind.COMMA, r","),
        (Kind.SEMI, r";"),
    )
)


def tokenize(text: str, *, group_parens: bool = True) -> list[Token]:
    """Tokens of ``text`` without whitespace. With ``group_parens`` a balanced ``(...)`` is one
    ``PAREN`` token (an ``IN`` list or a grouping MLflow rejects); otherwise parentheses are
    ``OTHER`` tokens, which is how list contents are checked."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        token, pos = _next_token(text, pos, group_parens)
        if token is not None:
            tokens.append(token)
    return tokens


def _next_token(text: str, pos: int, group_parens: bool) -> tuple[Token | None, int]:
    if group_parens and text[pos] == "(":
        end = _paren_end(text, pos)
        if end is not None:
            return Token(Kind.PAREN, text[pos:end]), end
    for kind, pattern in _RULES:
        match = pattern.match(text, pos)
        if match and match.end() > pos:
            calls = text.startswith("(", match.end())
            return _classify(kind, match.group(), calls), match.end()
    return Token(Kind.OTHER, text[pos]), pos + 1


def _classify(kind: Kind | None, text: str, calls: bool) -> Token | None:
    """``calls``: the word is directly followed by "(", which makes sqlparse read any word,
    even a keyword, as a (function) name."""
    if kind is None:
        return None
    if kind is Kind.IDENT and text.upper() in _KEYWORDS:
        return Token(Kind.KEYWORD, text)
    if kind is Kind.IDENT and not calls and text.upper() in SQL_KEYWORDS:
        # "owner", "key", "timestamp": sqlparse keywords, so never an identifier in MLflow.
        # Dotted identifiers never get here as one word ("tags.owner" is one IDENT token).
        return Token(Kind.KEYWORD, text)
    return Token(kind, text)


def _paren_end(text: str, start: int) -> int | None:
    """Index just past the ``)`` closing the ``(`` at ``start``; None if it is never closed.
    Parentheses inside quoted strings and identifiers do not count."""
    depth = 0
    pos = start
    while pos < len(text):
        char = text[pos]
        if char in "'\"`":
            pos = _quote_end(text, pos)
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        pos += 1
        if depth == 0:
            return pos
    return None


_QUOTED: Final = {
    "'": re.compile(r"'(?:''|\\'|[^'])*'"),
    '"': re.compile(r"\"(?:\"\"|\\\"|[^\"])*\""),
    "`": re.compile(r"`(?:``|[^`])*`"),
}


def _quote_end(text: str, pos: int) -> int:
    match = _QUOTED[text[pos]].match(text, pos)
    return match.end() if match else pos + 1


def strip_quotes(text: str) -> str | None:
    """Content of a ``'...'`` or ``"..."`` literal as MLflow reads it (the ends trimmed, no
    escape processing); None when ``text`` is not quoted that way."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def trim_backticks(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1]
    return text
