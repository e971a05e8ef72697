"""Request fields of the metric history reads (pure): ``get-history``'s page size and
``get-history-bulk-interval``'s runs, key and step window, in MLflow's order and texts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.fields import get_list, get_string
from schemas.int_fields import get_int32, read_int
from schemas.mlflow_errors import API_DOCS_HINT, MlflowError, invalid_parameter
from schemas.protojson import wrong_type
from schemas.wire import INT64_MAX, INT64_MIN

MAX_RUNS_PER_REQUEST: Final = 100
MAX_RESULTS_PER_RUN: Final = 2500
MAX_BULK_HISTORY_RESULTS: Final = 25000


def history_max_results(doc: dict[str, object]) -> int | None:
    """MLflow parses the query with protobuf and swallows a parse error, so an unparsable
    ``max_results`` ("abc", "1.5") reads as absent: the whole history, unpaged."""
    try:
        max_results = get_int32(doc, "max_results")
    except MlflowError:
        return None
    if max_results is not None and max_results <= 0:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    return max_results


@dataclass(frozen=True, slots=True)
class IntervalRequest:
    run_ids: list[str]  # request order, repeats kept (MLflow answers each)
    metric_key: str
    max_results: int
    steps: tuple[int, int] | None


def parse_interval_request(doc: Mapping[str, Any]) -> IntervalRequest:
    """The request schema of ``get-history-bulk-interval`` (pure), MLflow's order and texts."""
    run_ids = get_list(doc, "run_ids", required=True)
    if not all(isinstance(item, str) for item in run_ids):
        raise wrong_type("run_ids", run_ids)
    if len(run_ids) > MAX_RUNS_PER_REQUEST:
        raise invalid_parameter(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_PER_REQUEST}"
            f" run_ids. Received {len(run_ids)} run_ids. {API_DOCS_HINT}"
        )
    metric_key = get_string(doc, "metric_key", required=True)
    # MLflow's handler re-reads these three from the query string with int(), so protobuf's
    # view of them does not matter: " 7" is 7, "2147483648" is too many results.
    start, end = _query_int(doc, "start_step"), _query_int(doc, "end_step")
    max_results = _query_int(doc, "max_results")
    if max_results is None:
        max_results = MAX_RESULTS_PER_RUN
    if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
        raise invalid_parameter(
            f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}. {API_DOCS_HINT}"
        )
    window = _step_window(start, end)
    if window is not None:
        # Steps are 64-bit: a bound beyond that range selects what the range's end does (as
        # MLflow on PostgreSQL answers; on SQLite its driver fails with a 500).
        low, high = max(window[0], INT64_MIN), min(window[1], INT64_MAX)
        window = (low, high) if low <= high else (INT64_MAX, INT64_MIN)  # empty
    return IntervalRequest(run_ids, metric_key, max_results, window)


def _query_int(doc: Mapping[str, Any], name: str) -> int | None:
    """``int(value)`` of a query parameter; a value it cannot read (``"1e2"``, which protobuf
    accepts, so the schema lets it through) makes MLflow's handler crash: a 400 here."""
    field = read_int(doc, name)
    if field.raw is None:
        return None
    number = field.python_int()
    if number is None:
        raise wrong_type(name, field.raw)
    return number


def _step_window(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise invalid_parameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start > end:
        raise invalid_parameter(
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}."
        )
    return start, end
