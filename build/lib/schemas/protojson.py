"""Decoding MLflow's proto-JSON requests the way the MLflow server does (pure; no I/O).

MLflow 3.17 (``mlflow/server/handlers.py``: ``_get_request_message``,
``_get_normalized_request_json``, ``_validate_param_against_schema``) turns a request into a
protobuf message in three steps:

1. the body is read with Flask's ``get_json(force=True, silent=True)`` after a Content-Type check
   (POST/PUT only), or the query string is used for a GET that has one;
2. ``ParseDict`` fills the message; a ``ParseError`` is *swallowed*;
3. a per-handler schema checks presence (``_assert_required``) and, only if step 2 failed, the
   JSON type of top-level fields (``_assert_string``, ``_assert_intlike``...).

When step 2 fails on a field the schema does not check (a nested field, ``step: 1.5``,
``step: 2**63``), MLflow silently stores the protobuf default (0 or ""). Sluice does not reproduce
that: every getter here accepts exactly what ``ParseDict`` accepts and rejects the rest with a 400,
using MLflow's own message where MLflow has one (``wrong_type``) and the same
``Invalid value ... for parameter '...' supplied`` template otherwise.

Getters take the field ``name`` and an optional ``path`` used in messages
(``metrics[3].timestamp``); absent and JSON ``null`` mean "not set", as in protobuf.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, NoReturn, TypeVar, overload

from schemas.mlflow_errors import API_DOCS_HINT, MlflowError, invalid_parameter, missing_parameter
from schemas.wire import INT64_MAX, INT64_MIN

# A list, not a tuple: MLflow prints it into its message as "['application/json']".
JSON_CONTENT_TYPES: Final = ["application/json"]
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

_CONTENT_TYPE_CHECKED: Final = frozenset({"POST", "PUT"})
_UNPARSABLE: Final = object()

T = TypeVar("T")
Doc = Mapping[str, Any]


# -- messages ---------------------------------------------------------------------------------


def invalid_value(path: str, value: Any, detail: str | None = None) -> MlflowError:
    """MLflow's ``invalid_value`` message (``mlflow/utils/validation.py``); no docs hint."""
    shown = _json_repr(value)
    if detail:
        return invalid_parameter(f"Invalid value {shown} for parameter '{path}' supplied: {detail}")
    return invalid_parameter(f"Invalid value {shown} for parameter '{path}' supplied.")


def wrong_type(path: str, value: Any) -> MlflowError:
    """The schema error MLflow raises when a field has the wrong JSON type, text for text.

    The double space after "supplied:" is MLflow's ("supplied: " + " Hint: ...").
    """
    return _hinted(path, value, f" Hint: Value was of type '{type(value).__name__}'.")


def _hinted(path: str, value: Any, detail: str) -> MlflowError:
    # Schema-stage errors end with the API docs hint; store-stage errors (names, limits) do not.
    return invalid_parameter(f"{invalid_value(path, value, detail).message} {API_DOCS_HINT}")


def _json_repr(value: Any) -> str:
    # The same rendering as MLflow: sorted keys, compact separators, ASCII escapes, NaN as NaN.
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # ints over 4300 digits; nesting near the stack limit
        return f"<{type(value).__name__}>"


# -- bodies and query strings -------------------------------------------------------------------


def parse_json_body(raw: bytes, content_type: str | None, method: str) -> dict[str, Any]:
    """The request document of a body, as MLflow's ``_get_normalized_request_json`` builds it.

    ``content_type`` is the raw ``Content-Type`` header (None when absent; not aiohttp's parsed
    ``request.content_type``, which defaults to application/octet-stream). POST and PUT must send
    ``application/json`` exactly (parameters after ``;`` ignored, no case folding, no trimming).
    Unparsable JSON, an empty body and ``null`` give ``{}``, so handlers answer "Missing value for
    required parameter". A JSON string is decoded once more (legacy double-encoding clients).
    Raises MlflowError (400) for a bad Content-Type or a top level that is not an object.
    """
    if method in _CONTENT_TYPE_CHECKED:
        check_content_type(content_type)
    doc = _loads(raw)
    if isinstance(doc, str):
        doc = _loads(doc)  # inner text that is not JSON is a 500 in MLflow; here a 400 below
        if doc is _UNPARSABLE:
            _not_an_object()
    if doc is None or doc is _UNPARSABLE:
        return {}
    if not isinstance(doc, dict):
        _not_an_object()
    return doc


def check_content_type(content_type: str | None) -> None:
    """MLflow's ``_validate_content_type`` for POST/PUT; raises MlflowError (400)."""
    if content_type is None:
        raise invalid_parameter("Bad Request. Content-Type header is missing.")
    # MLflow splits on ";" and compares the rest verbatim: "application/json ; x" is rejected.
    if content_type.split(";")[0] not in JSON_CONTENT_TYPES:
        raise invalid_parameter(f"Bad Request. Content-Type must be one of {JSON_CONTENT_TYPES}.")


def _loads(data: bytes | str) -> Any:
    """``json.loads`` as Flask calls it, or _UNPARSABLE where Flask's ``silent=True`` gives None.

    The standard library, not orjson: orjson turns integers beyond 64 bits into floats
    (-2**63-1 would become -2**63 and pass the int64 check), and rejects the NaN/Infinity
    literals and byte-order marks Flask accepts.
    """
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: a 500 in MLflow, "unparsable" here
        return _UNPARSABLE


def _not_an_object() -> NoReturn:
    # MLflow answers a 500 (its schema check calls .get on a list, number or bool).
    raise invalid_parameter("Bad Request. The request body must be a JSON object.")


def query_to_dict(pairs: list[tuple[str, str]], repeated: frozenset[str]) -> dict[str, Any]:
    """A GET query string as the request document (MLflow's ``_get_request_message``).

    Fields in ``repeated`` become lists of all their values; any other field keeps its *first*
    value (werkzeug ``MultiDict.get``; checked against MLflow 3.17.2: ``?key=a&key=b`` logs "a").
    MLflow uses the query string only when it is non-empty; a GET without one reads the body via
    ``parse_json_body``. Values stay strings: the getters parse them as ``ParseDict`` would.
    """
    doc: dict[str, Any] = {}
    for name, value in pairs:
        if name in repeated:
            doc.setdefault(name, []).append(value)
        elif name not in doc:
            doc[name] = value
    return doc


# -- field lookup -------------------------------------------------------------------------------


@functools.cache
def json_name(name: str) -> str:
    """protobuf's JSON name of a field: ``run_id`` -> ``runId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _raw(doc: Doc, name: str, required: bool) -> Any:
    alias = json_name(name)
    if alias == name:
        return doc.get(name)
    if name in doc and alias in doc:
        raise invalid_parameter(
            f"Request specifies both '{name}' and '{alias}'; provide only one of them."
        )
    # ParseDict also accepts the JSON name, but MLflow's required check reads only the proto
    # name: {"runId": ...} alone is "Missing value for required parameter 'run_id'".
    if required or name in doc:
        return doc.get(name)
    return doc.get(alias)


def _get(
    doc: Doc,
    name: str,
    convert: Callable[[Any, str], T],
    *,
    path: str | None,
    required: bool,
    default: T | None,
    empty_is_missing: bool = True,
) -> T | None:
    where = path or name
    value = _raw(doc, name, required)
    # MLflow's _assert_required treats "" as missing; int fields check the type first, so there
    # "" is a type error (schema order [_assert_intlike, _assert_required]).
    if value is None or (required and empty_is_missing and value == ""):
        if required:
            raise missing_parameter(where)
        return default
    return convert(value, where)


# -- strings ------------------------------------------------------------------------------------


@overload
def get_string(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: Literal[True],
    default: None = ...,
    storable: bool = ...,
) -> str: ...
@overload
def get_string(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: str,
    storable: bool = ...,
) -> str: ...
@overload
def get_string(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: None = ...,
    storable: bool = ...,
) -> str | None: ...
def get_string(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: str | None = None,
    storable: bool = True,
) -> str | None:
    """A string field; non-strings are ``wrong_type``; "" counts as missing when required.

    ``storable`` also rejects NUL characters and surrogates, which PostgreSQL text and UTF-8 (the
    Kafka record) cannot hold; MLflow on PostgreSQL answers those with a 500. Pass False only when
    a later name rule (``validate_key``, the run-id regex) rejects them with MLflow's own message.
    """
    convert = _to_storable_string if storable else _to_string
    return _get(doc, name, convert, path=path, required=required, default=default)


def _to_string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(path, value)
    return value


def _to_storable_string(value: Any, path: str) -> str:
    text = _to_string(value, path)
    if "\x00" in text or not _encodes(text):
        raise _hinted(path, text, "Strings must not contain NUL characters or surrogates.")
    return text


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone (or CESU-style paired) surrogates from \\ud800 escapes
        return False
    return True


# -- integers -----------------------------------------------------------------------------------


@overload
def get_int64(
    doc: Doc, name: str, *, path: str | None = ..., required: Literal[True], default: None = ...
) -> int: ...
@overload
def get_int64(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: int
) -> int: ...
@overload
def get_int64(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: None = ...
) -> int | None: ...
def get_int64(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: int | None = None,
) -> int | None:
    """An int64 field: JSON integers, integral floats (``5.0``) and decimal strings (``"10"``,
    ``"1e2"``), as protobuf's ``ParseDict`` accepts them. Booleans, fractions, strings with a
    space and values outside int64 are rejected (MLflow would store 0 for most of them)."""
    return _get(
        doc, name, _to_int64, path=path, required=required, default=default, empty_is_missing=False
    )


@overload
def get_int32(
    doc: Doc, name: str, *, path: str | None = ..., required: Literal[True], default: None = ...
) -> int: ...
@overload
def get_int32(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: int
) -> int: ...
@overload
def get_int32(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: None = ...
) -> int | None: ...
def get_int32(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: int | None = None,
) -> int | None:
    """An int32 field; the rules of ``get_int64`` with int32 bounds."""
    return _get(
        doc, name, _to_int32, path=path, required=required, default=default, empty_is_missing=False
    )


_INT_BOUNDS: Final = {64: (INT64_MIN, INT64_MAX), 32: (INT32_MIN, INT32_MAX)}


def _to_int64(value: Any, path: str) -> int:
    return _to_bounded(value, path, 64)


def _to_int32(value: Any, path: str) -> int:
    return _to_bounded(value, path, 32)


def _to_bounded(value: Any, path: str, bits: int) -> int:
    number = _to_integer(value, path)
    low, high = _INT_BOUNDS[bits]
    if low <= number <= high:
        return number
    if isinstance(value, str) and not _is_int_literal(value):
        raise wrong_type(path, value)  # "1e30": MLflow's _assert_intlike cannot int() it either
    raise _hinted(path, value, f"Value must be a {bits}-bit integer.")


def _is_int_literal(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _to_integer(value: Any, path: str) -> int:
    """protobuf's ``_ConvertInteger``: the integer a JSON value denotes, range unchecked."""
    if isinstance(value, bool):
        raise wrong_type(path, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():  # also NaN and ±Infinity
            raise _hinted(path, value, "Value must be an integer.")
        return int(value)
    if isinstance(value, str):
        return _integer_from_string(value, path)
    raise wrong_type(path, value)


def _integer_from_string(text: str, path: str) -> int:
    # protobuf refuses any space, then tries int() and an integral float ("1e2", "1.0").
    # A string MLflow's _assert_intlike cannot int() is its wrong_type error, text for text.
    if " " in text:
        raise wrong_type(path, text)
    try:
        return int(text)
    except ValueError:
        pass
    number = _float_or_none(text)
    if number is None or not number.is_integer():
        raise wrong_type(path, text)
    return int(number)


# -- doubles ------------------------------------------------------------------------------------


@overload
def get_double(
    doc: Doc, name: str, *, path: str | None = ..., required: Literal[True], default: None = ...
) -> float: ...
@overload
def get_double(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: float
) -> float: ...
@overload
def get_double(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: None = ...
) -> float | None: ...
def get_double(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: float | None = None,
) -> float | None:
    """A double field: JSON numbers and every string Python's ``float()`` reads, which is what
    protobuf accepts: "NaN", "Infinity", "-Infinity", "inf", "1e3", " 1", "1_0".

    Deliberately wider than protobuf in two places, both 200s with a silently stored 0.0 in
    MLflow: the string "nan" (protobuf asks for "NaN") and the bare JSON literals NaN/Infinity
    and overflowing numbers (1e400), which mean NaN/±Infinity here. JSON ``true``/``false`` are
    1.0/0.0, as protobuf parses them (verified on MLflow 3.17.2: stored as 1.0).
    """
    return _get(doc, name, _to_double, path=path, required=required, default=default)


def _to_double(value: Any, path: str) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int):  # bool included: float(True) == 1.0
        return _int_to_double(value)
    if isinstance(value, str):
        number = _float_or_none(value)
        if number is None:
            raise wrong_type(path, value)
        return number
    raise wrong_type(path, value)


def _int_to_double(value: int) -> float:
    try:
        return float(value)
    except OverflowError:  # protobuf crashes (a 500 in MLflow); IEEE parsing rounds to infinity
        return math.inf if value > 0 else -math.inf


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# -- booleans -----------------------------------------------------------------------------------


@overload
def get_bool(
    doc: Doc, name: str, *, path: str | None = ..., required: Literal[True], default: None = ...
) -> bool: ...
@overload
def get_bool(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: bool
) -> bool: ...
@overload
def get_bool(
    doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: None = ...
) -> bool | None: ...
def get_bool(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: bool | None = None,
) -> bool | None:
    """A bool field: JSON true/false, or a string "true"/"false" in any case.

    The string form is MLflow's GET rule (anything else: "Invalid boolean value: X, must be 'true'
    or 'false'."). It is accepted in bodies too, where protobuf would refuse it: the getter cannot
    tell a query string from a body, and being lenient there breaks no client.
    """
    return _get(doc, name, _to_bool, path=path, required=required, default=default)


def _to_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise invalid_parameter(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
        return value.lower() == "true"
    raise wrong_type(path, value)


# -- enums --------------------------------------------------------------------------------------


@overload
def get_enum(
    doc: Doc,
    name: str,
    values: Mapping[str, int],
    *,
    path: str | None = ...,
    required: Literal[True],
    default: None = ...,
) -> str: ...
@overload
def get_enum(
    doc: Doc,
    name: str,
    values: Mapping[str, int],
    *,
    path: str | None = ...,
    required: bool = ...,
    default: str,
) -> str: ...
@overload
def get_enum(
    doc: Doc,
    name: str,
    values: Mapping[str, int],
    *,
    path: str | None = ...,
    required: bool = ...,
    default: None = ...,
) -> str | None: ...
def get_enum(
    doc: Doc,
    name: str,
    values: Mapping[str, int],
    *,
    path: str | None = None,
    required: bool = False,
    default: str | None = None,
) -> str | None:
    """An enum field as its value *name*; ``values`` maps names to numbers.

    Accepts a name or a number (``"ACTIVE_ONLY"``, ``1``, ``"1"``), as ``ParseDict`` does. A value
    that names no member is treated as absent (default, or missing when required): MLflow
    swallows that ParseError and keeps the proto default, so an unparsable ``runs/update`` status
    is ignored, not refused.
    """
    where = path or name
    raw = _raw(doc, name, required)
    member = None if raw is None else _enum_member(raw, values)
    if member is None:
        if required:
            raise missing_parameter(where)
        return default
    return member


def _enum_member(value: Any, values: Mapping[str, int]) -> str | None:
    if isinstance(value, str) and value in values:
        return value
    number = _enum_number(value)
    return next((n for n, v in values.items() if v == number), None)


def _enum_number(value: Any) -> int | None:
    # protobuf falls back to int(value): 1, True, 1.0 and " 1 " all name member 1.
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


# -- repeated and nested fields -----------------------------------------------------------------


def get_list(doc: Doc, name: str, *, path: str | None = None, required: bool = False) -> list[Any]:
    """A repeated field; absent or null is ``[]`` (missing when required); items are unchecked."""
    value = _get(doc, name, _to_list, path=path, required=required, default=None)
    return [] if value is None else value


def _to_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(path, value)
    return value


def expect_object(value: Any, path: str) -> dict[str, Any]:
    """A nested message (a list item such as ``metrics[3]``); anything but an object is
    ``wrong_type`` (MLflow answers a 500 for ``"metrics": [5]``)."""
    if not isinstance(value, dict):
        raise wrong_type(path, value)
    return value
