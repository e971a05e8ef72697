"""Step builders shared by the case files (not a case file itself: its name starts with `_`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack, cast

from tests.compat.model import Case, Step

API = "/api/2.0/mlflow/"
AJAX = "/ajax-api/2.0/mlflow/"
# Reads of a run: the order of params, tags and latest metrics is not part of the contract.
RUN_SETS = ("run.data.tags", "run.data.params", "run.data.metrics")
RUNS_SETS = ("runs[*].data.tags", "runs[*].data.params", "runs[*].data.metrics")
# A time well outside "now", so the normaliser keeps it and both servers must echo it exactly.
T0 = 1_600_000_000_000


class Options(TypedDict, total=False):
    """The comparison options of a step (see `StepOptions`), as keyword arguments."""

    prefix: str  # the API root the endpoint hangs off (default /api/2.0/mlflow/)
    headers: Mapping[str, str]
    capture: Mapping[str, str]
    expect: int
    message_prefix: str
    message_regex: str
    unordered: Sequence[str]
    ignore: Sequence[str]


def api(*endpoints: str) -> frozenset[str]:
    return frozenset(API + endpoint for endpoint in endpoints)


def ajax_api(*endpoints: str) -> frozenset[str]:
    return frozenset(AJAX + endpoint for endpoint in endpoints)


def _step(method: str, endpoint: str, options: Mapping[str, Any]) -> Step:
    opts = dict(options)
    prefix = opts.pop("prefix", API)
    step: Step = {"method": method, "path": prefix + endpoint}
    step.update(opts)  # type: ignore[typeddict-item]
    return step


def post(endpoint: str, body: Any = None, **options: Unpack[Options]) -> Step:
    """POST with a JSON body (an empty object when `body` is None)."""
    return _step("POST", endpoint, {"json": {} if body is None else body, **options})


def get(endpoint: str, query: Mapping[str, Any] | None = None, **options: Unpack[Options]) -> Step:
    return _step("GET", endpoint, {"query": dict(query or {}), **options})


def create_experiment(var: str = "exp", name: str = "${uid}", **body: Any) -> Step:
    return post("experiments/create", {"name": name, **body}, capture={var: "experiment_id"})


def get_experiment(var: str = "exp", **options: Unpack[Options]) -> Step:
    return get("experiments/get", {"experiment_id": f"${{{var}}}"}, **options)


def create_run(var: str = "run", exp: str = "${exp}", **body: Any) -> Step:
    return post(
        "runs/create",
        {"experiment_id": exp, **body},
        capture={var: "run.info.run_id"},
        unordered=RUN_SETS,
    )


def get_run(var: str = "run", **options: Unpack[Options]) -> Step:
    options.setdefault("unordered", RUN_SETS)
    return get("runs/get", {"run_id": f"${{{var}}}"}, **options)


def run_setup(run_name: str = "r", **body: Any) -> list[Step]:
    """An experiment named ${uid} with one run ${run} in it."""
    return [create_experiment(), create_run(run_name=run_name, start_time=T0, **body)]


def case(case_id: str, *steps: Step | Iterable[Step], doc: str = "") -> Case:
    """A case from steps and lists of steps (flattened)."""
    flat: list[Step] = []
    for item in steps:
        if isinstance(item, dict):
            flat.append(cast(Step, item))
        else:
            flat.extend(item)
    built: Case = {"id": case_id, "steps": flat}
    if doc:
        built["doc"] = doc
    return built


def on_ajax(step: Step) -> Step:
    """The same step on the /ajax-api twin of its endpoint."""
    if not step["path"].startswith("/api/"):
        return step
    return {**step, "path": "/ajax-api/" + step["path"].removeprefix("/api/")}


def ajax_case(source: Case, suffix: str = "@ajax") -> Case:
    """A copy of `source` with every step sent to the /ajax-api twin."""
    return {**source, "id": source["id"] + suffix, "steps": [on_ajax(s) for s in source["steps"]]}


def metric(key: str, value: Any, timestamp: int = 1000, step: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "value": value, "timestamp": timestamp}
    if step is not None:
        item["step"] = step
    return item


def kv(key: str, value: Any = None) -> dict[str, Any]:
    """A param or tag item; `value=None` leaves the value out."""
    return {"key": key} if value is None else {"key": key, "value": value}


def many(prefix: str, count: int, value: str = "v") -> list[dict[str, Any]]:
    return [kv(f"{prefix}{i}", value) for i in range(count)]


# Length of ${uid} (see tests/compat/test_compat.py), for names at an exact length limit.
UID_LENGTH = 12
