"""runs/log-parameter, runs/set-tag, runs/delete-tag: immutability of params, upsert of tags,
truncation of long values, the mlflow.runName tag, and the error paths."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    ajax_case,
    api,
    case,
    get_run,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "runs/create",
    "runs/get",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
    "runs/log-batch",
) | ajax_api(
    "experiments/create",
    "runs/create",
    "runs/get",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
)


def param(key: str = "p", value: Any = "v", expect: int = 200, **extra: Any) -> Step:
    body: dict[str, Any] = {"run_id": "${run}", "key": key, **extra}
    if value is not None:
        body["value"] = value
    return post("runs/log-parameter", body, expect=expect)


def tag(key: str = "t", value: Any = "v", expect: int = 200, **extra: Any) -> Step:
    body: dict[str, Any] = {"run_id": "${run}", "key": key, **extra}
    if value is not None:
        body["value"] = value
    return post("runs/set-tag", body, expect=expect)


def untag(key: str = "t", expect: int = 200) -> Step:
    return post("runs/delete-tag", {"run_id": "${run}", "key": key}, expect=expect)


def _then_read(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, run_setup(), *steps, get_run(), doc=doc)


_PARAMS: list[Case] = [
    _then_read("log-param/basic", param("lr", "0.01")),
    _then_read("log-param/same-value-twice", param("lr", "0.01"), param("lr", "0.01")),
    _then_read(
        "log-param/change-value-rejected",
        param("lr", "0.01"),
        param("lr", "0.02", expect=400),
        doc="params are immutable; the stored value stays",
    ),
    _then_read("log-param/missing-value-is-empty", param("p", None)),
    _then_read("log-param/empty-value", param("p", "")),
    _then_read(
        "log-param/empty-then-value-rejected",
        param("p", ""),
        param("p", "x", expect=400),
    ),
    _then_read("log-param/value-6000-chars", param("p", "v" * 6000)),
    _then_read("log-param/value-6001-chars-truncated", param("p", "v" * 5999 + "xy")),
    _then_read(
        "log-param/truncated-value-relogged",
        param("p", "v" * 7000),
        param("p", "v" * 7000),
        doc="the re-logged long value equals the stored one after truncation",
    ),
    _then_read("log-param/key-250-chars", param("k" * 250, "v")),
    _then_read("log-param/unicode-value", param("p", "ünïcødé ✓ \n tab\t")),
    _then_read(
        "log-param/legacy-run-uuid",
        post("runs/log-parameter", {"run_uuid": "${run}", "key": "p", "value": "v"}),
    ),
    _then_read(
        "log-param/conflict-with-batch-param",
        post("runs/log-batch", {"run_id": "${run}", "params": [{"key": "p", "value": "1"}]}),
        param("p", "2", expect=400),
    ),
    case("log-param/key-251-chars", run_setup(), param("k" * 251, "v", expect=400)),
    case(
        "log-param/missing-key",
        run_setup(),
        post("runs/log-parameter", {"run_id": "${run}", "value": "v"}, expect=400),
    ),
    case("log-param/value-int", run_setup(), param("p", 5, expect=400)),
    case("log-param/value-float", run_setup(), param("p", 0.5, expect=400)),
    case("log-param/key-int", run_setup(), param(5, "v", expect=400)),  # type: ignore[arg-type]
    case(
        "log-param/missing-run-id",
        post("runs/log-parameter", {"key": "p", "value": "v"}, expect=400),
    ),
    case(
        "log-param/unknown-run",
        post("runs/log-parameter", {"run_id": "0" * 32, "key": "p", "value": "v"}, expect=404),
    ),
]

_TAGS: list[Case] = [
    _then_read("set-tag/basic", tag("team", "a")),
    _then_read("set-tag/overwrite", tag("team", "a"), tag("team", "b"), doc="tags are upserts"),
    _then_read("set-tag/missing-value", tag("t", None)),
    _then_read("set-tag/empty-value", tag("t", "")),
    _then_read("set-tag/value-8000-chars", tag("t", "v" * 8000)),
    _then_read("set-tag/value-8001-chars-truncated", tag("t", "v" * 7999 + "xy")),
    _then_read("set-tag/key-250-chars", tag("k" * 250)),
    _then_read("set-tag/run-name-tag-renames-run", tag("mlflow.runName", "renamed")),
    _then_read(
        "set-tag/mlflow-user-tag", tag("mlflow.user", "bob"), doc="user_id does not follow the tag"
    ),
    _then_read("set-tag/note-content", tag("mlflow.note.content", "# notes\nmarkdown")),
    _then_read(
        "set-tag/legacy-run-uuid",
        post("runs/set-tag", {"run_uuid": "${run}", "key": "t", "value": "v"}),
    ),
    case("set-tag/key-251-chars", run_setup(), tag("k" * 251, expect=400)),
    case(
        "set-tag/missing-key",
        run_setup(),
        post("runs/set-tag", {"run_id": "${run}", "value": "v"}, expect=400),
    ),
    case("set-tag/value-int", run_setup(), tag("t", 3, expect=400)),
    case("set-tag/missing-run-id", post("runs/set-tag", {"key": "t", "value": "v"}, expect=400)),
    case(
        "set-tag/unknown-run",
        post("runs/set-tag", {"run_id": "0" * 32, "key": "t", "value": "v"}, expect=404),
    ),
]

_DELETE_TAGS: list[Case] = [
    _then_read("delete-tag/existing", tag("t", "v"), untag("t")),
    _then_read("delete-tag/missing-tag", untag("nope", expect=404)),
    _then_read("delete-tag/twice", tag("t", "v"), untag("t"), untag("t", expect=404)),
    _then_read("delete-tag/then-set-again", tag("t", "v"), untag("t"), tag("t", "w")),
    _then_read(
        "delete-tag/run-name-tag",
        untag("mlflow.runName"),
        doc="deleting mlflow.runName: what run_name then reports",
    ),
    case(
        "delete-tag/missing-key",
        run_setup(),
        post("runs/delete-tag", {"run_id": "${run}"}, expect=400),
    ),
    case("delete-tag/missing-run-id", post("runs/delete-tag", {"key": "t"}, expect=400)),
    case(
        "delete-tag/unknown-run",
        post("runs/delete-tag", {"run_id": "0" * 32, "key": "t"}, expect=404),
    ),
]

_AJAX = [
    ajax_case(next(c for c in _PARAMS if c["id"] == "log-param/change-value-rejected")),
    ajax_case(next(c for c in _TAGS if c["id"] == "set-tag/overwrite")),
    ajax_case(next(c for c in _DELETE_TAGS if c["id"] == "delete-tag/existing")),
]

CASES = _PARAMS + _TAGS + _DELETE_TAGS + _AJAX
