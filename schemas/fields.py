"""Typed getters over a request document (pure; no I/O): what protobuf's ``ParseDict`` accepts,
and otherwise MLflow's 400 with its message (``schemas/protojson.py`` tells how MLflow turns a
request into a message). Integers follow MLflow further: a value ParseDict refuses but MLflow's
schema lets through reads as the field's default, as in MLflow (``schemas/int_fields.py``).

Getters take the field ``name`` and an optional ``path`` used in messages
(``metrics[3].timestamp``); absent and JSON ``null`` mean "not set", as in protobuf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol, TypeVar, cast, overload

from schemas.mlflow_errors import invalid_parameter, missing_parameter
from schemas.protojson import Doc, schema_error, wrong_type

T = TypeVar("T")
V = TypeVar("V")


# -- field lookup -------------------------------------------------------------------------------


@functools.cache
def json_name(name: str) -> str:
    """protobuf's JSON name of a field: ``run_id`` -> ``runId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def raw_value(doc: Doc, name: str, required: bool) -> Any:
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
    value = raw_value(doc, name, required)
    # MLflow's _assert_required treats "" as missing; int fields check the type first, so there
    # "" is a type error (schema order [_assert_intlike, _assert_required]).
    if value is None or (required and empty_is_missing and value == ""):
        if required:
            raise missing_parameter(where)
        return default
    return convert(value, where)


class Getter(Protocol[V]):
    """A typed field getter: a ``V`` when the field is required or has a default, else
    ``V | None`` (absent or JSON null)."""

    @overload
    def __call__(
        self,
        doc: Doc,
        name: str,
        *,
        path: str | None = ...,
        required: Literal[True],
        default: None = ...,
    ) -> V: ...
    @overload
    def __call__(
        self, doc: Doc, name: str, *, path: str | None = ..., required: bool = ..., default: V
    ) -> V: ...
    @overload
    def __call__(
        self,
        doc: Doc,
        name: str,
        *,
        path: str | None = ...,
        required: bool = ...,
        default: None = ...,
    ) -> V | None: ...


def getter(convert: Callable[[Any, str], V]) -> Getter[V]:
    """The getter of the fields ``convert`` reads (it raises MLflow's 400 for a wrong value)."""

    def get(
        doc: Doc,
        name: str,
        *,
        path: str | None = None,
        required: bool = False,
        default: V | None = None,
    ) -> V | None:
        return _get(doc, name, convert, path=path, required=required, default=default)

    return cast(Getter[V], get)


# -- strings ------------------------------------------------------------------------------------


def _to_string(value: Any, path: str) -> str:
    """A string field; non-strings are ``wrong_type``; "" counts as missing when required."""
    if not isinstance(value, str):
        raise wrong_type(path, value)
    return value


def _to_storable_string(value: Any, path: str) -> str:
    """A string PostgreSQL text and UTF-8 (the Kafka record) can hold: no NUL characters or
    surrogates (MLflow on PostgreSQL answers those with a 500)."""
    text = _to_string(value, path)
    if "\x00" in text or not _encodes(text):
        raise schema_error(path, text, "Strings must not contain NUL characters or surrogates.")
    return text


get_string: Final = getter(_to_storable_string)
# Only where a later name rule (``validate_key``, the run-id regex) rejects NUL characters and
# surrogates with MLflow's own message.
get_unchecked_string: Final = getter(_to_string)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone (or CESU-style paired) surrogates from \\ud800 escapes
        return False
    return True


# -- doubles ------------------------------------------------------------------------------------


def _to_double(value: Any, path: str) -> float:
    """A double field: JSON numbers and every string Python's ``float()`` reads, which is what
    protobuf accepts: "NaN", "Infinity", "-Infinity", "inf", "1e3", " 1", "1_0".

    Deliberately wider than protobuf in two places, both 200s with a silently stored 0.0 in
    MLflow: the string "nan" (protobuf asks for "NaN") and the bare JSON literals NaN/Infinity
    and overflowing numbers (1e400), which mean NaN/±Infinity here. JSON ``true``/``false`` are
    1.0/0.0, as protobuf parses them (verified on MLflow 3.17.2: stored as 1.0).
    """
    if isinstance(value, float):
        return value
    if isinstance(value, int):  # bool included: float(True) == 1.0
        return _int_to_double(value)
    if isinstance(value, str):
        number = float_or_none(value)
        if number is None:
            raise wrong_type(path, value)
        return number
    raise wrong_type(path, value)


get_double: Final = getter(_to_double)


def _int_to_double(value: int) -> float:
    try:
        return float(value)
    except OverflowError:  # protobuf crashes (a 500 in MLflow); IEEE parsing rounds to infinity
        return math.inf if value > 0 else -math.inf


def float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# -- booleans -----------------------------------------------------------------------------------


def _to_bool(value: Any, path: str) -> bool:
    """A bool field: JSON true/false, or a string "true"/"false" in any case.

    The string form is MLflow's GET rule (anything else: "Invalid boolean value: X, must be 'true'
    or 'false'."). It is accepted in bodies too, where protobuf would refuse it: the getter cannot
    tell a query string from a body, and being lenient there breaks no client.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise invalid_parameter(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
        return value.lower() == "true"
    raise wrong_type(path, value)


get_bool: Final = getter(_to_bool)


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
    raw = raw_value(doc, name, required)
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
