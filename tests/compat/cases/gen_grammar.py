"""Class 5 of issue 14, generated: every error path of the search grammars (experiments, runs,
registered models, model versions), message for message.

For each grammar: every identifier spelling it knows or might be sent (entity prefixes, their
singular/backticked forms, attributes of other grammars, unknown names) crossed with every
comparator, each identifier with every kind of value, a list of structural mistakes, and the
same identifiers in `order_by` with every direction spelling. Filters are ANDed to a term that
matches only the case's own (uncreated) entities: the answers that succeed are empty lists on
both servers, and no case needs a setup but the runs grammar's experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.compat.cases._build import case, create_experiment, get, post
from tests.compat.model import Case, Step, step_endpoint

# One of each kind: the grammars decide by comparator family (equality, order, pattern, list,
# null test) and refuse the unknown ones by the same path.
COMPARATORS = (
    "=", "!=", "<", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "==",
    "CONTAINS",
)  # fmt: skip
VALUES = {
    "string": "'a'",
    "dq-string": '"a"',
    "number": "1",
    "float": "1.5",
    "list": "('a', 'b')",
    "empty-list": "()",
    "bare-word": "a",
    "backticked": "`a`",
    "null": "NULL",
}
DIRECTIONS = ("", " DESC", " desc", " up", " ASC DESC")
STRUCTURAL = (
    "{scope} AND",
    "AND {scope}",
    "{scope} AND AND {scope}",
    "{scope} OR {scope}",
    "{scope} and {scope}",
    "({scope})",
    "{scope} {scope}",
    "{scope};",
    "{scope} --",
    "{scope} AND nope",
    "{scope} AND =",
    "{scope} AND = 'a'",
    "{scope} AND tags.`a b` = 'x'",
    "{scope} AND tags.\"a\" = 'x'",
    "{scope} AND tags. = 'x'",
    "{scope} AND tags = 'x'",
    "{scope} AND `tags`.t = 'x'",
)


@dataclass(frozen=True)
class Grammar:
    name: str
    setup: tuple[Step, ...]
    scope: str  # a term matching only the case's entities
    identifiers: tuple[str, ...]
    has_order_by: bool

    def request(self, filter_: str | None = None, order_by: str | None = None) -> Step:
        query: dict[str, Any] = {}
        if filter_ is not None:
            query["filter"] = filter_
        if order_by is not None:
            query["order_by"] = [order_by]
        if self.name == "runs":
            body: dict[str, Any] = {"experiment_ids": ["${exp}"]}
            if filter_ is not None:
                body["filter"] = filter_
            if order_by is not None:
                body["order_by"] = [order_by]
            return post("runs/search", body, unordered=("runs[*].data.tags",))
        if order_by is not None:  # scoped too: an answer that succeeds lists only the case's
            query["filter"] = query.get("filter", self.scope)
        if self.name == "experiments":
            return post("experiments/search", {**query, "max_results": 100})
        return get(f"{self.name}/search", query)


# One identifier of each kind each grammar treats differently: unknown names, tags (and their
# singular prefix), entities of another grammar, string, numeric and id attributes.
_COMMON = ("nope", "tags.t", "tag.t")
GRAMMARS = (
    Grammar(
        "experiments",
        (),
        "name = '${uid}'",
        (*_COMMON, "metrics.m", "name", "creation_time", "attribute.name", "experiment_id"),
        True,
    ),
    Grammar(
        "runs",
        (create_experiment(),),
        "attributes.run_name = 'r'",
        (
            *_COMMON,
            "nope.x",
            "metric.m",
            "metrics.m",
            "params.p",
            "attribute.status",
            "run_name",
            "start_time",
            "run_id",
            "datasets.name",
            "lifecycle_stage",
        ),
        True,
    ),
    Grammar(
        "registered-models",
        (),
        "name = '${uid}'",
        (*_COMMON, "name", "creation_timestamp", "description", "version_number"),
        True,
    ),
    Grammar(
        "model-versions",
        (),
        "name = '${uid}'",
        (
            *_COMMON,
            "name",
            "version_number",
            "run_id",
            "current_stage",
            "source_path",
            "creation_timestamp",
        ),
        True,
    ),
)


def _natural(identifier: str, comparator: str) -> str:
    if comparator in ("IN", "NOT IN"):
        return "('a', 'b')"
    if comparator.startswith("IS"):
        return ""
    numeric = identifier.startswith(("metric", "version")) or identifier.endswith(
        ("time", "timestamp")
    )
    return "1" if numeric else "'a'"


def _term(identifier: str, comparator: str, value: str) -> str:
    return f"{identifier} {comparator} {value}".rstrip()


def _cases(g: Grammar) -> list[Case]:
    out: list[Case] = []

    def add(label: str, step: Step) -> None:
        out.append(case(f"grammar/{g.name}/{label}", g.setup, step))

    for ident in g.identifiers:
        for comparator in COMPARATORS:
            term = _term(ident, comparator, _natural(ident, comparator))
            add(f"{ident}/{comparator}", g.request(f"{g.scope} AND {term}"))
        for label, value in VALUES.items():
            add(f"{ident}/value-{label}", g.request(f"{g.scope} AND {_term(ident, '=', value)}"))
        if g.has_order_by:
            for direction in DIRECTIONS:
                add(
                    f"order-by/{ident}{direction or ' (none)'}",
                    g.request(order_by=ident + direction),
                )
    for index, template in enumerate(STRUCTURAL):
        add(f"structure/{index:02d}", g.request(template.format(scope=g.scope)))
    return out


CASES: list[Case] = [c for g in GRAMMARS for c in _cases(g)]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
