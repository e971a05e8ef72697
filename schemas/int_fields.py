"""Integer getters over a request document (pure; no I/O), read as MLflow reads them: what
protobuf's ``ParseDict`` accepts, else the field's default, and a 400 only where MLflow's handler
schema type-checks the field (the other getters are in ``schemas/fields.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

from schemas.fields import Getter, float_or_none, raw_value
from schemas.mlflow_errors import missing_parameter
from schemas.protojson import Doc, wrong_type
from schemas.wire import INT64_MAX, INT64_MIN

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


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
    value = raw_value(doc, name, required)
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


def _int_getter(bits: int, checked: bool) -> Getter[int]:
    def get(
        doc: Doc,
        name: str,
        *,
        path: str | None = None,
        required: bool = False,
        default: int | None = None,
    ) -> int | None:
        field = read_int(doc, name, bits, path=path, required=required, checked=checked)
        return _int_or_default(field, required, default)

    return cast(Getter[int], get)


# An int64 field as the handler reads it: what ParseDict accepts (JSON integers, integral floats
# ``5.0``, decimal strings ``"10"``, ``"1e2"``); a value it refuses reads as ``default`` (0 when
# required: the field is present, protobuf holds 0). See ``read_int``.
get_int64: Final = _int_getter(64, checked=True)
# An int32 field; the rules of ``get_int64`` with int32 bounds.
get_int32: Final = _int_getter(32, checked=True)
# An int64 field nothing type-checks (nested fields): a value ``int()`` cannot read is no 400.
get_nested_int64: Final = _int_getter(64, checked=False)


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
        as_float = float_or_none(value)  # "1e2", "1.0"
        if as_float is not None and as_float.is_integer():
            return int(as_float)
    return None
