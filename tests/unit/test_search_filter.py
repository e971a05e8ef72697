"""Search filter and order_by languages (api/search/: lexer, filter, rules,
order) and the shared request fields (api/search/request.py).

Expected results and messages are MLflow 3.17.2's: ``SearchUtils.parse_search_filter`` /
``SearchExperimentsUtils`` for parsing, and the comparator checks its SQL store applies
afterwards (``_get_sqlalchemy_filter_clauses``, ``_get_search_experiments_filter_clauses``,
``_get_orderby_clauses``). MLflow prints Python sets in hash order; we print them sorted, which
is what ``set_repr`` pins below. Cases where we answer differently carry a comment.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

from api.page_tokens import decode_offset
from api.search.filter import Entity, Value, set_repr
from api.search.lexer import Kind, tokenize
from api.search.order import OrderKey, parse_experiment_order_by, parse_run_order_by
from api.search.request import (
    ViewType,
    experiment_max_results,
    lifecycle_stages,
    page_of,
    parse_view_type,
    run_max_results,
)
from api.search.rules import (
    DATASET_KEYS,
    EXPERIMENT_ATTRIBUTES,
    RUN_FILTER_ATTRIBUTES,
    RUN_ORDER_ATTRIBUTES,
    parse_experiment_filter,
    parse_run_filter,
)
from schemas.int_fields import IntField, protobuf_int
from schemas.mlflow_errors import MlflowError

M, P, T, A, D = Entity.METRIC, Entity.PARAM, Entity.TAG, Entity.ATTRIBUTE, Entity.DATASET
Expected = list[tuple[Entity, str, str, Value]]

NUMERIC = "{'!=', '<', '<=', '=', '>', '>='}"
KEY_VALUE = "{'!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE'}"
STRING_ATTR = "{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN'}"
RUN_KEYS = set_repr(RUN_FILTER_ATTRIBUTES)
ENTITIES = "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
ILL_FORMED = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got ill-formed list."
)


def rejected(call: object, *args: object) -> MlflowError:
    assert callable(call)
    with pytest.raises(MlflowError) as caught:
        call(*args)
    return caught.value


def clauses_of(filter_string: str, experiments: bool = False) -> Expected:
    parse = parse_experiment_filter if experiments else parse_run_filter
    return [(c.entity, c.key, c.comparator, c.value) for c in parse(filter_string)]


# ---------------------------------------------------------------- lexer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc>0.8", [(Kind.IDENT, "metrics.acc"), (Kind.OP, ">"), (Kind.FLOAT, "0.8")]),
        ("a=-5", [(Kind.IDENT, "a"), (Kind.OP, "="), (Kind.INT, "-5")]),
        ("1e5 1.5E-3 .5 1.", [(Kind.FLOAT, t) for t in ("1e5", "1.5E-3", ".5", "1.")]),
        ("0x1F", [(Kind.OTHER, "0x1F")]),  # hexadecimal is never a comparable number
        ("5abc", [(Kind.IDENT, "5abc")]),
        ("tags.`a b`.c", [(Kind.IDENT, "tags.`a b`.c")]),
        ('"x y"', [(Kind.IDENT, '"x y"')]),  # MLflow treats double quotes as an identifier
        ("'it''s' 'a\\'b'", [(Kind.STRING, "'it''s'"), (Kind.STRING, "'a\\'b'")]),
        ("IS  not NULL", [(Kind.KEYWORD, "IS"), (Kind.KEYWORD, "not NULL")]),
        ("not like x", [(Kind.OP, "not like"), (Kind.IDENT, "x")]),
        ("IN ('a', (')'))", [(Kind.KEYWORD, "IN"), (Kind.PAREN, "('a', (')'))")]),
        ("(unclosed", [(Kind.OTHER, "("), (Kind.IDENT, "unclosed")]),
        ("a -- note\nb", [(Kind.IDENT, "a"), (Kind.OTHER, "-- note\n"), (Kind.IDENT, "b")]),
        ("<> == ;", [(Kind.OP, "<>"), (Kind.OP, "=="), (Kind.SEMI, ";")]),
    ],
)
def test_tokens(text: str, expected: list[tuple[Kind, str]]) -> None:
    assert [(t.kind, t.text) for t in tokenize(text)] == expected


# ---------------------------------------------------------------- runs: accepted

RUN_ACCEPTS: list[tuple[str, Expected]] = [
    ("", []),
    ("metrics.acc > 0.8", [(M, "acc", ">", 0.8)]),
    ("metrics.acc>=-1e5", [(M, "acc", ">=", -1e5)]),
    ("metric.`my metric` != .5", [(M, "my metric", "!=", 0.5)]),
    ('metrics."acc" = 1', [(M, "acc", "=", 1.0)]),
    ("`metrics`.acc < 3", [(M, "acc", "<", 3.0)]),
    ("params.lr = '0.1'", [(P, "lr", "=", "0.1")]),
    ('param.lr = "0.1"', [(P, "lr", "=", "0.1")]),
    ("parameters.`a-b` LIKE 'x%'", [(P, "a-b", "LIKE", "x%")]),
    ("parameter.x ilike '%Y'", [(P, "x", "ILIKE", "%Y")]),
    ("params.x IS NULL", [(P, "x", "IS NULL", None)]),
    ("params.x is not null", [(P, "x", "IS NOT NULL", None)]),
    ("tags.mlflow.runName = 'r'", [(T, "mlflow.runName", "=", "r")]),
    ("tag.`mlflow.parentRunId` = 'p'", [(T, "mlflow.parentRunId", "=", "p")]),
    ("tags.\"a b\" != ''", [(T, "a b", "!=", "")]),
    ("tags.1abc = 'x'", [(T, "1abc", "=", "x")]),
    # No escape processing beyond the quotes, as in MLflow.
    ("params.x = 'it''s'", [(P, "x", "=", "it''s")]),
    ("params.x = 'a\\'", [(P, "x", "=", "a\\")]),
    ("status = 'FINISHED'", [(A, "status", "=", "FINISHED")]),
    ("attributes.user_id != 'u'", [(A, "user_id", "!=", "u")]),
    ("attribute.artifact_uri LIKE 's3://%'", [(A, "artifact_uri", "LIKE", "s3://%")]),
    ("attr.run_name ILIKE 'a%'", [(A, "run_name", "ILIKE", "a%")]),
    ("run.run_id = 'abc'", [(A, "run_id", "=", "abc")]),
    ("`attributes`.`status` = 'x'", [(A, "status", "=", "x")]),
    ("`run name` = 'x'", [(A, "run_name", "=", "x")]),
    ("attributes.`Run Name` = 'x'", [(A, "run_name", "=", "x")]),
    ("`Run name` = 'x'", [(A, "run_name", "=", "x")]),
    ("start_time >= 1700000000000", [(A, "start_time", ">=", 1700000000000)]),
    ("created > 5", [(A, "start_time", ">", 5)]),
    ("Created <= 1.5", [(A, "start_time", "<=", 1.5)]),
    ("end_time = 1e3", [(A, "end_time", "=", 1000.0)]),
    ("run_id IN ('a', 'b')", [(A, "run_id", "IN", ("a", "b"))]),
    ("run_id in ('a',)", [(A, "run_id", "IN", ("a",))]),
    ("run_id NOT IN ('a')", [(A, "run_id", "NOT IN", ("a",))]),
    ("run_id IN (\"a\", 'b')", [(A, "run_id", "IN", ("a", "b"))]),
    # The list is a Python literal in MLflow: escapes apply and adjacent strings concatenate.
    ("run_id IN ('a\\'b')", [(A, "run_id", "IN", ("a'b",))]),
    ("run_id IN ('a' 'b')", [(A, "run_id", "IN", ("ab",))]),
    ("run_id IN (('a'))", [(A, "run_id", "IN", ("a",))]),
    ("datasets.name = 'd'", [(D, "name", "=", "d")]),
    ("dataset.digest IN ('x', 'y')", [(D, "digest", "IN", ("x", "y"))]),
    ("datasets.context LIKE '%train%'", [(D, "context", "LIKE", "%train%")]),
    (
        "metrics.acc > 1 and params.x = 'y' AND tags.z IS NULL",
        [(M, "acc", ">", 1.0), (P, "x", "=", "y"), (T, "z", "IS NULL", None)],
    ),
    # MLflow only rejects tokens that are neither AND nor a comparison.
    ("AND metrics.a > 1 AND AND metrics.b < 2 AND", [(M, "a", ">", 1.0), (M, "b", "<", 2.0)]),
    ("params.x = 'a' params.y = 'b'", [(P, "x", "=", "a"), (P, "y", "=", "b")]),
    ("tags.x = 'a' AND tags.x = 'b'", [(T, "x", "=", "a"), (T, "x", "=", "b")]),
]


@pytest.mark.parametrize(("filter_string", "expected"), RUN_ACCEPTS)
def test_run_filter_accepts(filter_string: str, expected: Expected) -> None:
    assert clauses_of(filter_string) == expected


def test_run_filter_none_is_no_filter() -> None:
    assert parse_run_filter(None) == ()


# ---------------------------------------------------------------- runs: rejected

RUN_REJECTS: list[tuple[str, str]] = [
    ("   ", "Invalid filter '   '. Could not be parsed."),
    (
        "metrics.acc > 1; params.x = 'y'",
        "Search filter contained multiple expression \"metrics.acc > 1; params.x = 'y'\". "
        "Provide AND-ed expression list.",
    ),
    ("metrics.acc > 1;", "Invalid clause(s) in filter string: ';'"),
    ("metrics.a > 1 OR metrics.a < 0", "Invalid clause(s) in filter string: 'OR'"),
    ("metrics.a > 1 or metrics.a < 0", "Invalid clause(s) in filter string: 'or'"),
    ("NOT metrics.a > 1", "Invalid clause(s) in filter string: 'NOT'"),
    ("(metrics.a > 1)", "Invalid clause(s) in filter string: '(metrics.a > 1)'"),
    ("metrics.a > 1 AND (p.x = 'a')", "Invalid clause(s) in filter string: '(p.x = 'a')'"),
    ("metrics.acc", "Invalid clause(s) in filter string: 'metrics.acc'"),
    ("metrics.acc >", "Invalid clause(s) in filter string: 'metrics.acc', '>'"),
    ("metrics.a = - 5", "Invalid clause(s) in filter string: 'metrics.a', '=', '-', '5'"),
    ("metrics.a = 0x10", "Invalid clause(s) in filter string: 'metrics.a', '=', '0x10'"),
    (
        "metrics.a BETWEEN 1 AND 2",
        "Invalid clause(s) in filter string: 'metrics.a', 'BETWEEN', '1', '2'",
    ),
    ("run_id IN 'a'", "Invalid clause(s) in filter string: 'run_id', 'IN', ''a''"),
    ("params.x IS 'a'", "Invalid clause(s) in filter string: 'params.x', 'IS', ''a''"),
    # MLflow compares the "NOT NULL" token text, so only one space between the words works.
    ("params.x IS NOT  NULL", "Invalid clause(s) in filter string: 'params.x', 'IS', 'NOT  NULL'"),
    ("params.x = 'a''", "Invalid clause(s) in filter string: '''"),
    ("status = 'a' -- c", "Invalid clause(s) in filter string: '-- c'"),
    ("'a' = params.x", "Invalid comparison clause. Expected 'Identifier' found ''a''"),
    ("5 > metrics.x", "Invalid comparison clause. Expected 'Identifier' found '5'"),
    ("foo.bar = 'x'", f"Invalid entity type 'foo'. Valid values are {ENTITIES}"),
    ("METRICS.acc > 1", f"Invalid entity type 'METRICS'. Valid values are {ENTITIES}"),
    ("`params.x` = 'a'", f"Invalid entity type '`params'. Valid values are {ENTITIES}"),
    (
        "\"attributes\".status = 'x'",
        f"Invalid entity type '\"attributes\"'. Valid values are {ENTITIES}",
    ),
    ("bar = 'x'", f"Invalid attribute key 'bar' specified. Valid keys are '{RUN_KEYS}'"),
    (
        "experiment_id = '1'",
        f"Invalid attribute key 'experiment_id' specified. Valid keys are '{RUN_KEYS}'",
    ),
    (
        "lifecycle_stage = 'active'",
        f"Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{RUN_KEYS}'",
    ),
    (
        "datasets.foo = 'x'",
        f"Invalid dataset key 'foo' specified. Valid keys are '{set_repr(DATASET_KEYS)}'",
    ),
    ("metrics.acc = '0.5'", "Expected numeric value type for metric. Found '0.5'"),
    ("metrics.acc = abc", "Expected numeric value type for metric. Found abc"),
    ("metrics.acc IN (1,2)", "Expected numeric value type for metric. Found (1,2)"),
    (
        "params.lr = 1",
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1",
    ),
    (
        "params.x = NULL",
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value NULL",
    ),
    (
        "params.x IN ('a')",
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value ('a')",
    ),
    ("tags.x = 2.5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 2.5"),
    (
        "params.x = abc",
        "Parameter value is either not quoted or unidentified quote types used for string "
        "value abc. Use either single or double quotes.",
    ),
    (
        "status = `FINISHED`",
        "Parameter value is either not quoted or unidentified quote types used for string "
        "value `FINISHED`. Use either single or double quotes.",
    ),
    ("end_time = 'x'", "Expected numeric value type for numeric attribute: end_time. Found 'x'"),
    (
        "start_time IN (1)",
        "Expected numeric value type for numeric attribute: start_time. Found (1)",
    ),
    ("status = 5", "Expected a quoted string value for attributes. Got value 5"),
    ("datasets.name = 5", "Expected a quoted string value for dataset attributes. Got value 5"),
    (
        "status IN ('a')",
        "Only ['run_id'] attributes support comparison with a list of quoted string values.",
    ),
    (
        "`run name` IN ('a')",
        "Only ['run_id'] attributes support comparison with a list of quoted string values.",
    ),
    (
        "run_id IN ()",
        "While parsing a list in the query, expected a non-empty list of string values, "
        "but got empty list",
    ),
    (
        "run_id IN (1, 2)",
        "While parsing a list in the query, expected string value, punctuation, or "
        "whitespace, but got different type in list: (1, 2)",
    ),
    (
        "datasets.name IN ('a', 1)",
        "While parsing a list in the query, expected string value, punctuation, or "
        "whitespace, but got different type in list: ('a', 1)",
    ),
    ("run_id IN (007)", ILL_FORMED),
    ("run_id IN (a)", ILL_FORMED),  # MLflow: a ValueError and a 500
    (
        "metrics.x IS NULL",
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'x'",
    ),
    (
        "status IS NOT NULL",
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'attribute' 'status'",
    ),
    (
        "datasets.name IS NULL",
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'dataset' 'name'",
    ),
    # Comparator rules, which MLflow applies in its store (typos included).
    ("metrics.acc LIKE 5", f"Invalid comparator 'LIKE' not one of '{NUMERIC}"),
    ("metrics.acc <> 1", f"Invalid comparator '<>' not one of '{NUMERIC}"),
    ("metrics.acc == 1", f"Invalid comparator '==' not one of '{NUMERIC}"),
    ("params.x > 'a'", f"Invalid comparator '>' not one of '{KEY_VALUE}'"),
    ("params.x not ilike 'a'", f"Invalid comparator 'NOT ILIKE' not one of '{KEY_VALUE}'"),
    ("params.x RLIKE 'a'", f"Invalid comparator 'RLIKE' not one of '{KEY_VALUE}'"),
    ("tags.x < 'a'", f"Invalid comparator '<' not one of '{KEY_VALUE}"),
    ("status < 'a'", f"Invalid comparator '<' not one of '{STRING_ATTR}'"),
    ("start_time LIKE 5", f"Invalid comparator 'LIKE' not one of '{STRING_ATTR}"),
    ("datasets.name > 'a'", f"Invalid comparator '>' not one of '{STRING_ATTR}"),
    # MLflow sends these to the database (a 500, or equality on PostgreSQL); we answer 400.
    ("run_id = ('a')", "Invalid comparator '=' for a list of values: use IN or NOT IN."),
]


@pytest.mark.parametrize(("filter_string", "message"), RUN_REJECTS)
def test_run_filter_rejects(filter_string: str, message: str) -> None:
    error = rejected(parse_run_filter, filter_string)
    assert (error.code, error.message) == ("INVALID_PARAMETER_VALUE", message)


def test_set_repr_is_sorted_python_set_syntax() -> None:
    assert set_repr(frozenset({"b", "a", "c"})) == "{'a', 'b', 'c'}"


def test_run_filter_checks_every_clause_before_comparators() -> None:
    """MLflow parses all clauses, then checks comparators in its store."""
    error = rejected(parse_run_filter, "params.x > 'a' AND metrics.y = 'z'")
    assert error.message == "Expected numeric value type for metric. Found 'z'"


# ---------------------------------------------------------------- experiments


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'x'", [(A, "name", "=", "x")]),
        ("attribute.name LIKE 'x%'", [(A, "name", "LIKE", "x%")]),
        ("name ILIKE '%X'", [(A, "name", "ILIKE", "%X")]),
        ('name != "x"', [(A, "name", "!=", "x")]),
        ("experiment_id = '4'", [(A, "experiment_id", "=", "4")]),
        ("experiment_id IN ('1', '2')", [(A, "experiment_id", "IN", ("1", "2"))]),
        ("experiment_id NOT IN ('1')", [(A, "experiment_id", "NOT IN", ("1",))]),
        ("creation_time > 5", [(A, "creation_time", ">", 5)]),
        ("last_update_time <= 1700000000000", [(A, "last_update_time", "<=", 1700000000000)]),
        ("tags.x = 'a'", [(T, "x", "=", "a")]),
        ("tag.x ILIKE 'a%'", [(T, "x", "ILIKE", "a%")]),
        (
            "tags.`mlflow.experiment.isGateway` IS NULL",
            [(T, "mlflow.experiment.isGateway", "IS NULL", None)],
        ),
        (
            "tags.x IS NOT NULL AND name = 'a'",
            [(T, "x", "IS NOT NULL", None), (A, "name", "=", "a")],
        ),
    ],
)
def test_experiment_filter_accepts(filter_string: str, expected: Expected) -> None:
    assert clauses_of(filter_string, experiments=True) == expected


EXPERIMENT_KEYS = set_repr(EXPERIMENT_ATTRIBUTES)
EXPERIMENT_ENTITIES = "Valid entity types are ('attribute', 'tag', 'tags')"


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        # Experiments list invalid tokens without quotes.
        ("name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: OR"),
        ("name = 'a' AND (name = 'b')", "Invalid clause(s) in filter string: (name = 'b')"),
        ("attributes.name = 'x'", f"Invalid entity type 'attributes'. {EXPERIMENT_ENTITIES}"),
        ("`attribute`.name = 'x'", f"Invalid entity type '`attribute`'. {EXPERIMENT_ENTITIES}"),
        ("metrics.x > 1", f"Invalid entity type 'metrics'. {EXPERIMENT_ENTITIES}"),
        ("foo = 'x'", f"Invalid attribute key 'foo' specified. Valid keys are '{EXPERIMENT_KEYS}'"),
        (
            "lifecycle_stage = 'active'",
            f"Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{EXPERIMENT_KEYS}'",
        ),
        (
            "name IS NULL",
            "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'",
        ),
        ("experiment_id = 4", "Expected a quoted string value for attributes. Got value 4"),
        (
            "name IN ('a')",
            "Only ['experiment_id'] attributes support comparison with a list of quoted string "
            "values.",
        ),
        (
            "creation_time > '5'",
            "Expected numeric value type for numeric attribute: creation_time. Found '5'",
        ),
        ("tags.x = 5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 5"),
        (
            "experiment_id = 'abc'",
            "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.",
        ),
        (
            "experiment_id IN ('1', 'x')",
            "Invalid experiment ID 'x'. Experiment ID must be a valid integer.",
        ),
        ("experiment_id LIKE '1'", "Invalid comparator for experiment_id: LIKE"),
        ("experiment_id > '1'", "Invalid comparator for experiment_id: >"),
        ("name > 'a'", f"Invalid comparator '>' not one of '{STRING_ATTR}'"),
        ("creation_time LIKE 5", f"Invalid comparator 'LIKE' not one of '{STRING_ATTR}"),
        ("creation_time > 1.5", "Invalid value for numeric attribute 'creation_time': '1.5'"),
        ("creation_time = 1e3", "Invalid value for numeric attribute 'creation_time': '1000.0'"),
        ("tags.x > 'a'", "Invalid comparator for tag: >"),
        ("experiment_id = ('1')", "Invalid comparator '=' for a list of values: use IN or NOT IN."),
    ],
)
def test_experiment_filter_rejects(filter_string: str, message: str) -> None:
    error = rejected(parse_experiment_filter, filter_string)
    assert (error.code, error.message) == ("INVALID_PARAMETER_VALUE", message)


def test_experiment_comparators_are_case_insensitive() -> None:
    """Deviation: MLflow's experiment store compares the comparator as written, so ``name like
    'a'`` is a 400 there; clients always send upper case, and we accept both."""
    assert clauses_of("name like 'a%'", experiments=True) == [(A, "name", "LIKE", "a%")]


# ---------------------------------------------------------------- order_by


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], []),
        (["metrics.acc DESC"], [(M, "acc", False)]),
        (["metrics.acc desc"], [(M, "acc", False)]),
        (["metrics.acc\tDESC"], [(M, "acc", False)]),
        (["metrics.acc  ASC"], [(M, "acc", True)]),
        (["metrics.acc"], [(M, "acc", True)]),
        (['metrics.acc "DESC"'], [(M, "acc", False)]),
        (["metrics.`my metric` DESC"], [(M, "my metric", False)]),
        (['metrics."my metric"'], [(M, "my metric", True)]),
        (["params.x ASC", "tags.`a b`"], [(P, "x", True), (T, "a b", True)]),
        (["attributes.start_time DESC"], [(A, "start_time", False)]),
        (["created"], [(A, "start_time", True)]),
        (["Created DESC"], [(A, "start_time", False)]),
        (
            ["run_name", "attr.run_id", "status", "user_id"],
            [(A, k, True) for k in ("run_name", "run_id", "status", "user_id")],
        ),
        (["artifact_uri DESC", "end_time"], [(A, "artifact_uri", False), (A, "end_time", True)]),
    ],
)
def test_run_order_by_accepts(items: list[str], expected: list[tuple[Entity, str, bool]]) -> None:
    assert parse_run_order_by(items) == tuple(OrderKey(*e) for e in expected)


RUN_ORDER_KEYS = set_repr(RUN_ORDER_ATTRIBUTES)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("", "Invalid order_by clause ''. Could not be parsed."),
        ("   ", "Invalid order_by clause '   '. Could not be parsed."),
        (" metrics.acc", "Invalid order_by clause ' metrics.acc'. Could not be parsed."),
        ("metrics.acc DESC ", "Invalid order_by clause 'metrics.acc DESC '. Could not be parsed."),
        (
            "metrics.acc DESC ASC",
            "Invalid order_by clause 'metrics.acc DESC ASC'. Could not be parsed.",
        ),
        ("metrics.acc 5", "Invalid order_by clause 'metrics.acc 5'. Could not be parsed."),
        (
            "metrics.acc,params.x",
            "Invalid order_by clause 'metrics.acc,params.x'. Could not be parsed.",
        ),
        ("(metrics.acc)", "Invalid order_by clause '(metrics.acc)'. Could not be parsed."),
        ("metrics.acc;", "Invalid order_by clause 'metrics.acc;'. Could not be parsed."),
        ("'metrics.acc'", "Invalid order_by clause ''metrics.acc''. Could not be parsed."),
        (
            "start_time DESC NULLS LAST",
            "Invalid order_by clause 'start_time DESC NULLS LAST'. Could not be parsed.",
        ),
        ("metrics.acc FOO", "Invalid ordering key in order_by clause 'metrics.acc FOO'."),
        ("metrics.a b", "Invalid ordering key in order_by clause 'metrics.a b'."),
        ("foo.x", f"Invalid entity type 'foo'. Valid values are {ENTITIES}"),
        ("bar", f"Invalid attribute key 'bar' specified. Valid keys are '{RUN_ORDER_KEYS}'"),
        (
            "`Run Name`",
            f"Invalid attribute key 'Run Name' specified. Valid keys are '{RUN_ORDER_KEYS}'",
        ),
        (
            "experiment_id",
            f"Invalid attribute key 'experiment_id' specified. Valid keys are '{RUN_ORDER_KEYS}'",
        ),
        ("datasets.name", "Invalid identifier type 'dataset'"),
    ],
)
def test_run_order_by_rejects(item: str, message: str) -> None:
    error = rejected(parse_run_order_by, [item])
    assert (error.code, error.message) == ("INVALID_PARAMETER_VALUE", message)


@pytest.mark.parametrize(
    "items",
    [
        ["metrics.acc", "metrics.acc DESC"],
        ["start_time", "created DESC"],  # aliases count as the same field
        ["params.x", "tags.y", "param.x"],
    ],
)
def test_run_order_by_duplicate_is_internal_error(items: list[str]) -> None:
    error = rejected(parse_run_order_by, items)
    assert (error.code, error.status) == ("INTERNAL_ERROR", 500)
    assert error.message == f"`order_by` contains duplicate fields: {items!r}"


def test_run_order_by_same_key_in_different_entities_is_no_duplicate() -> None:
    assert len(parse_run_order_by(["metrics.x", "params.x", "tags.x"])) == 3


def test_run_order_by_checks_items_in_order() -> None:
    """The duplicate is found before the later, invalid item is parsed (as in MLflow)."""
    error = rejected(parse_run_order_by, ["run_id", "run_id", "bad bad bad"])
    assert error.code == "INTERNAL_ERROR"


def test_experiment_order_by_accepts() -> None:
    items = ["name DESC", "attribute.creation_time", "experiment_id ASC", "last_update_time desc"]
    assert parse_experiment_order_by(items) == (
        OrderKey(A, "name", False),
        OrderKey(A, "creation_time", True),
        OrderKey(A, "experiment_id", True),
        OrderKey(A, "last_update_time", False),
    )
    # MLflow does not reject repeated experiment fields.
    assert len(parse_experiment_order_by(["name", "name DESC"])) == 2


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("tags.x", "Invalid order_by entity: tag"),
        ("attributes.name", f"Invalid entity type 'attributes'. {EXPERIMENT_ENTITIES}"),
        ("foo", f"Invalid attribute key 'foo' specified. Valid keys are '{EXPERIMENT_KEYS}'"),
        ("name SIDEWAYS", "Invalid ordering key in order_by clause 'name SIDEWAYS'."),
        ("name DESC ", "Invalid order_by clause 'name DESC '. Could not be parsed."),
    ],
)
def test_experiment_order_by_rejects(item: str, message: str) -> None:
    error = rejected(parse_experiment_order_by, [item])
    assert (error.code, error.message) == ("INVALID_PARAMETER_VALUE", message)


# ---------------------------------------------------------------- request fields

DOCS = "See the API docs for more information about request parameters."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ViewType.ACTIVE_ONLY),
        ("ACTIVE_ONLY", ViewType.ACTIVE_ONLY),
        ("DELETED_ONLY", ViewType.DELETED_ONLY),
        ("ALL", ViewType.ALL),
        (1, ViewType.ACTIVE_ONLY),
        (3, ViewType.ALL),
        ("2", ViewType.DELETED_ONLY),
    ],
)
def test_view_type_by_name_or_number(value: object, expected: ViewType) -> None:
    assert parse_view_type(value) is expected


@pytest.mark.parametrize("value", ["all", "EVERYTHING", 0, 4, True, 1.5])
def test_view_type_unknown_is_ignored(value: object) -> None:
    # MLflow swallows protobuf's parse error: the default applies.
    assert parse_view_type(value) is ViewType.ACTIVE_ONLY


def test_lifecycle_stages() -> None:
    assert lifecycle_stages(ViewType.ACTIVE_ONLY) == ("active",)
    assert lifecycle_stages(ViewType.DELETED_ONLY) == ("deleted",)
    assert lifecycle_stages(ViewType.ALL) == ("active", "deleted")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 1000),
        (1, 1),
        (50000, 50000),
        ("7", 7),
        (1.5, 1000),
        (True, 1000),
        (-(2**63) - 1, 1000),
    ],
)
def test_run_max_results_accepts(raw: object, expected: int) -> None:
    # A value protobuf refuses reads as the default (MLflow swallows the parse error).
    assert run_max_results(IntField(raw, protobuf_int(raw, 32))) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            50001,
            "Invalid value 50001 for parameter 'max_results' supplied:  "
            f"Hint: Value was of type 'int'. {DOCS}",
        ),
        (0, "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"),
        (
            -5,
            "Invalid value -5 for parameter 'max_results' supplied. It must be a positive integer",
        ),
    ],
)
def test_run_max_results_rejects(value: int, message: str) -> None:
    assert rejected(run_max_results, IntField(value, value)).message == message


def test_run_max_results_checks_the_raw_value() -> None:
    # MLflow's schema lambda reads int(raw): a huge value protobuf dropped is still too big.
    message = rejected(run_max_results, IntField(1e20, None)).message
    assert message == (
        f"Invalid value 1e+20 for parameter 'max_results' supplied:  Hint: Value was of type "
        f"'float'. {DOCS}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            None,
            "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer",
        ),
        (0, "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"),
        (
            50001,
            "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000",
        ),
    ],
)
def test_experiment_max_results_is_required(value: int | None, message: str) -> None:
    assert rejected(experiment_max_results, value).message == message
    assert experiment_max_results(25) == 25


def test_page_of_cuts_the_extra_row_into_a_token() -> None:
    rows, token = page_of(["a", "b", "c"], max_results=2, offset=4)
    assert rows == ["a", "b"]
    assert token is not None and decode_offset(token) == 6
    assert page_of(["a", "b"], max_results=2, offset=4) == (["a", "b"], None)
    assert page_of([], max_results=2, offset=0) == ([], None)


# ---------------------------------------------------------------- differential check

# MLflow 3.17.2's own parser (mlflow-skinny is a dev dependency); its functions are untyped.
MLFLOW_SEARCH: Any = SearchUtils


def _sorted_sets(message: str) -> str:
    return re.sub(
        r"\{[^{}]*\}", lambda m: "{" + ", ".join(sorted(m.group()[1:-1].split(", "))) + "}", message
    )


def _mlflow_parse(filter_string: str) -> Expected | str:
    """MLflow's parse of the same input: the clauses in our shape, or its message (sets sorted)."""
    try:
        parsed = MLFLOW_SEARCH.parse_search_filter(filter_string)
    except MlflowException as exc:
        return _sorted_sets(str(exc.message))
    except ValueError:  # "run_id IN (a)": a 500 in MLflow, our 400
        return []
    entities = {e.value: e for e in Entity}
    out: Expected = []
    for c in parsed:
        entity = entities[c["type"]]
        key = MLFLOW_SEARCH.translate_key_alias(c["key"]) if entity is A else c["key"]
        value = float(c["value"]) if entity is M else c["value"]
        out.append((entity, key, str(c["comparator"]).upper(), value))
    return out


def test_accepted_filters_parse_alike_in_mlflow() -> None:
    for filter_string, expected in RUN_ACCEPTS:
        assert _mlflow_parse(filter_string) == expected, filter_string


def test_parse_errors_match_mlflow() -> None:
    """Every rejection MLflow's parser makes is ours too, word for word. The remaining rows are
    the store's comparator checks (MLflow's parser lets them through) and one input MLflow
    crashes on."""
    compared = 0
    for filter_string, message in RUN_REJECTS:
        theirs = _mlflow_parse(filter_string)
        if isinstance(theirs, str):
            assert theirs == message, filter_string
            compared += 1
    assert compared >= 45
