"""Request fields shared by ``runs/search`` and ``experiments/search`` (pure): view type,
``max_results`` bounds, and cutting a fetched page into rows and a next-page token."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final, TypeVar

from api.page_tokens import encode_offset
from schemas.int_fields import IntField, check_int_at_most
from schemas.mlflow_errors import invalid_parameter

MAX_RESULTS_THRESHOLD: Final = 50_000
RUN_MAX_RESULTS_DEFAULT: Final = 1_000  # proto2 default of SearchRuns.max_results

T = TypeVar("T")


class ViewType(enum.IntEnum):
    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


_STAGES: Final = {
    ViewType.ACTIVE_ONLY: ("active",),
    ViewType.DELETED_ONLY: ("deleted",),
    ViewType.ALL: ("active", "deleted"),
}


_NUMBERS: Final = frozenset(int(view) for view in ViewType)


def parse_view_type(value: object) -> ViewType:
    """``run_view_type`` / ``view_type`` by enum name or number; absent means ACTIVE_ONLY.
    MLflow swallows protobuf's parse error for a value naming no member, so such a value
    ("EVERYTHING", "all", 7) is ignored: ACTIVE_ONLY, not a 400 (checked on 3.17.2)."""
    if isinstance(value, str) and value in ViewType.__members__:
        return ViewType[value]
    number = _as_int(value)
    if number is not None and number in _NUMBERS:
        return ViewType(number)
    return ViewType.ACTIVE_ONLY


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def lifecycle_stages(view_type: ViewType) -> tuple[str, ...]:
    return _STAGES[view_type]


def run_max_results(field: IntField) -> int:
    """``runs/search``: default 1000. The upper bound is MLflow's request-schema lambda on the
    raw value (so a value protobuf dropped, ``2**63``, is still refused there); the lower one
    its store's check of what protobuf kept (the default, for a dropped value)."""
    check_int_at_most(field, MAX_RESULTS_THRESHOLD, "max_results")
    return _positive(RUN_MAX_RESULTS_DEFAULT if field.parsed is None else field.parsed)


def experiment_max_results(value: int | None) -> int:
    """``experiments/search`` has no default: an absent value reads as 0, which is a 400."""
    checked = _positive(0 if value is None else value)
    if checked > MAX_RESULTS_THRESHOLD:
        raise invalid_parameter(
            f"Invalid value {checked} for parameter 'max_results' supplied. "
            f"It must be at most {MAX_RESULTS_THRESHOLD}"
        )
    return checked


def _positive(value: int) -> int:
    if value < 1:
        raise invalid_parameter(
            f"Invalid value {value} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    return value


def page_of(rows: Sequence[T], max_results: int, offset: int) -> tuple[list[T], str | None]:
    """The page and the next token from a query that fetched ``max_results + 1`` rows: the
    extra row only proves that another page exists, as in MLflow."""
    if len(rows) > max_results:
        return list(rows[:max_results]), encode_offset(offset + max_results)
    return list(rows), None
