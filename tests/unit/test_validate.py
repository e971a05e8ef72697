"""Name rules (schemas/mlflow_names.py) and the ingest write validators (ingest/validate.py).

Every expected error is MLflow 3.17.2's code and text, checked against its handlers and SQL store
(``mlflow/server/handlers.py``, ``mlflow/utils/validation.py``), except where a comment says the
case is one MLflow answers with a 500 or a silently stored default.
"""

import math
from typing import Any

import pytest

from ingest.validate import (
    DeleteTag,
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
from schemas.mlflow_errors import MlflowError
from schemas.mlflow_names import (
    truncate_param_value,
    truncate_tag_value,
    validate_experiment_id,
    validate_experiment_name,
    validate_key,
    validate_length,
    validate_run_id_format,
)
from schemas.wire import DOUBLE_MAX

DOCS = "See the API docs for more information about request parameters."
RUN = "0123456789abcdef0123456789abcdef"
BAD_CHARS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ),"
    " colon(:) and slashes (/)."
)


def bad_chars(label: str, shown: str) -> str:
    return f"Invalid value {shown} for parameter '{label}' supplied: {BAD_CHARS}"


def bad_path(label: str, shown: str, resolved: str) -> str:
    return (
        f"Invalid value {shown} for parameter '{label}' supplied: Names may be treated as files in"
        " certain cases, and must not resolve to other names when treated as such. This name would"
        f" resolve to {resolved}"
    )


def hint(path: str, shown: str, type_name: str) -> str:
    return f"Invalid value {shown} for parameter '{path}' supplied:  Hint: Value was of type '{type_name}'. {DOCS}"


def missing(path: str) -> str:
    return f"Missing value for required parameter '{path}'. {DOCS}"


def negative_ts(path: str, shown: str, key: str, value: str) -> str:
    return (
        f"Invalid value {shown} for parameter '{path}' supplied: metric '{key}' (value={value})."
        " Timestamp must be a nonnegative long (64-bit integer) "
    )


def error_of(call: Any, *args: Any) -> str:
    with pytest.raises(MlflowError) as caught:
        call(*args)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert caught.value.status == 400
    return caught.value.message


def metric(**fields: Any) -> dict[str, Any]:
    return {"key": "loss", "value": 0.5, "timestamp": 1000, **fields}


def batch(**fields: Any) -> dict[str, Any]:
    return {"run_id": RUN, **fields}


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "loss",
        "a b:c-d.e/f_g",
        "train/loss",
        "é",
        "日本",
        "x" * 300,
        "loss\n",
        "a.b",
        "...a"[2:],
        "_",
    ],
    ids=repr,
)
def test_valid_keys(key: str) -> None:
    validate_key(key, "name")  # length is a separate rule; "loss\n" passes MLflow's "$" anchor


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("a#b", '"a#b"'),
        ("a\x00b", '"a\\u0000b"'),
        ("a\\b", '"a\\\\b"'),
        ("\ud800", '"\\ud800"'),
        ("a\tb", '"a\\tb"'),
        ("a\n\n", '"a\\n\\n"'),
        ("a'b", '"a\'b"'),
    ],
    ids=repr,
)
def test_keys_with_bad_characters(key: str, shown: str) -> None:
    assert error_of(validate_key, key, "metrics[3].name") == bad_chars("metrics[3].name", shown)


@pytest.mark.parametrize(
    ("key", "shown", "resolved"),
    [
        ("../x", '"../x"', "'../x'"),
        ("a/../b", '"a/../b"', "'b'"),
        ("./a", '"./a"', "'a'"),
        ("a/", '"a/"', "'a'"),
        ("a//b", '"a//b"', "'a/b'"),
        ("/abs", '"/abs"', "'/abs'"),
        ("//abs", '"//abs"', "'//abs'"),
        ("..x", '"..x"', "'..x'"),
        (".", '"."', "'.'"),
        ("", '""', "'.'"),
        ("é/./x", '"\\u00e9/./x"', "'é/x'"),
    ],
    ids=repr,
)
def test_keys_that_resolve_to_other_paths(key: str, shown: str, resolved: str) -> None:
    assert error_of(validate_key, key, "key") == bad_path("key", shown, resolved)


def test_length_and_truncation() -> None:
    validate_length("Param key", 250, "k" * 250)
    assert (
        error_of(validate_length, "Param key", 250, "k" * 251)
        == "'Param key' exceeds the maximum length of 250 characters"
    )
    assert truncate_param_value("v" * 6001) == "v" * 6000
    assert truncate_tag_value("é" * 8001) == "é" * 8000  # characters, not bytes
    assert truncate_param_value("") == ""


@pytest.mark.parametrize(
    "run_id", [RUN, "a", "A-b_c", "a" * 256, "1" + "é" * 10, RUN + "\n"], ids=repr
)
def test_valid_run_id_shapes(run_id: str) -> None:
    validate_run_id_format(run_id)


@pytest.mark.parametrize(
    ("run_id", "shown"),
    [
        ("../x", '"../x"'),
        ("-abc", '"-abc"'),
        ("_abc", '"_abc"'),
        ("a" * 257, '"' + "a" * 257 + '"'),
        ("a b", '"a b"'),
        ("a\x00", '"a\\u0000"'),
        ("", '""'),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_invalid_run_id_shapes(run_id: str, shown: str) -> None:
    assert (
        error_of(validate_run_id_format, run_id)
        == f"Invalid value {shown} for parameter 'run_id' supplied."
    )


def test_experiment_names() -> None:
    validate_experiment_name(" ")  # MLflow 3.17.2 creates an experiment named " "
    validate_experiment_name("n" * 500)
    assert error_of(validate_experiment_name, "") == "Invalid experiment name: ''"
    assert (
        error_of(validate_experiment_name, "n" * 501)
        == "'name' exceeds the maximum length of 500 characters"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), (" 0", 0), ("+7", 7), ("1_0", 10), ("-1", -1), (str(2**63 - 1), 2**63 - 1)],
)
def test_experiment_ids_parse_like_int(raw: str, expected: int) -> None:
    assert validate_experiment_id(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "0.0", "", "1e3", str(2**63), "0x1"])
def test_invalid_experiment_ids(raw: str) -> None:
    expected = f"Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."
    assert error_of(validate_experiment_id, raw) == expected


# -- log-batch: accepted ------------------------------------------------------------------------


def test_empty_batch_is_valid() -> None:
    assert validate_log_batch({"run_id": RUN}) == LogBatch(RUN, [], [], [])
    assert validate_log_batch(batch(metrics=[], params=None, tags=[])) == LogBatch(RUN, [], [], [])


def test_batch_is_normalised() -> None:
    doc = batch(
        metrics=[
            metric(value="NaN", step=3),
            metric(value="Infinity", timestamp="1001"),
            metric(value="-Infinity", step="-2"),
            metric(value=-0.0),
            metric(value=True, timestamp=1002.0),
            metric(),
            metric(),  # exact duplicates are kept: the writer's ON CONFLICT drops them
        ],
        params=[
            {"key": "lr", "value": "0.1"},
            {"key": "empty"},
            {"key": "long", "value": "v" * 7000},
        ],
        tags=[
            {"key": "t", "value": "1"},
            {"key": "u"},
            {"key": "t", "value": "2"},
            {"key": "w", "value": "x" * 9000},
        ],
    )
    result = validate_log_batch(doc)
    assert result.metrics == [
        ("loss", 0.0, 1000, 3, True),
        ("loss", DOUBLE_MAX, 1001, 0, False),
        ("loss", -DOUBLE_MAX, 1000, -2, False),
        ("loss", -0.0, 1000, 0, False),
        ("loss", 1.0, 1002, 0, False),
        ("loss", 0.5, 1000, 0, False),
        ("loss", 0.5, 1000, 0, False),
    ]
    assert math.copysign(1.0, result.metrics[3][1]) == -1.0
    assert result.params == [("lr", "0.1"), ("empty", ""), ("long", "v" * 6000)]
    # Tags: last value wins, first position kept, no error (unlike params).
    assert result.tags == [("t", "2"), ("u", ""), ("w", "x" * 8000)]


def test_batch_limits_are_inclusive() -> None:
    full = batch(
        metrics=[metric(step=i) for i in range(900)], params=[{"key": f"p{i}"} for i in range(100)]
    )
    assert len(validate_log_batch(full).metrics) == 900
    assert len(validate_log_batch(batch(metrics=[metric()] * 1000)).metrics) == 1000
    assert len(validate_log_batch(batch(tags=[{"key": f"t{i}"} for i in range(100)])).tags) == 100


def test_batch_ignores_unknown_fields_and_metric_extras() -> None:
    doc = batch(metrics=[metric(run_id="other")], extra={"nested": [1]}, run_uuid="x")
    assert validate_log_batch(doc).metrics == [("loss", 0.5, 1000, 0, False)]


def test_metrics_naming_a_model_carry_it_with_their_dataset() -> None:
    named = metric(model_id="m-1", dataset_name="ds", dataset_digest="d1")
    doc = batch(metrics=[metric(), named, metric(model_id="m-2"), metric(model_id="")])
    result = validate_log_batch(doc)
    assert result.metrics == [
        ("loss", 0.5, 1000, 0, False),
        ("loss", 0.5, 1000, 0, False, "m-1", "ds", "d1"),
        ("loss", 0.5, 1000, 0, False, "m-2", None, None),
        ("loss", 0.5, 1000, 0, False),  # "": the proto default, no model
    ]
    assert result.model_ids == {"m-1", "m-2"}
    # Without a model MLflow keeps no dataset: the point is a plain one.
    plain = validate_log_batch(batch(metrics=[metric(dataset_name="ds", dataset_digest="d")]))
    assert plain.metrics == [("loss", 0.5, 1000, 0, False)] and not plain.model_ids


# -- log-batch: refused, in MLflow's order ------------------------------------------------------

TOO_MANY = "A batch logging request can contain at most {n} {e}. Got {got} {e}. Please split up {e} across multiple requests and try again."


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        # 1. run_id present and a string (handler schema)
        ({}, missing("run_id")),
        ({"run_id": ""}, missing("run_id")),
        # LogBatch has no run_uuid, but MLflow's presence check accepts one: run_id is then ""
        ({"run_id": None, "run_uuid": RUN}, "Invalid value \"\" for parameter 'run_id' supplied."),
        ({"run_uuid": ""}, missing("run_id")),
        ({"run_id": 5}, hint("run_id", "5", "int")),
        # 2. repeated fields are lists of objects with their required fields
        (batch(metrics="abc"), hint("metrics", '"abc"', "str")),
        (batch(params={"a": 1}), hint("params", '{"a":1}', "dict")),
        (batch(tags=5), hint("tags", "5", "int")),
        (batch(metrics=[5]), hint("metrics[0]", "5", "int")),  # a 500 in MLflow
        (batch(metrics=[None]), hint("metrics[0]", "null", "NoneType")),  # a 500 in MLflow
        (batch(metrics=[metric(), {"key": "m"}]), missing("metrics[1].value")),
        (batch(metrics=[metric(value=None)]), missing("metrics[0].value")),
        (batch(metrics=[metric(key="")]), missing("metrics[0].key")),
        (batch(metrics=[metric(timestamp="")]), missing("metrics[0].timestamp")),
        (batch(params=[{"value": "v"}]), missing("params[0].key")),
        (batch(tags=[{"key": ""}]), missing("tags[0].key")),
        # presence of every item comes before the run_id regex and before any name rule
        ({"run_id": "../x", "metrics": [{"key": "m"}]}, missing("metrics[0].value")),
        (batch(metrics=[metric(key="a#b")], tags=[{}]), missing("tags[0].key")),
        # 3. dataset name and digest go together (MLflow's Metric constructor), before the regex
        (
            {"run_id": "../x", "metrics": [metric(dataset_name="d")]},
            "Both dataset_name and dataset_digest must be provided if one is provided",
        ),
        # 4. run_id shape
        (
            {"run_id": "../x", "metrics": [metric(key="a#b")]},
            "Invalid value \"../x\" for parameter 'run_id' supplied.",
        ),
        ({"run_id": "a\x00"}, "Invalid value \"a\\u0000\" for parameter 'run_id' supplied."),
        # 5. each metric: name, timestamp, then length
        (batch(metrics=[metric(), metric(key="a#b")]), bad_chars("metrics[1].name", '"a#b"')),
        (batch(metrics=[metric(key="../x")]), bad_path("metrics[0].name", '"../x"', "'../x'")),
        (batch(metrics=[metric(key="a\x00b")]), bad_chars("metrics[0].name", '"a\\u0000b"')),
        (
            batch(metrics=[metric(timestamp=-1)]),
            negative_ts("metrics[0].timestamp", "-1", "loss", "0.5"),
        ),
        (
            batch(metrics=[metric(key="k" * 251, timestamp=-1)]),
            negative_ts("metrics[0].timestamp", "-1", "k" * 251, "0.5"),
        ),
        (
            batch(metrics=[metric(key="k" * 251)]),
            "'Metric name' exceeds the maximum length of 250 characters",
        ),
        # metrics are checked before params, params before tags, whatever the JSON order
        (
            {
                "run_id": RUN,
                "tags": [{"key": "c#"}],
                "params": [{"key": "b#"}],
                "metrics": [metric(key="a#")],
            },
            bad_chars("metrics[0].name", '"a#"'),
        ),
        (
            batch(params=[{"key": "k" * 251}], tags=[{"key": "t#"}]),
            "'Param key' exceeds the maximum length of 250 characters",
        ),
        (batch(params=[{"key": "p#"}]), bad_chars("params[0].key", '"p#"')),
        (batch(tags=[{"key": "t/"}]), bad_path("tags[0].key", '"t/"', "'t'")),
        (
            batch(tags=[{"key": "k" * 251}]),
            "'tags[0].key' exceeds the maximum length of 250 characters",
        ),
        # nested type errors: MLflow stores the proto default (0, "") and answers 200
        (batch(metrics=[metric(value="abc")]), hint("metrics[0].value", '"abc"', "str")),
        (batch(metrics=[metric(value=[1])]), hint("metrics[0].value", "[1]", "list")),
        (batch(metrics=[metric(key=5)]), hint("metrics[0].key", "5", "int")),
        (batch(params=[{"key": "p", "value": 5}]), hint("params[0].value", "5", "int")),
        (batch(tags=[{"key": "t", "value": {"a": 1}}]), hint("tags[0].value", '{"a":1}', "dict")),
        (
            batch(params=[{"key": "p", "value": "a\x00"}]),
            f"Invalid value \"a\\u0000\" for parameter 'params[0].value' supplied: Strings must not contain NUL characters or surrogates. {DOCS}",
        ),
        # 6. counts, after every item passed
        (batch(metrics=[metric()] * 1001), TOO_MANY.format(n=1000, e="metrics", got=1001)),
        (batch(metrics=[metric(key="a#")] * 1001), bad_chars("metrics[0].name", '"a#"')),
        (
            batch(params=[{"key": f"p{i}"} for i in range(101)]),
            TOO_MANY.format(n=100, e="params", got=101),
        ),
        (
            batch(tags=[{"key": f"t{i}"} for i in range(101)]),
            TOO_MANY.format(n=100, e="tags", got=101),
        ),
        (
            batch(metrics=[metric()] * 901, params=[{"key": f"p{i}"} for i in range(100)]),
            TOO_MANY.format(n=1000, e="metrics, params, and tags", got=1001),
        ),
        # 7. duplicate param keys, even with equal values; every repeat is listed
        (
            batch(params=[{"key": "p", "value": "1"}, {"key": "p", "value": "1"}]),
            "Duplicate parameter keys have been submitted: ['p']. Please ensure the request contains only one param value per param key.",
        ),
        (
            batch(params=[{"key": "d"}] * 3 + [{"key": "e"}] * 2),
            "Duplicate parameter keys have been submitted: ['d', 'd', 'e']. Please ensure the request contains only one param value per param key.",
        ),
        (batch(params=[{"key": "d"}] * 101), TOO_MANY.format(n=100, e="params", got=101)),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, dict) else "",
)
def test_batch_refusals(doc: dict[str, Any], message: str) -> None:
    assert error_of(validate_log_batch, doc) == message


@pytest.mark.parametrize("value", ["x", "1.5", 1.5, 2**63, True, [1]])
def test_batch_integer_protobuf_refuses_reads_as_zero(value: object) -> None:
    # Nothing type-checks a batch's metrics in MLflow: the proto default 0 is stored, 200.
    for field in ("step", "timestamp"):
        done = validate_log_batch(batch(metrics=[metric(**{field: value})]))
        assert done.metrics[0][2 if field == "timestamp" else 3] == 0
    # "" is a missing timestamp (the presence check), but only a bad step.
    assert validate_log_batch(batch(metrics=[metric(step="")])).metrics[0][3] == 0


@pytest.mark.parametrize("value", [1.5, -2.5, 2**63, -(2**63) - 1, True, False, " 7", 1e20])
def test_log_metric_integer_protobuf_refuses_reads_as_zero(value: object) -> None:
    # log-metric's schema runs int() on them, which succeeds: MLflow stores 0, 200.
    assert validate_log_metric({"run_id": RUN, **metric(step=value)}).point[3] == 0
    assert validate_log_metric({"run_id": RUN, **metric(timestamp=value)}).point[2] == 0


# -- log-metric ---------------------------------------------------------------------------------


def test_log_metric_accepted() -> None:
    assert validate_log_metric({"run_id": RUN, **metric(step=7)}) == LogMetric(
        RUN, ("loss", 0.5, 1000, 7, False)
    )
    assert validate_log_metric({"run_uuid": RUN, **metric()}).run_id == RUN  # legacy clients
    assert validate_log_metric({"run_id": None, "run_uuid": RUN, **metric()}).run_id == RUN
    nan = validate_log_metric({"run_id": RUN, **metric(value="NaN", timestamp="5", step="-3")})
    assert nan.point == ("loss", 0.0, 5, -3, True)
    extras = {"model_id": "m-1", "dataset_name": "d", "dataset_digest": "abc"}
    named = validate_log_metric({"run_id": RUN, **metric(), **extras})
    assert named.point == ("loss", 0.5, 1000, 0, False, "m-1", "d", "abc")
    assert named.model_ids == {"m-1"}
    # Run id shape is not checked here: an unknown id is the shell's 404.
    assert validate_log_metric({"run_id": "../x", **metric()}).run_id == "../x"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (metric(), missing("run_id")),
        ({"run_id": "", "run_uuid": RUN, **metric()}, missing("run_id")),
        ({"runId": RUN, **metric()}, missing("run_id")),
        (
            {"run_id": RUN, "runId": RUN, **metric()},
            "Request specifies both 'run_id' and 'runId'; provide only one of them.",
        ),
        ({"run_id": 5, **metric()}, hint("run_id", "5", "int")),
        ({"run_uuid": 5, **metric()}, hint("run_id", "5", "int")),
        (
            {"run_id": "r\x00", **metric()},
            f"Invalid value \"r\\u0000\" for parameter 'run_id' supplied: Strings must not contain NUL characters or surrogates. {DOCS}",
        ),
        ({"run_id": RUN, "value": 1, "timestamp": 5}, missing("key")),
        ({"run_id": RUN, **metric(key=5)}, hint("key", "5", "int")),
        ({"run_id": RUN, **metric(value=None)}, missing("value")),
        ({"run_id": RUN, **metric(value="")}, missing("value")),
        ({"run_id": RUN, **metric(value="abc")}, hint("value", '"abc"', "str")),
        ({"run_id": RUN, "key": "k", "value": 1}, missing("timestamp")),
        ({"run_id": RUN, **metric(timestamp="")}, hint("timestamp", '""', "str")),
        ({"run_id": RUN, **metric(step="abc")}, hint("step", '"abc"', "str")),
        ({"run_id": RUN, **metric(step="1.5")}, hint("step", '"1.5"', "str")),
        ({"run_id": RUN, **metric(model_id=5)}, hint("model_id", "5", "int")),
        (
            {"run_id": RUN, **metric(dataset_digest="x")},
            "Both dataset_name and dataset_digest must be provided if one is provided",
        ),
        # store rules: name, timestamp, then length (a long key with a bad timestamp reports the timestamp)
        ({"run_id": RUN, **metric(key="a#b")}, bad_chars("name", '"a#b"')),
        ({"run_id": RUN, **metric(key="../x")}, bad_path("name", '"../x"', "'../x'")),
        ({"run_id": RUN, **metric(timestamp=-1)}, negative_ts("timestamp", "-1", "loss", "0.5")),
        (
            {"run_id": RUN, **metric(value="NaN", timestamp="-5")},
            negative_ts("timestamp", "-5", "loss", "nan"),
        ),
        (
            {"run_id": RUN, **metric(value="-Infinity", timestamp=-5)},
            negative_ts("timestamp", "-5", "loss", "-inf"),
        ),
        (
            {"run_id": RUN, **metric(value=1, timestamp=-5)},
            negative_ts("timestamp", "-5", "loss", "1.0"),
        ),
        (
            {"run_id": RUN, **metric(key="k" * 251)},
            "'Metric name' exceeds the maximum length of 250 characters",
        ),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, dict) else "",
)
def test_log_metric_refusals(doc: dict[str, Any], message: str) -> None:
    assert error_of(validate_log_metric, doc) == message


# -- log-param, set-tag, delete-tag -------------------------------------------------------------


def test_log_param_accepted() -> None:
    assert validate_log_param({"run_id": RUN, "key": "lr", "value": "0.1"}) == LogParam(
        RUN, "lr", "0.1"
    )
    assert validate_log_param({"run_uuid": RUN, "key": "lr"}) == LogParam(RUN, "lr", "")
    assert validate_log_param({"run_id": RUN, "key": "lr", "value": "v" * 7000}).value == "v" * 6000


def test_set_tag_accepted() -> None:
    assert validate_set_tag({"run_id": RUN, "key": "mlflow.runName", "value": "x"}) == SetTag(
        RUN, "mlflow.runName", "x"
    )
    assert validate_set_tag({"run_id": RUN, "key": "t", "value": None}) == SetTag(RUN, "t", "")
    assert validate_set_tag({"run_id": RUN, "key": "t", "value": "é" * 9000}).value == "é" * 8000


@pytest.mark.parametrize(
    ("validator", "doc", "message"),
    [
        (validate_log_param, {"key": "k", "value": "v"}, missing("run_id")),
        (validate_log_param, {"run_id": RUN, "value": "v"}, missing("key")),
        (validate_log_param, {"run_id": RUN, "key": "k", "value": 5}, hint("value", "5", "int")),
        (validate_log_param, {"run_id": RUN, "key": "a#b"}, bad_chars("key", '"a#b"')),
        (validate_log_param, {"run_id": RUN, "key": "a\x00"}, bad_chars("key", '"a\\u0000"')),
        (validate_log_param, {"run_id": RUN, "key": "a/../b"}, bad_path("key", '"a/../b"', "'b'")),
        (
            validate_log_param,
            {"run_id": RUN, "key": "k" * 251},
            "'Param key' exceeds the maximum length of 250 characters",
        ),
        (
            validate_set_tag,
            {"run_id": RUN, "key": "k" * 251},
            "'key' exceeds the maximum length of 250 characters",
        ),
        (validate_set_tag, {"run_id": RUN, "key": "a#b"}, bad_chars("key", '"a#b"')),
        (
            validate_set_tag,
            {"run_id": RUN, "key": "t", "value": True},
            hint("value", "true", "bool"),
        ),
        (
            validate_set_tag,
            {"run_id": RUN, "key": "t", "value": "\ud800"},
            f"Invalid value \"\\ud800\" for parameter 'value' supplied: Strings must not contain NUL characters or surrogates. {DOCS}",
        ),
        (validate_set_tag, {"run_uuid": "", "key": "t"}, missing("run_id")),
        (validate_delete_tag, {"key": "t"}, missing("run_id")),
        (
            validate_delete_tag,
            {"run_uuid": RUN, "key": "t"},
            missing("run_id"),
        ),  # DeleteTag has no run_uuid
        (validate_delete_tag, {"run_id": RUN}, missing("key")),
        (validate_delete_tag, {"run_id": RUN, "key": 5}, hint("key", "5", "int")),
        (
            validate_delete_tag,
            {"run_id": RUN, "key": "a\x00"},
            f"Invalid value \"a\\u0000\" for parameter 'key' supplied: Strings must not contain NUL characters or surrogates. {DOCS}",
        ),
    ],
    ids=lambda v: getattr(v, "__name__", repr(v)[:50]),
)
def test_single_call_refusals(validator: Any, doc: dict[str, Any], message: str) -> None:
    assert error_of(validator, doc) == message


def test_delete_tag_does_not_check_key_rules() -> None:
    # MLflow looks any key up and answers 404 "No tag with name: a#b in run with id ..."
    assert validate_delete_tag({"run_id": RUN, "key": "a#b"}) == DeleteTag(RUN, "a#b")
    assert validate_delete_tag({"run_id": RUN, "key": "k" * 300}).key == "k" * 300


def test_results_are_frozen() -> None:
    result = validate_log_param({"run_id": RUN, "key": "lr"})
    with pytest.raises(AttributeError):
        result.key = "other"  # type: ignore[misc]
