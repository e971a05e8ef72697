"""The search SQL compilers (api/runs/search.py, api/experiments/search.py, api/search/sql.py).

These tests pin the statement shape and its parameters. The behaviour each shape stands for was
checked once against a real PostgreSQL 15 with the schema of schemas/sql/0001_init.sql: 230 runs
with NaN, ±1.8e308 and missing metrics, mixed-case and Unicode params/tags/names, tied start
times and NULL end times, searched with 60 filters x 19 orderings x 3 view types at page sizes
7, 50 and 1000 (pages chained through their tokens), and the concatenated pages compared with
MLflow 3.17.2's in-memory ``SearchUtils.filter``/``sort`` on the same runs: identical in all
1515 cases; likewise 529 experiment searches against ``SearchExperimentsUtils``. On 25,000
runs in one experiment the default order is an index scan of ``runs_by_experiment`` that stops
after LIMIT rows (< 1 ms); metric-ordered pages took about 20 ms then. Metric-ordered pages are
now segmented (api/runs/search.py ``_metric_first``): tests/integration/test_run_search_order.py
checks their pages against MLflow's rule on PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from api.experiments.search import compile_experiment_search
from api.runs.search import compile_run_search
from api.search.filter import Clause, Entity, Value
from api.search.order import OrderKey, parse_experiment_order_by, parse_run_order_by
from api.search.request import ViewType
from api.search.rules import parse_experiment_filter, parse_run_filter
from api.search.sql import Query
from schemas.mlflow_errors import MlflowError

ACTIVE = ViewType.ACTIVE_ONLY
DEFAULT_TAIL = " ORDER BY r.start_time DESC, r.run_uuid LIMIT $3::bigint OFFSET $4::bigint"


def runs_query(
    filter_string: str = "",
    order_by: tuple[str, ...] = (),
    experiment_ids: tuple[str, ...] = ("1",),
    view_type: ViewType = ACTIVE,
    max_results: int = 100,
    offset: int = 0,
    datasets_available: bool = False,
) -> Query:
    return compile_run_search(
        experiment_ids,
        parse_run_filter(filter_string),
        view_type,
        parse_run_order_by(order_by),
        max_results,
        offset,
        datasets_available=datasets_available,
    )


def where_of(query: Query) -> str:
    """The filter predicates after the experiment and lifecycle scope."""
    match = re.search(r"r\.lifecycle_stage = ANY\(\$\d+::text\[\]\) AND (.*) ORDER BY", query.sql)
    assert match, query.sql
    return match.group(1)


def order_of(query: Query) -> str:
    match = re.search(r" ORDER BY (.*) LIMIT ", query.sql)
    assert match, query.sql
    return match.group(1)


def placeholders_are_dense(query: Query) -> bool:
    used = {int(n) for n in re.findall(r"\$(\d+)::", query.sql)}
    return used == set(range(1, len(query.args) + 1))


# ---------------------------------------------------------------- scope, paging


def test_default_search_is_the_index_order() -> None:
    """Default order start_time DESC, run_id ASC: exactly runs_by_experiment (experiment_id,
    start_time DESC, run_uuid), so PostgreSQL reads the index and stops after LIMIT rows."""
    query = runs_query()
    assert query.sql == (
        "SELECT r.run_uuid FROM runs r WHERE r.experiment_id = $1::bigint"
        " AND r.lifecycle_stage = ANY($2::text[])" + DEFAULT_TAIL
    )
    assert query.args == (1, ["active"], 101, 0)


def test_fetches_one_row_more_than_a_page() -> None:
    """max_results + 1 rows decide whether a next page token exists; the token is the offset."""
    query = runs_query(max_results=50000, offset=300)
    assert query.args[-2:] == (50001, 300)


def test_several_experiments_use_an_array() -> None:
    query = runs_query(experiment_ids=("1", "02", " 3"))
    assert "r.experiment_id = ANY($1::bigint[])" in query.sql
    assert query.args[0] == [1, 2, 3]


def test_no_experiment_matches_nothing() -> None:
    """MLflow answers an empty experiment_ids with no runs; ANY of an empty array is false."""
    query = runs_query(experiment_ids=())
    assert "r.experiment_id = ANY($1::bigint[])" in query.sql
    assert query.args[0] == []


def test_experiment_ids_must_be_integers() -> None:
    with pytest.raises(MlflowError) as caught:
        runs_query(experiment_ids=("1", "abc"))
    assert caught.value.message == (
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    )


@pytest.mark.parametrize(
    ("view_type", "stages"),
    [
        (ViewType.ACTIVE_ONLY, ["active"]),
        (ViewType.DELETED_ONLY, ["deleted"]),
        (ViewType.ALL, ["active", "deleted"]),
    ],
)
def test_view_type_selects_lifecycle_stages(view_type: ViewType, stages: list[str]) -> None:
    assert runs_query(view_type=view_type).args[1] == stages


# ---------------------------------------------------------------- filters

METRIC_PROBE = (
    "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = $3::text"
)


@pytest.mark.parametrize("op", ["=", "<", "<=", ">", ">="])
def test_metric_comparison_never_matches_nan(op: str) -> None:
    """Compares the latest value; a NaN (stored as 0 with is_nan) satisfies none of these,
    and a run without the metric has no row to satisfy them (verified on PostgreSQL)."""
    query = runs_query(f"metrics.acc {op} 0")
    assert where_of(query) == f"{METRIC_PROBE} AND m.value {op} $4::float8 AND NOT m.is_nan)"
    assert query.args[2:4] == ("acc", 0.0)


def test_metric_not_equal_always_matches_nan() -> None:
    query = runs_query("metrics.`my metric` != 0.5")
    assert where_of(query) == f"{METRIC_PROBE} AND (m.value <> $4::float8 OR m.is_nan))"
    assert query.args[2:4] == ("my metric", 0.5)


def test_metric_values_bind_as_doubles() -> None:
    assert runs_query("metrics.acc > 1").args[3] == 1.0
    assert runs_query("metrics.acc = 1.7976931348623157e308").args[3] == 1.7976931348623157e308


@pytest.mark.parametrize(("prefix", "table"), [("params", "params"), ("tags", "tags")])
def test_param_and_tag_comparisons(prefix: str, table: str) -> None:
    """``=``/``!=`` are case-sensitive; a run without the key matches neither (verified)."""
    probe = f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = $3::text"
    query = runs_query(f"{prefix}.`a b` = 'v'")
    assert where_of(query) == f"{probe} AND x.value = $4::text)"
    assert query.args[2:4] == ("a b", "v")
    assert where_of(runs_query(f"{prefix}.k != 'v'")) == f"{probe} AND x.value <> $4::text)"


@pytest.mark.parametrize("op", ["LIKE", "ILIKE"])
def test_like_has_no_escape_character(op: str) -> None:
    """LIKE is case-sensitive and ILIKE is not; only % and _ are wildcards. PostgreSQL's default
    backslash escape is turned off to match MLflow's reference store: on PostgreSQL 'a\\b'
    LIKE 'a\\b' matched the value a\\b, and 'x\\_y' matched nothing (verified)."""
    query = runs_query(f"params.opt {op} 'a\\b%'")
    assert where_of(query).endswith(f"AND x.value {op} $4::text ESCAPE '')")
    assert query.args[3] == "a\\b%"


@pytest.mark.parametrize(("comparator", "negation"), [("IS NULL", "NOT "), ("IS NOT NULL", "")])
def test_is_null_probes_the_key(comparator: str, negation: str) -> None:
    query = runs_query(f"tags.`mlflow.parentRunId` {comparator}")
    assert where_of(query) == (
        f"{negation}EXISTS (SELECT 1 FROM tags x WHERE x.run_uuid = r.run_uuid AND x.key = $3::text)"
    )
    assert query.args[2] == "mlflow.parentRunId"


@pytest.mark.parametrize(
    ("filter_string", "predicate", "value"),
    [
        ("run_name = 'r'", "r.name = $3::text", "r"),  # runs.name, kept equal to mlflow.runName
        ("`Run Name` ILIKE 'r%'", "r.name ILIKE $3::text ESCAPE ''", "r%"),
        ("attributes.status != 'RUNNING'", "r.status <> $3::text", "RUNNING"),
        ("user_id LIKE 'a%'", "r.user_id LIKE $3::text ESCAPE ''", "a%"),
        ("artifact_uri = 'u'", "r.artifact_uri = $3::text", "u"),
        ("run_id = 'abc'", "r.run_uuid = $3::text", "abc"),
        ("run_id IN ('a', 'b')", "r.run_uuid = ANY($3::text[])", ["a", "b"]),
        ("run_id NOT IN ('a')", "r.run_uuid <> ALL($3::text[])", ["a"]),
        ("start_time > 5", "r.start_time > $3::bigint", 5),
        ("created <= 2.5", "r.start_time <= $3::float8", 2.5),
        ("end_time != 0", "r.end_time <> $3::bigint", 0),
        # Beyond bigint: compared as numeric instead of failing to encode.
        ("end_time < 99999999999999999999", "r.end_time < $3::numeric", "99999999999999999999"),
    ],
)
def test_attribute_predicates(filter_string: str, predicate: str, value: Value | list[str]) -> None:
    query = runs_query(filter_string)
    assert where_of(query) == predicate
    assert query.args[2] == value


def test_clauses_are_anded_in_order() -> None:
    query = runs_query("metrics.acc > 0 AND params.opt ILIKE 'adam' AND tags.team IS NOT NULL")
    parts = where_of(query).split(" AND EXISTS")
    assert len(parts) == 3
    assert query.args[2:] == ("acc", 0.0, "opt", "adam", "team", 101, 0)
    assert placeholders_are_dense(query)


def test_user_text_never_reaches_the_statement() -> None:
    text = "x'); DROP TABLE runs; --"
    query = runs_query(f'params."{text}" = "{text}" AND run_name LIKE "{text}"', ("tags.`a'b`",))
    assert "DROP" not in query.sql
    assert query.args.count(text) == 3
    assert placeholders_are_dense(query)


def test_dataset_filters_wait_for_their_tables() -> None:
    with pytest.raises(MlflowError) as caught:
        runs_query("datasets.digest = 'd'")
    assert (caught.value.code, caught.value.message) == (
        "INVALID_PARAMETER_VALUE",
        "Filtering runs by dataset ('datasets.digest') is not supported by this server yet.",
    )


@pytest.mark.parametrize(
    ("filter_string", "test"),
    [
        ("datasets.name = 'd'", "d.name = $3::text"),
        ("datasets.digest IN ('a', 'b')", "d.digest = ANY($3::text[])"),
        ("datasets.context LIKE 'tr%'", "i.context LIKE $3::text ESCAPE ''"),
    ],
)
def test_dataset_filters_once_available(filter_string: str, test: str) -> None:
    """Not run against PostgreSQL yet: the tables do not exist."""
    query = runs_query(filter_string, datasets_available=True)
    assert where_of(query) == (
        "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid"
        f" WHERE i.run_uuid = r.run_uuid AND {test})"
    )


# ---------------------------------------------------------------- ordering


METRIC_JOIN = " LEFT JOIN latest_metrics o1 ON o1.run_uuid = r.run_uuid AND o1.key = $1::text"
SCOPE = " WHERE r.experiment_id = $2::bigint AND r.lifecycle_stage = ANY($3::text[])"
RANK = "CASE WHEN o1.is_nan THEN 1 WHEN o1.run_uuid IS NULL THEN 2 ELSE 0 END"


def test_metric_order_is_real_values_then_nan_then_missing() -> None:
    """Real values first in either direction, then NaN, then runs without the metric (verified
    for ASC and DESC, with ±1.8e308 values present). Two segments: runs with a real value in
    value order, which PostgreSQL reads from latest_metrics_by_value and stops; then, only if
    those cannot fill the page (a one-time filter on their count), the rest by rank. Pages
    are compared with MLflow's rule in tests/integration/test_run_search_order.py."""
    query = runs_query(order_by=("metrics.acc DESC",))
    order = "o1.value DESC, r.start_time DESC, r.run_uuid"
    valued = (
        f"SELECT r.run_uuid, row_number() OVER (ORDER BY {order}) AS pos FROM runs r"
        f"{METRIC_JOIN}{SCOPE} AND NOT o1.is_nan ORDER BY {order} LIMIT $4::bigint"
    )
    rest = (
        f"SELECT r.run_uuid, row_number() OVER (ORDER BY {RANK}, {order}) AS pos FROM runs r"
        f"{METRIC_JOIN}{SCOPE} AND (o1.run_uuid IS NULL OR o1.is_nan)"
        f" AND (SELECT count(*) FROM valued) < $4::bigint ORDER BY {RANK}, {order} LIMIT $4::bigint"
    )
    assert query.sql == (
        f"WITH valued AS MATERIALIZED ({valued}) SELECT run_uuid FROM"
        " (SELECT 0 AS segment, pos, run_uuid FROM valued"
        f" UNION ALL (SELECT 1, pos, run_uuid FROM ({rest}) rest)) page"
        " ORDER BY segment, pos LIMIT $5::bigint OFFSET $6::bigint"
    )
    assert query.args == ("acc", 1, ["active"], 101, 101, 0)


def test_each_segment_reads_up_to_the_end_of_the_page() -> None:
    """Page 5 of 50 needs the first 251 runs of a segment: offset + max_results + 1."""
    query = runs_query(order_by=("metrics.acc",), max_results=50, offset=200)
    assert "ORDER BY o1.value, r.start_time DESC, r.run_uuid LIMIT $4::bigint" in query.sql
    assert query.args[3:] == (251, 51, 200)


@pytest.mark.parametrize(("op", "direction"), [("<", " DESC"), (">=", ""), ("=", " DESC")])
def test_filter_on_the_leading_metric_is_one_index_range(op: str, direction: str) -> None:
    """Such a filter rejects NaN and missing values, so the page is the first segment alone,
    and it tests the joined row: the walk starts at the filter's bound. The bound is an
    InitPlan so that PostgreSQL does not estimate the range from a histogram of every key."""
    query = runs_query(f"metrics.loss {op} 0.5", (f"metrics.loss{direction}",))
    assert query.sql == (
        f"SELECT r.run_uuid FROM runs r{METRIC_JOIN}{SCOPE}"
        f" AND o1.value {op} (SELECT $4::float8) AND NOT o1.is_nan"
        f" ORDER BY o1.value{direction}, r.start_time DESC, r.run_uuid"
        " LIMIT $5::bigint OFFSET $6::bigint"
    )
    assert query.args == ("loss", 1, ["active"], 0.5, 101, 0)


def test_not_equal_on_the_leading_metric_keeps_the_nan_segment() -> None:
    """A NaN satisfies "!=", so NaN runs still follow the real values."""
    query = runs_query("metrics.loss != 0.5", ("metrics.loss",))
    assert query.sql.startswith("WITH valued AS MATERIALIZED")
    assert query.sql.count(" AND (o1.value <> (SELECT $4::float8) OR o1.is_nan)") == 2
    assert "latest_metrics m" not in query.sql
    assert placeholders_are_dense(query)


def test_filter_on_another_metric_stays_a_probe() -> None:
    query = runs_query("metrics.acc > 0", ("metrics.loss DESC",))
    assert query.sql.count(f"{METRIC_PROBE.replace('$3', '$4')} AND m.value > $5::float8") == 2
    assert query.sql.startswith("WITH valued AS MATERIALIZED")
    assert query.args == ("loss", 1, ["active"], "acc", 0.0, 101, 101, 0)


@pytest.mark.parametrize(("item", "table"), [("params.lr", "params"), ("tags.team DESC", "tags")])
def test_param_and_tag_order_is_code_point_with_missing_last(item: str, table: str) -> None:
    """Strings sort by code point (COLLATE "C": 'Adam' < 'adam' < 'é') whatever the cluster
    locale, as MLflow's SQLite and in-memory stores do; missing values last both ways."""
    query = runs_query(order_by=(item,))
    assert f" LEFT JOIN {table} o1 ON o1.run_uuid = r.run_uuid AND o1.key = $1::text" in query.sql
    direction = " DESC" if item.endswith("DESC") else ""
    assert order_of(query) == (
        f'o1.value IS NULL, o1.value COLLATE "C"{direction}, r.start_time DESC, r.run_uuid'
    )


@pytest.mark.parametrize(
    ("items", "order"),
    [
        (("attributes.start_time DESC",), "r.start_time DESC, r.run_uuid"),
        (("created",), "r.start_time, r.run_uuid"),
        (("end_time DESC",), "r.end_time IS NULL, r.end_time DESC, r.start_time DESC, r.run_uuid"),
        (("run_name",), 'r.name COLLATE "C", r.start_time DESC, r.run_uuid'),
        (("run_id DESC",), 'r.run_uuid COLLATE "C" DESC, r.start_time DESC, r.run_uuid'),
        (
            ("status", "user_id DESC", "artifact_uri"),
            'r.status COLLATE "C", r.user_id COLLATE "C" DESC, r.artifact_uri COLLATE "C",'
            " r.start_time DESC, r.run_uuid",
        ),
    ],
)
def test_attribute_order(items: tuple[str, ...], order: str) -> None:
    """start_time (or an alias) replaces the implicit start_time DESC; run_id ASC always ends
    the order. The UI's "attributes.start_time DESC" is the index order again."""
    assert order_of(runs_query(order_by=items)) == order


def test_several_joined_orderings_get_their_own_aliases() -> None:
    query = runs_query("metrics.acc > 0", ("tags.team DESC", "metrics.loss", "params.opt"))
    assert query.sql.count(" LEFT JOIN ") == 3
    assert [a for a in query.args if a in ("team", "loss", "opt", "acc")] == [
        "team",
        "loss",
        "opt",
        "acc",
    ]
    assert order_of(query).startswith('o1.value IS NULL, o1.value COLLATE "C" DESC, CASE')
    assert 'o3.value COLLATE "C", r.start_time DESC, r.run_uuid' in order_of(query)
    assert placeholders_are_dense(query)


def test_compiler_takes_parsed_clauses() -> None:
    """Callers may build clauses directly; the compiler trusts their validation."""
    clause = Clause(Entity.TAG, "k", "=", "v")
    order = OrderKey(Entity.METRIC, "m", ascending=True)
    query = compile_run_search(["7"], [clause], ViewType.ALL, [order], 10, 20)
    assert query.args == ("m", 7, ["active", "deleted"], "k", "v", 31, 11, 20)


# ---------------------------------------------------------------- experiments


def experiments_query(
    filter_string: str = "",
    order_by: tuple[str, ...] = (),
    view_type: ViewType = ACTIVE,
) -> Query:
    return compile_experiment_search(
        parse_experiment_filter(filter_string),
        view_type,
        parse_experiment_order_by(order_by),
        25,
        50,
    )


def test_experiment_default_search() -> None:
    """MLflow's SQL store default: creation_time DESC, experiment_id ASC."""
    query = experiments_query()
    assert query.sql == (
        "SELECT e.experiment_id FROM experiments e WHERE e.lifecycle_stage = ANY($1::text[])"
        " ORDER BY e.creation_time DESC, e.experiment_id LIMIT $2::bigint OFFSET $3::bigint"
    )
    assert query.args == (["active"], 26, 50)


@pytest.mark.parametrize(
    ("items", "order"),
    [
        (("last_update_time DESC",), "e.last_update_time DESC, e.experiment_id DESC"),
        (("name",), 'e.name COLLATE "C", e.experiment_id DESC'),
        (("experiment_id DESC", "name"), 'e.experiment_id DESC, e.name COLLATE "C"'),
        (
            ("name", "name DESC"),
            'e.name COLLATE "C", e.name COLLATE "C" DESC, e.experiment_id DESC',
        ),
    ],
)
def test_experiment_order_appends_experiment_id_desc(items: tuple[str, ...], order: str) -> None:
    sql = experiments_query(order_by=items).sql
    assert sql.split(" ORDER BY ")[1].split(" LIMIT ")[0] == order


@pytest.mark.parametrize(
    ("filter_string", "predicate", "args"),
    [
        ("name LIKE 'x\\_y%'", "e.name LIKE $2::text ESCAPE ''", ["x\\_y%"]),
        ("name != 'a'", "e.name <> $2::text", ["a"]),
        ("experiment_id = '007'", "e.experiment_id = $2::bigint", [7]),
        ("experiment_id IN ('1', '2')", "e.experiment_id = ANY($2::bigint[])", [[1, 2]]),
        ("experiment_id NOT IN ('1')", "e.experiment_id <> ALL($2::bigint[])", [[1]]),
        ("creation_time >= 100", "e.creation_time >= $2::bigint", [100]),
        (
            "tags.`mlflow.experiment.isGateway` IS NULL",
            "NOT EXISTS (SELECT 1 FROM experiment_tags x WHERE x.experiment_id = e.experiment_id"
            " AND x.key = $2::text)",
            ["mlflow.experiment.isGateway"],
        ),
        (
            "tags.team ILIKE 'core'",
            "EXISTS (SELECT 1 FROM experiment_tags x WHERE x.experiment_id = e.experiment_id"
            " AND x.key = $2::text AND x.value ILIKE $3::text ESCAPE '')",
            ["team", "core"],
        ),
    ],
)
def test_experiment_predicates(filter_string: str, predicate: str, args: list[object]) -> None:
    query = experiments_query(filter_string, view_type=ViewType.ALL)
    assert f"e.lifecycle_stage = ANY($1::text[]) AND {predicate} ORDER BY" in query.sql
    assert list(query.args) == [["active", "deleted"], *args, 26, 50]
