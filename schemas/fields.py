"""Typed getters over a request document (pure; no I/O): what protobuf's ``ParseDict`` accepts,
and otherwise MLflow's 400 with its message (``schemas/protojson.py`` tells how MLflow turns a
request into a message). Integers follow MLflow further: a value ParseDict refuses but MLflow's
schema lets through reads as the field's default, as in MLflow (see the integers section).

Getters take the field ``name`` and an optional ``path`` used in messages
(``metrics[3].timestamp``); absent and JSON ``null`` mean "not set", as in protobuf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, overload

from schemas.mlflow_errors import invalid_parameter, missing_parameter
from schemas.protojson import Doc, schema_error, wrong_type
from schemas.wire import INT64_MAX, INT64_MIN

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

T = TypeVar("T")


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
        raise schema_error(path, text, "Strings must not contain NUL characters or surrogates.")
    return text


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone (or CESU-style paired) surrogates from \\ud800 escapes
        return False
    return True


# -- integers -----------------------------------------------------------------------------------
#
# MLflow swallows protobuf's parse error (``schemas/protojson.py``), so an integer field holds
# what ``ParseDict`` accepted, or else its default; a value is a 400 only where the handler's
# schema type-checks that top-level field (``_assert_intlike``: whatever Python's ``int()``
# reads) and ``int()`` cannot read it. ``1.5``, ``true``, ``" 7"`` and ``2**63`` are therefore
# accepted and the handler sees the default (checked on 3.17.2: ``step: 1.5`` stores step 0).
# Not reproduced: ParseDict stops at the refused field, so MLflow also leaves every field after
# it in the body unset; Sluice keeps those.


@dataclass(frozen=True, slots=True)
class IntField:
    """An integer field as MLflow's handler sees it: the request's value and what protobuf
    stored (None when absent or refused), for handlers whose schema lambdas read the raw value
    (``int(x) <= 50000``) or which re-read the query string themselves."""

    raw: Any
    parsed: int | None

    def python_int(self) -> int | None:
        """``int(raw)`` as MLflow's schema lambdas compute it; None where that raises."""
        return python_int(self.raw)


def python_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # a 500 in MLflow where it is not caught
        return None


def read_int(
    doc: Doc,
    name: str,
    bits: int = 64,
    *,
    path: str | None = None,
    required: bool = False,
    checked: bool = True,
) -> IntField:
    """An integer field of ``bits`` (64 or 32). ``checked``: MLflow's handler schema lists the
    field with ``_assert_intlike`` (false for nested fields, which nothing type-checks)."""
    where = path or name
    value = _raw(doc, name, required)
    if value is None:
        if required:
            raise missing_parameter(where)
        return IntField(None, None)
    parsed = protobuf_int(value, bits)
    if parsed is None and checked and python_int(value) is None:
        raise wrong_type(where, value)
    return IntField(value, parsed)


def check_int_at_most(field: IntField, limit: int, path: str) -> None:
    """MLflow's schema lambda ``_assert_less_than_or_equal(int(x), limit)``: it reads the raw
    value, so ``2**63`` or ``" 5000000"`` is refused here even where protobuf dropped it. A
    value ``int()`` cannot read (``"1e2"``, which protobuf accepts) crashes MLflow: a 400 here."""
    if field.raw is None:
        return
    number = field.python_int()
    if number is None or number > limit:
        raise wrong_type(path, field.raw)


@overload
def get_int64(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: Literal[True],
    default: None = ...,
    checked: bool = ...,
) -> int: ...
@overload
def get_int64(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: int,
    checked: bool = ...,
) -> int: ...
@overload
def get_int64(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: None = ...,
    checked: bool = ...,
) -> int | None: ...
def get_int64(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: int | None = None,
    checked: bool = True,
) -> int | None:
    """An int64 field as the handler reads it: what ParseDict accepts (JSON integers, integral
    floats ``5.0``, decimal strings ``"10"``, ``"1e2"``); a value it refuses reads as
    ``default`` (0 when required: the field is present, protobuf holds 0). See ``read_int``."""
    return _int_or_default(
        read_int(doc, name, 64, path=path, required=required, checked=checked), required, default
    )


@overload
def get_int32(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: Literal[True],
    default: None = ...,
    checked: bool = ...,
) -> int: ...
@overload
def get_int32(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: int,
    checked: bool = ...,
) -> int: ...
@overload
def get_int32(
    doc: Doc,
    name: str,
    *,
    path: str | None = ...,
    required: bool = ...,
    default: None = ...,
    checked: bool = ...,
) -> int | None: ...
def get_int32(
    doc: Doc,
    name: str,
    *,
    path: str | None = None,
    required: bool = False,
    default: int | None = None,
    checked: bool = True,
) -> int | None:
    """An int32 field; the rules of ``get_int64`` with int32 bounds."""
    return _int_or_default(
        read_int(doc, name, 32, path=path, required=required, checked=checked), required, default
    )


def _int_or_default(field: IntField, required: bool, default: int | None) -> int | None:
    if field.parsed is not None:
        return field.parsed
    if field.raw is not None and required:
        return 0
    return default


_INT_BOUNDS: Final = {64: (INT64_MIN, INT64_MAX), 32: (INT32_MIN, INT32_MAX)}


def protobuf_int(value: Any, bits: int = 64) -> int | None:
    """The integer protobuf's ``ParseDict`` stores for a JSON value, or None where it refuses:
    booleans, fractions, strings with a space or naming no integral number, lists, objects and
    values outside the field's range."""
    number = _protobuf_integer(value)
    low, high = _INT_BOUNDS[bits]
    return number if number is not None and low <= number <= high else None


def _protobuf_integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # NaN and ±Infinity are not integers
    if isinstance(value, str) and " " not in value:
        number = python_int(value)
        if number is not None:
            return number
        as_float = _float_or_none(value)  # "1e2", "1.0"
        if as_float is not None and as_float.is_integer():
            return int(as_float)
    return None


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
