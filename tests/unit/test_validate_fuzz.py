"""Property tests: whatever a client sends, decoding and validation either return a value the
writer and PostgreSQL can store or raise MlflowError with a 400; no other exception escapes.

Two kinds of input. Hypothesis strategies (a recursive JSON strategy, near-valid and valid
batches) give structure that shrinks to a minimal failing document. Volume comes from seeded
generators: a deterministic generator expands each seed of a run (a random start, then
consecutive) into a document, in a plain loop. Hypothesis drew those seeds once, at ~0.75 ms
of bookkeeping an input against 0.05-0.3 ms for building and checking it, without being able
to shrink what a seed builds. A failure names the seed; the generator called with
``random.Random(seed)`` rebuilds the input.

BUDGETS adds up to more than 100,000 inputs; each property asserts it ran its whole budget and
the module prints the total at the end ("fuzz: N inputs").
"""

import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ingest.validate import (
    LogBatch,
    LogMetric,
    LogParam,
    SetTag,
    validate_delete_tag,
    validate_log_batch,
    validate_log_metric,
    validate_log_param,
    validate_set_tag,
)
from schemas import wire
from schemas.mlflow_errors import MlflowError
from schemas.mlflow_names import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH
from schemas.protojson import parse_json_body, query_to_dict

BUDGETS = {
    "recursive_documents": 1_500,
    "near_valid_batches": 1_000,
    "valid_batches": 700,
    "seeded_documents": 31_000,
    "seeded_batches": 30_000,
    "seeded_single_calls": 22_800,
    "seeded_bodies": 10_000,
    "seeded_queries": 5_000,
}
Doc = dict[str, Any]
VALIDATORS: list[Callable[[Doc], object]] = [
    validate_log_batch,
    validate_log_metric,
    validate_log_param,
    validate_set_tag,
    validate_delete_tag,
]
FIELDS = ["run_id", "run_uuid", "runId", "key", "value", "timestamp", "step", "metrics", "params"]
FIELDS += ["tags", "model_id", "dataset_name", "dataset_digest"]
HOSTILE_TEXT = [
    "",
    " ",
    "a#b",
    "../x",
    "a/",
    "/abs",
    "..x",
    ".",
    "a//b",
    "x" * 251,
    "a\x00b",
    "\x00",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "loss\n",
    "NaN",
    "nan",
    "-nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "1.5",
    "1e2",
    " 5",
    "5 ",
    "+5",
    "-0",
    "0x10",
    "1_0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e30",
    "true",
    "FALSE",
    "é",
    "日本",
    "null",
    "a" * 257,
    "v" * 8001,
]
INT_EDGES = [0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, 10**400]
FLOAT_EDGES = [0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 1e20, 5.0, 1.7976931348623157e308]
NAMES = ["loss", "acc", "train/loss", "a b:c-d.e", "mlflow.runName", "k" * 250, "k" * 251]
RUN_IDS = ["0123456789abcdef0123456789abcdef", "r", "A-b_c", "a" * 256, "a" * 257, "-a", "a\n"]

# -- checks -------------------------------------------------------------------------------------


def _outcome(validate: Callable[[Doc], object], doc: Doc) -> object | None:
    """The validator's value, or None after a 400; any other exception fails the property."""
    try:
        result = validate(doc)
    except MlflowError as error:
        assert error.status == 400, (doc, error.to_json())
        assert error.code == "INVALID_PARAMETER_VALUE", (doc, error.to_json())
        return None
    _assert_storable(result)
    return result


def _assert_storable(result: object) -> None:
    """What ingest accepts, the wire contract and PostgreSQL text accept too."""
    if isinstance(result, LogBatch):
        decoded = wire.decode(wire.encode(result.run_id, "e", 0, result.metrics))
        assert decoded.metrics == [wire.MetricPoint(*p) for p in result.metrics]
        assert all(_fits(k, v, MAX_PARAM_VAL_LENGTH) for k, v in result.params)
        assert all(_fits(k, v, MAX_TAG_VAL_LENGTH) for k, v in result.tags)
        assert len({key for key, _ in result.tags}) == len(result.tags)
    elif isinstance(result, LogMetric):
        wire.decode(wire.encode(result.run_id, "e", 0, [result.point]))
    elif isinstance(result, LogParam | SetTag):
        assert _fits(result.key, result.value, MAX_TAG_VAL_LENGTH)


def _fits(key: str, value: str, limit: int) -> bool:
    storable = "\x00" not in value and value == value.encode().decode()
    return len(key) <= MAX_ENTITY_KEY_LENGTH and len(value) <= limit and storable


def _all_validators(doc: Doc) -> None:
    for validate in VALIDATORS:
        _outcome(validate, doc)


def _body_check(raw: bytes, content_type: str | None, method: str) -> None:
    try:
        doc = parse_json_body(raw, content_type, method)
    except MlflowError as error:
        assert error.status == 400, (raw, error.to_json())
        return
    assert isinstance(doc, dict)
    _all_validators(doc)


# -- running and counting -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tried(pytestconfig: pytest.Config) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    # Past output capture (as capsys.disabled() does), so the count shows in every run.
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfuzz: {sum(counts.values())} inputs over {len(counts)} properties"
            )


def _run(
    name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], object], tried: Counter[str]
) -> None:
    @settings(
        max_examples=BUDGETS[name],
        deadline=None,
        database=None,  # no example database: a failure prints its reproduction instead
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def prop(example: Any) -> None:
        tried[name] += 1
        check(example)

    prop()
    assert tried[name] >= BUDGETS[name]


def _run_seeded(
    name: str,
    generate: Callable[[random.Random], Any],
    check: Callable[[Any], object],
    tried: Counter[str],
) -> None:
    """``check`` each input the generator builds from ``BUDGETS[name]`` seeds, in a plain loop
    (why not through Hypothesis: the module's docstring). A failure names its seed."""
    first = random.SystemRandom().randrange(2**63)
    for seed in range(first, first + BUDGETS[name]):
        try:
            check(generate(random.Random(seed)))
        except Exception as exc:
            raise AssertionError(f"{name}: the input of seed {seed} fails") from exc
        tried[name] += 1
    assert tried[name] >= BUDGETS[name]


def test_budgets_add_up_to_100k() -> None:
    assert sum(BUDGETS.values()) >= 100_000


# -- Hypothesis strategies ----------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(HOSTILE_TEXT)
    | st.sampled_from(INT_EDGES)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)


def test_recursive_documents(tried: Counter[str]) -> None:
    _run("recursive_documents", documents, _all_validators, tried)


def _field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return valid | json_leaves


near_metrics = st.fixed_dictionaries(
    {
        "key": _field(st.sampled_from(NAMES)),
        "value": _field(st.floats()),
        "timestamp": _field(st.integers(0, 2**63 - 1)),
    },
    optional={"step": _field(st.integers(-(2**63), 2**63 - 1))},
)
near_pairs = st.fixed_dictionaries(
    {"key": _field(st.sampled_from(NAMES))}, optional={"value": json_leaves}
)
near_batches = st.fixed_dictionaries(
    {"run_id": _field(st.sampled_from(RUN_IDS))},
    optional={
        "metrics": st.lists(near_metrics | json_leaves, max_size=4),
        "params": st.lists(near_pairs, max_size=4),
        "tags": st.lists(near_pairs, max_size=4),
    },
)


def test_near_valid_batches(tried: Counter[str]) -> None:
    _run("near_valid_batches", near_batches, lambda doc: _outcome(validate_log_batch, doc), tried)


def _as_pairs(params: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in params.items()]  # keys unique


storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
valid_names = st.text(
    st.characters(categories=["L", "Nd"]) | st.sampled_from("_-:"), min_size=1, max_size=30
)
valid_batches = st.fixed_dictionaries(
    {
        "run_id": st.text("abcdef0123456789", min_size=1, max_size=32),
        "metrics": st.lists(
            st.fixed_dictionaries(
                {
                    "key": valid_names,
                    "value": st.floats()
                    | st.integers(-(2**80), 2**80)
                    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5"]),
                    "timestamp": st.integers(0, 2**63 - 1) | st.integers(0, 10**6).map(str),
                },
                optional={"step": st.integers(-(2**63), 2**63 - 1)},
            ),
            max_size=5,
        ),
        "params": st.dictionaries(valid_names, storable_text, max_size=4).map(_as_pairs),
        "tags": st.lists(
            st.fixed_dictionaries({"key": valid_names, "value": storable_text}), max_size=6
        ),
    }
)


def _valid_check(doc: Doc) -> None:
    result = _outcome(validate_log_batch, doc)
    assert isinstance(result, LogBatch), doc
    assert [key for key, *_ in result.metrics] == [m["key"] for m in doc["metrics"]]
    assert all(math.isfinite(value) for _, value, *_ in result.metrics)
    assert result.params == [(p["key"], p["value"]) for p in doc["params"]]
    assert dict(result.tags) == {t["key"]: t["value"] for t in doc["tags"]}


def test_valid_batches_are_accepted(tried: Counter[str]) -> None:
    _run("valid_batches", valid_batches, _valid_check, tried)


# -- seeded generators --------------------------------------------------------------------------


def _text(r: random.Random) -> str:
    if r.random() < 0.5:
        return r.choice(HOSTILE_TEXT)
    # ASCII, Latin-1, CJK, surrogates and controls (NUL included).
    low, high = r.choice([(32, 127), (0, 32), (160, 400), (0x4E00, 0x4E40), (0xD800, 0xE000)])
    return "".join(chr(r.randrange(low, high)) for _ in range(r.randrange(6)))


def _scalar(r: random.Random) -> Any:
    kind = r.randrange(7)
    if kind == 0:
        return None
    if kind == 1:
        return r.random() < 0.5
    if kind == 2:
        return r.choice(INT_EDGES) if r.random() < 0.5 else r.randrange(-(2**70), 2**70)
    if kind == 3:
        return r.choice(FLOAT_EDGES) if r.random() < 0.5 else r.uniform(-1e9, 1e9)
    return _text(r)


def _json(r: random.Random, depth: int = 0) -> Any:
    kind = r.randrange(10 if depth < 3 else 7)
    if kind < 7:
        return _scalar(r)
    if kind < 9:
        return [_json(r, depth + 1) for _ in range(r.randrange(4))]
    return _object(r, depth + 1)


def _object(r: random.Random, depth: int = 0) -> Doc:
    keys = [r.choice(FIELDS) if r.random() < 0.8 else _text(r) for _ in range(r.randrange(6))]
    return {key: _json(r, depth) for key in keys}


def _mutate(r: random.Random, item: Doc) -> Doc:
    """A valid item with up to two fields removed, emptied or replaced by any JSON value."""
    for _ in range(r.randrange(3)):
        field = r.choice([*item, "extra"]) if item else "key"
        choice = r.randrange(4)
        if choice == 0:
            item.pop(field, None)
        else:
            item[field] = [None, "", _scalar(r), _json(r)][choice]
    return item


def _metric(r: random.Random) -> Doc:
    values: list[Any] = ["NaN", "Infinity", "-Infinity", "nan", "1e3", -0.0, True, 0.5]
    metric = {
        "key": r.choice(NAMES),
        "value": r.choice(values),
        "timestamp": r.choice([0, 1000, "1000", 2**63 - 1]),
    }
    if r.random() < 0.5:
        metric["step"] = r.choice([0, -5, "7", 5.0, 2**63 - 1, -(2**63)])
    if r.random() < 0.1:
        metric["dataset_name"], metric["dataset_digest"] = "d", "abc"
    return _mutate(r, metric) if r.random() < 0.3 else metric


def _pair(r: random.Random) -> Doc:
    pair = {
        "key": r.choice(NAMES[:5]) + str(r.randrange(200)),
        "value": r.choice(["", "v", "x" * 9000]),
    }
    return _mutate(r, pair) if r.random() < 0.3 else pair


def _items(r: random.Random, make: Callable[[random.Random], Doc], big: bool) -> Any:
    shape = r.randrange(25)
    if shape < 3:
        return _json(r)  # wrong type for a repeated field, or a list of anything
    if shape == 3 and big:  # cross the 100/1000 limits with copies (rarely: 6 ms to validate)
        return [make(r)] * r.choice([99, 100, 101, 999, 1000, 1001])
    return [make(r) for _ in range(r.randrange(5))]


def _batch(r: random.Random, big: bool = True) -> Doc:
    doc: Doc = {"run_id": r.choice(RUN_IDS) if r.random() < 0.8 else _scalar(r)}
    for name, make in (("metrics", _metric), ("params", _pair), ("tags", _pair)):
        if r.random() < 0.7:
            doc[name] = _items(r, make, big)
    return doc


def _single(r: random.Random) -> Doc:
    doc = _metric(r)
    doc[r.choice(["run_id", "run_id", "run_uuid", "runId"])] = (
        r.choice(RUN_IDS) if r.random() < 0.8 else _scalar(r)
    )
    if r.random() < 0.3:
        doc["value"] = _text(r)
    return _mutate(r, doc) if r.random() < 0.3 else doc


def _body(r: random.Random) -> tuple[bytes, str | None, str]:
    doc = _batch(r, big=False) if r.random() < 0.5 else _single(r)
    text = json.dumps(doc)  # NaN/Infinity literals included, as Python clients send them
    forms = [text, json.dumps(text), text[: r.randrange(len(text) + 1)], json.dumps(_json(r))]
    raw = r.choice(forms).encode("utf-8", "surrogatepass")
    if r.random() < 0.1:
        raw = bytes(r.randrange(256) for _ in range(r.randrange(40)))
    content_type = r.choice(
        [None, "", "application/json", "application/json; charset=utf-8", "text/plain"]
    )
    return raw, content_type, r.choice(["POST", "PUT", "GET", "DELETE", "PATCH"])


def _query(r: random.Random) -> list[tuple[str, str]]:
    return [(r.choice(FIELDS), _text(r)) for _ in range(r.randrange(8))]


def test_seeded_documents(tried: Counter[str]) -> None:
    _run_seeded("seeded_documents", _object, _all_validators, tried)


def test_seeded_batches(tried: Counter[str]) -> None:
    _run_seeded("seeded_batches", _batch, lambda doc: _outcome(validate_log_batch, doc), tried)


def test_seeded_single_calls(tried: Counter[str]) -> None:
    _run_seeded("seeded_single_calls", _single, _all_validators, tried)


def test_seeded_bodies(tried: Counter[str]) -> None:
    _run_seeded("seeded_bodies", _body, lambda args: _body_check(*args), tried)


def test_seeded_queries(tried: Counter[str]) -> None:
    repeated = frozenset({"metrics", "params", "tags"})
    _run_seeded(
        "seeded_queries",
        _query,
        lambda pairs: _all_validators(query_to_dict(pairs, repeated)),
        tried,
    )
