"""Decoding proto-JSON requests: bodies, query strings and typed getters.

Expected texts are MLflow 3.17.2's, checked against its handlers (``mlflow/server/handlers.py``,
``mlflow/server/validation.py``) and protobuf's ``json_format``; where MLflow answers a 500 or
silently stores a default, the expectation is Sluice's documented 400.
"""

import json
import math
from typing import Any

import pytest

from schemas.fields import (
    expect_object,
    get_bool,
    get_double,
    get_enum,
    get_list,
    get_string,
    get_unchecked_string,
    json_name,
)
from schemas.int_fields import get_int32, get_int64, get_nested_int64, read_int
from schemas.mlflow_errors import MlflowError
from schemas.protojson import invalid_value, parse_json_body, query_to_dict, wrong_type

DOCS = "See the API docs for more information about request parameters."


def hint(path: str, shown: str, type_name: str) -> str:
    """MLflow's schema type error; note the two spaces after "supplied:"."""
    return f"Invalid value {shown} for parameter '{path}' supplied:  Hint: Value was of type '{type_name}'. {DOCS}"


def not_int(path: str, shown: str, bits: int = 64) -> str:
    return f"Invalid value {shown} for parameter '{path}' supplied: Value must be a {bits}-bit integer. {DOCS}"


def missing(path: str) -> str:
    return f"Missing value for required parameter '{path}'. {DOCS}"


def error_of(call: Any, *args: Any, **kwargs: Any) -> MlflowError:
    with pytest.raises(MlflowError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert caught.value.status == 400
    return caught.value


# -- parse_json_body ----------------------------------------------------------------------------

BODY = b'{"run_id": "r1", "value": 1}'


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "Bad Request. Content-Type header is missing."),
        ("", "Bad Request. Content-Type must be one of ['application/json']."),
        ("text/plain", "Bad Request. Content-Type must be one of ['application/json']."),
        ("Application/JSON", "Bad Request. Content-Type must be one of ['application/json']."),
        (" application/json", "Bad Request. Content-Type must be one of ['application/json']."),
        (
            "application/json ;charset=utf-8",
            "Bad Request. Content-Type must be one of ['application/json'].",
        ),
        (
            "application/json, text/plain",
            "Bad Request. Content-Type must be one of ['application/json'].",
        ),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_post_and_put_need_json_content_type(
    content_type: str | None, message: str, method: str
) -> None:
    assert error_of(parse_json_body, BODY, content_type, method).message == message


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/json;x"]
)
def test_json_content_type_parameters_are_ignored(content_type: str) -> None:
    assert parse_json_body(BODY, content_type, "POST") == {"run_id": "r1", "value": 1}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_other_methods_do_not_check_content_type(method: str) -> None:
    assert parse_json_body(BODY, None, method) == {"run_id": "r1", "value": 1}
    assert parse_json_body(BODY, "text/plain", method) == {"run_id": "r1", "value": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"{bad",
        b'{"a": 1',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b'"null"',
        b"1" * 5000,
    ],
    ids=[
        "empty",
        "null",
        "broken",
        "unterminated",
        "bad-encoding",
        "too-deep",
        "string-null",
        "4300+digits",
    ],
)
def test_unparsable_or_empty_bodies_are_empty_documents(raw: bytes) -> None:
    # Flask's get_json(silent=True) gives None, which MLflow turns into {}.
    assert parse_json_body(raw, "application/json", "POST") == {}


def test_double_encoded_body_is_decoded_twice() -> None:
    raw = json.dumps(json.dumps({"run_id": "r1", "step": 5})).encode()
    assert parse_json_body(raw, "application/json", "POST") == {"run_id": "r1", "step": 5}


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b"5", b"true", b'"abc"', b'"[1]"', json.dumps(json.dumps("x")).encode()],
    ids=["list", "number", "bool", "string-not-json", "string-list", "triple-encoded"],
)
def test_non_object_bodies_are_400(raw: bytes) -> None:
    # MLflow answers these with a 500; a 400 with a reason is Sluice's deliberate deviation.
    error = error_of(parse_json_body, raw, "application/json", "POST")
    assert error.message == "Bad Request. The request body must be a JSON object."


def test_body_decoding_matches_flask() -> None:
    def parse(raw: bytes) -> dict[str, Any]:
        return parse_json_body(raw, "application/json", "POST")

    assert parse(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # UTF-8 byte-order mark
    assert parse('{"a": 1}'.encode("utf-16")) == {"a": 1}
    assert parse(b'{"a": 1, "a": 2}') == {"a": 2}  # duplicate keys: last wins
    nan = parse(b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400}')
    assert math.isnan(nan["a"]) and nan["b"] == nan["d"] == math.inf and nan["c"] == -math.inf
    assert parse(b'{"a": "x\\u0000y"}') == {
        "a": "x\x00y"
    }  # NUL survives parsing; getters refuse it


def test_big_integers_stay_exact() -> None:
    # orjson would turn -2**63-1 into the float -2**63, which then passes as an int64.
    doc = parse_json_body(
        b'{"a": -9223372036854775809, "b": 18446744073709551616}', "application/json", "POST"
    )
    assert doc == {"a": -(2**63) - 1, "b": 2**64}
    assert isinstance(doc["a"], int)


# -- query_to_dict ------------------------------------------------------------------------------


def test_query_repeated_fields_become_lists_and_others_keep_the_first_value() -> None:
    pairs = [
        ("run_ids", "a"),
        ("max_results", "10"),
        ("run_ids", "b"),
        ("max_results", "20"),
        ("x", ""),
    ]
    doc = query_to_dict(pairs, frozenset({"run_ids", "experiment_ids"}))
    # werkzeug's MultiDict.get is the first value: MLflow 3.17.2 logs key "a" for ?key=a&key=b.
    assert doc == {"run_ids": ["a", "b"], "max_results": "10", "x": ""}


def test_query_values_parse_like_protobuf() -> None:
    doc = query_to_dict([("max_results", "10"), ("flag", "TRUE"), ("v", "NaN")], frozenset())
    assert get_int64(doc, "max_results") == 10
    assert get_bool(doc, "flag") is True
    assert math.isnan(get_double(doc, "v", required=True))


# -- messages -----------------------------------------------------------------------------------


def test_invalid_value_renders_json_like_mlflow() -> None:
    assert (
        invalid_value("k", "é\x00").message
        == "Invalid value \"\\u00e9\\u0000\" for parameter 'k' supplied."
    )
    assert invalid_value("k", {"b": 1, "a": [1, 2]}, "x").message == (
        'Invalid value {"a":[1,2],"b":1} for parameter \'k\' supplied: x'
    )
    assert invalid_value("k", math.nan).message == "Invalid value NaN for parameter 'k' supplied."
    assert wrong_type("metrics", {"a": 1}).message == hint("metrics", '{"a":1}', "dict")


# -- get_string ---------------------------------------------------------------------------------


def test_string_absent_null_and_default() -> None:
    assert get_string({}, "a") is None
    assert get_string({"a": None}, "a", default="d") == "d"
    assert get_string({"a": ""}, "a") == ""
    assert get_string({"a": "x"}, "a", required=True) == "x"


@pytest.mark.parametrize("doc", [{}, {"key": None}, {"key": ""}])
def test_required_string_missing(doc: dict[str, Any]) -> None:
    assert error_of(get_string, doc, "key", path="params[2].key", required=True).message == missing(
        "params[2].key"
    )


@pytest.mark.parametrize(
    ("value", "shown", "type_name"),
    [
        (5, "5", "int"),
        (True, "true", "bool"),
        (1.5, "1.5", "float"),
        (["a"], '["a"]', "list"),
        ({"a": 1}, '{"a":1}', "dict"),
    ],
)
def test_string_wrong_type(value: Any, shown: str, type_name: str) -> None:
    assert error_of(get_string, {"key": value}, "key").message == hint("key", shown, type_name)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\x00b", '"a\\u0000b"'),
        ("\ud800", '"\\ud800"'),
        ("x\udfff", '"x\\udfff"'),
        ("\ud83d\ude00", '"\\ud83d\\ude00"'),
    ],
    ids=["nul", "lone-high", "lone-low", "cesu-pair"],
)
def test_strings_postgres_cannot_store_are_refused(value: str, shown: str) -> None:
    message = f"Invalid value {shown} for parameter 'value' supplied: Strings must not contain NUL characters or surrogates. {DOCS}"
    assert error_of(get_string, {"value": value}, "value").message == message
    # A name rule checks these later with MLflow's own message.
    assert get_unchecked_string({"value": value}, "value") == value


def test_camel_case_json_names() -> None:
    assert json_name("run_id") == "runId"
    assert json_name("dataset_digest") == "datasetDigest"
    assert json_name("key") == "key"
    # ParseDict honours the JSON name for optional fields ...
    assert get_string({"pageToken": "t"}, "page_token") == "t"
    # ... but MLflow's required check reads only the proto name.
    assert error_of(get_string, {"runId": "r"}, "run_id", required=True).message == missing(
        "run_id"
    )
    conflict = error_of(get_string, {"run_id": "a", "runId": "b"}, "run_id")
    assert (
        conflict.message == "Request specifies both 'run_id' and 'runId'; provide only one of them."
    )


# -- get_int64 / get_int32 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (-5, -5),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (5.0, 5),
        (-0.0, 0),
        ("10", 10),
        ("-5", -5),
        ("+5", 5),
        ("007", 7),
        ("1.0", 1),
        ("1e2", 100),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_int64_accepts_what_parsedict_accepts(value: Any, expected: int) -> None:
    assert get_int64({"step": value}, "step") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", hint("step", '"abc"', "str")),
        ("1.5", hint("step", '"1.5"', "str")),
        ("", hint("step", '""', "str")),
        ("0x1", hint("step", '"0x1"', "str")),
        ("NaN", hint("step", '"NaN"', "str")),
        ("1e30", hint("step", '"1e30"', "str")),
        ([1], hint("step", "[1]", "list")),
        ({"a": 1}, hint("step", '{"a":1}', "dict")),
        (math.nan, hint("step", "NaN", "float")),
        (math.inf, hint("step", "Infinity", "float")),
    ],
)
def test_int64_rejections(value: Any, message: str) -> None:
    # What neither protobuf nor MLflow's _assert_intlike (Python's int()) reads.
    assert error_of(get_int64, {"step": value}, "step").message == message


@pytest.mark.parametrize(
    "value",
    [" 5", "5 ", True, False, 1.5, -2.5, 2**63, -(2**63) - 1, "9223372036854775808", 1e20],
)
def test_int64_refused_by_protobuf_reads_as_the_default(value: Any) -> None:
    # MLflow swallows protobuf's parse error and its schema's int() accepts these: the handler
    # sees the field's default (0 for a present required field).
    assert get_int64({"step": value}, "step", default=7) == 7
    assert get_int64({"step": value}, "step") is None
    assert get_int64({"timestamp": value}, "timestamp", required=True) == 0
    field = read_int({"step": value}, "step")
    assert field.parsed is None and field.raw == value and field.python_int() == int(value)


def test_unchecked_int_reads_anything_refused_as_the_default() -> None:
    # A nested field nothing type-checks (a batch's metrics): no 400 at all.
    for value in ("abc", "", [1], {"a": 1}, math.nan, 1.5):
        assert get_nested_int64({"step": value}, "step", default=0) == 0


def test_int64_missing_and_empty() -> None:
    assert get_int64({}, "step", default=0) == 0
    assert get_int64({"step": None}, "step") is None
    ts = "metrics[3].timestamp"
    assert error_of(get_int64, {}, "timestamp", path=ts, required=True).message == missing(ts)
    # MLflow's schema runs _assert_intlike before _assert_required: "" is a type error.
    assert error_of(get_int64, {"timestamp": ""}, "timestamp", required=True).message == hint(
        "timestamp", '""', "str"
    )


def test_int32_bounds() -> None:
    assert get_int32({"n": 2**31 - 1}, "n") == 2**31 - 1
    assert get_int32({"n": "-2147483648"}, "n") == -(2**31)
    assert get_int32({"n": 2**31}, "n") is None  # protobuf refuses it, int() reads it


# -- get_double ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (1.5, 1.5),
        (True, 1.0),  # protobuf parses JSON true as 1.0; MLflow 3.17.2 stores 1.0
        (False, 0.0),
        ("1e3", 1000.0),
        (" 1", 1.0),
        ("+1", 1.0),
        ("1_0", 10.0),
        ("-0", -0.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("Inf", math.inf),
        ("INFINITY", math.inf),
        ("1e400", math.inf),
        (math.inf, math.inf),  # bare JSON Infinity or 1e400
        (-math.inf, -math.inf),
        (10**400, math.inf),  # protobuf raises OverflowError (a 500 in MLflow)
        (-(10**400), -math.inf),
    ],
)
def test_double_accepts_protobuf_spellings(value: Any, expected: float) -> None:
    got = get_double({"value": value}, "value", required=True)
    assert got == expected
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


@pytest.mark.parametrize("value", ["NaN", "nan", "NAN", "-nan", " NaN ", math.nan])
def test_double_nan_spellings(value: Any) -> None:
    # "nan" is refused by protobuf (MLflow then silently stores 0.0); Sluice reads it as NaN.
    assert math.isnan(get_double({"value": value}, "value", required=True))


def test_negative_zero_keeps_its_sign() -> None:
    assert math.copysign(1.0, get_double({"value": -0.0}, "value", required=True)) == -1.0


@pytest.mark.parametrize(
    ("value", "shown", "type_name"),
    [
        ("abc", '"abc"', "str"),
        ("0x10", '"0x10"', "str"),
        ("1,5", '"1,5"', "str"),
        ([1], "[1]", "list"),
        ({"a": 1}, '{"a":1}', "dict"),
    ],
)
def test_double_wrong_type(value: Any, shown: str, type_name: str) -> None:
    assert error_of(get_double, {"value": value}, "value").message == hint(
        "value", shown, type_name
    )


@pytest.mark.parametrize("doc", [{}, {"value": None}, {"value": ""}])
def test_required_double_missing(doc: dict[str, Any]) -> None:
    assert error_of(get_double, doc, "value", required=True).message == missing("value")


# -- get_bool, get_enum, get_list, expect_object ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), ("True", True)],
)
def test_bool_values(value: Any, expected: bool) -> None:
    assert get_bool({"flag": value}, "flag") is expected


@pytest.mark.parametrize("value", ["yes", "1", "", "t"])
def test_bool_strings_other_than_true_false(value: str) -> None:
    message = f"Invalid boolean value: {value}, must be 'true' or 'false'."
    assert error_of(get_bool, {"flag": value}, "flag").message == message


def test_bool_wrong_type_and_missing() -> None:
    assert error_of(get_bool, {"flag": 1}, "flag").message == hint("flag", "1", "int")
    assert get_bool({}, "flag", default=False) is False
    assert error_of(get_bool, {}, "flag", required=True).message == missing("flag")


VIEW_TYPES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ALL", "ALL"),
        (2, "DELETED_ONLY"),
        ("2", "DELETED_ONLY"),
        (" 3 ", "ALL"),
        (1.0, "ACTIVE_ONLY"),
        (True, "ACTIVE_ONLY"),
    ],
)
def test_enum_by_name_or_number(value: Any, expected: str) -> None:
    assert get_enum({"run_view_type": value}, "run_view_type", VIEW_TYPES) == expected


@pytest.mark.parametrize("value", ["all", "BOGUS", 9, "", [1], math.nan, None])
def test_unknown_enum_values_are_ignored_like_mlflow(value: Any) -> None:
    assert (
        get_enum({"run_view_type": value}, "run_view_type", VIEW_TYPES, default="ACTIVE_ONLY")
        == "ACTIVE_ONLY"
    )
    assert error_of(get_enum, {"s": value}, "s", VIEW_TYPES, required=True).message == missing("s")


def test_list_field() -> None:
    assert get_list({}, "metrics") == []
    assert get_list({"metrics": None}, "metrics") == []
    assert get_list({"metrics": [1, "a"]}, "metrics") == [1, "a"]
    assert error_of(get_list, {"metrics": "abc"}, "metrics").message == hint(
        "metrics", '"abc"', "str"
    )
    assert error_of(get_list, {"metrics": {"a": 1}}, "metrics").message == hint(
        "metrics", '{"a":1}', "dict"
    )
    assert error_of(get_list, {}, "models", required=True).message == missing("models")
    assert get_list({"models": []}, "models", required=True) == []  # [] is present for MLflow


def test_expect_object() -> None:
    assert expect_object({"a": 1}, "metrics[0]") == {"a": 1}
    assert error_of(expect_object, 5, "metrics[0]").message == hint("metrics[0]", "5", "int")
    assert error_of(expect_object, None, "metrics[1]").message == hint(
        "metrics[1]", "null", "NoneType"
    )
