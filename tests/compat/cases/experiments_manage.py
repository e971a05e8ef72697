"""experiments/update, delete, restore, set-experiment-tag, delete-experiment-tag, and how
deleting an experiment cascades to its runs."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    ajax_case,
    api,
    case,
    create_experiment,
    create_run,
    get,
    get_experiment,
    get_run,
    post,
    run_setup,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "experiments/get",
    "experiments/get-by-name",
    "experiments/update",
    "experiments/delete",
    "experiments/restore",
    "experiments/set-experiment-tag",
    "experiments/delete-experiment-tag",
    "runs/create",
    "runs/get",
    "runs/delete",
    "runs/log-metric",
) | ajax_api(
    "experiments/create",
    "experiments/get",
    "experiments/update",
    "experiments/delete",
    "experiments/restore",
    "experiments/set-experiment-tag",
)

TAGS = ("experiment.tags",)


def delete(expect: int = 200, exp: str = "${exp}") -> Step:
    return post("experiments/delete", {"experiment_id": exp}, expect=expect)


def restore(expect: int = 200, exp: str = "${exp}") -> Step:
    return post("experiments/restore", {"experiment_id": exp}, expect=expect)


def rename(new_name: Any, expect: int = 200, **options: Any) -> Step:
    body = {"experiment_id": "${exp}", "new_name": new_name}
    return post("experiments/update", body, expect=expect, **options)


def set_tag(key: Any = "k", value: Any = "v", expect: int = 200) -> Step:
    body: dict[str, Any] = {"experiment_id": "${exp}", "key": key}
    if value is not None:
        body["value"] = value
    return post("experiments/set-experiment-tag", body, expect=expect)


def delete_tag(key: str = "k", expect: int = 200) -> Step:
    body = {"experiment_id": "${exp}", "key": key}
    return post("experiments/delete-experiment-tag", body, expect=expect)


def read() -> Step:
    return get_experiment(unordered=TAGS)


_LIFECYCLE: list[Case] = [
    case("experiments/delete-then-get", create_experiment(), delete(), read()),
    case(
        "experiments/delete-then-get-by-name",
        create_experiment(),
        delete(),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}),
        doc="get-by-name also returns deleted experiments",
    ),
    case(
        "experiments/deleted-name-stays-reserved",
        create_experiment(),
        delete(),
        post(
            "experiments/create",
            {"name": "${uid}"},
            expect=400,
            message_prefix="Experiment(name=${uid}) already exists.",
        ),
    ),
    case("experiments/delete-twice", create_experiment(), delete(), delete(404)),
    case("experiments/delete-unknown", delete(404, exp="987654321")),
    case("experiments/delete-non-integer-id", delete(400, exp="abc")),
    case("experiments/delete-missing-id", post("experiments/delete", {}, expect=400)),
    case("experiments/restore-after-delete", create_experiment(), delete(), restore(), read()),
    case("experiments/restore-active", create_experiment(), restore(404)),
    case("experiments/restore-unknown", restore(404, exp="987654321")),
    case("experiments/restore-missing-id", post("experiments/restore", {}, expect=400)),
    case(
        "experiments/delete-cascades-to-runs",
        run_setup(),
        delete(),
        get_run(),
        doc="every run of a deleted experiment becomes deleted",
    ),
    case(
        "experiments/restore-reactivates-all-runs",
        run_setup(),
        create_run("other", run_name="other"),
        post("runs/delete", {"run_id": "${other}"}),
        delete(),
        restore(),
        get_run(),
        get_run("other"),
        doc="restore re-activates every run, including ones deleted individually before",
    ),
    case(
        "experiments/create-run-in-deleted-experiment",
        create_experiment(),
        delete(),
        post("runs/create", {"experiment_id": "${exp}"}, expect=400),
    ),
    case(
        "experiments/log-to-run-of-deleted-experiment",
        run_setup(),
        delete(),
        post(
            "runs/log-metric",
            {"run_id": "${run}", "key": "m", "value": 1, "timestamp": 1},
            expect=400,
        ),
    ),
]

_RENAME: list[Case] = [
    case("experiments/rename", create_experiment(), rename("${uid}-new"), read()),
    case(
        "experiments/rename-then-get-by-old-name",
        create_experiment(),
        rename("${uid}-new"),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}, expect=404),
        get("experiments/get-by-name", {"experiment_name": "${uid}-new"}),
    ),
    case("experiments/rename-to-same-name", create_experiment(), rename("${uid}"), read()),
    case(
        "experiments/rename-to-existing-name",
        create_experiment("a", name="${uid}-a"),
        create_experiment(name="${uid}-b"),
        rename("${uid}-a", expect=400, message_regex=""),
        doc="BAD_REQUEST carrying the raw database error",
    ),
    case(
        "experiments/rename-deleted", create_experiment(), delete(), rename("${uid}-x", expect=500)
    ),
    case(
        "experiments/rename-missing-new-name",
        create_experiment(),
        post("experiments/update", {"experiment_id": "${exp}"}, expect=400),
    ),
    case("experiments/rename-empty-new-name", create_experiment(), rename("", expect=400)),
    case("experiments/rename-new-name-int", create_experiment(), rename(5, expect=400)),
    case(
        "experiments/rename-unknown",
        post(
            "experiments/update", {"experiment_id": "987654321", "new_name": "${uid}"}, expect=404
        ),
    ),
    case("experiments/rename-too-long", create_experiment(), rename("x" * 501, expect=400)),
]

_TAGS: list[Case] = [
    case("experiment-tags/set", create_experiment(), set_tag("team", "a"), read()),
    case(
        "experiment-tags/overwrite",
        create_experiment(),
        set_tag("team", "a"),
        set_tag("team", "b"),
        read(),
    ),
    case("experiment-tags/missing-value", create_experiment(), set_tag("k", None), read()),
    case("experiment-tags/value-20000", create_experiment(), set_tag("k", "v" * 20000), read()),
    case("experiment-tags/value-20001", create_experiment(), set_tag("k", "v" * 20001, expect=400)),
    case("experiment-tags/key-250", create_experiment(), set_tag("k" * 250), read()),
    case("experiment-tags/key-251", create_experiment(), set_tag("k" * 251, expect=400)),
    case("experiment-tags/bad-key", create_experiment(), set_tag("a#b", expect=400)),
    case(
        "experiment-tags/missing-key",
        create_experiment(),
        post(
            "experiments/set-experiment-tag", {"experiment_id": "${exp}", "value": "v"}, expect=400
        ),
    ),
    case(
        "experiment-tags/unknown-experiment",
        post(
            "experiments/set-experiment-tag",
            {"experiment_id": "987654321", "key": "k", "value": "v"},
            expect=404,
        ),
    ),
    case(
        "experiment-tags/on-deleted-experiment", create_experiment(), delete(), set_tag(expect=400)
    ),
    case("experiment-tags/delete", create_experiment(), set_tag("k"), delete_tag("k"), read()),
    case("experiment-tags/delete-missing", create_experiment(), delete_tag("nope", expect=404)),
    case(
        "experiment-tags/delete-on-deleted-experiment",
        create_experiment(),
        set_tag("k"),
        delete(),
        delete_tag("k", expect=400),
    ),
    case(
        "experiment-tags/delete-missing-key",
        create_experiment(),
        post("experiments/delete-experiment-tag", {"experiment_id": "${exp}"}, expect=400),
    ),
    case(
        "experiment-tags/set-then-get-by-name",
        create_experiment(),
        set_tag("a"),
        set_tag("b"),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}, unordered=TAGS),
    ),
]

_AJAX = [
    ajax_case(next(c for c in _RENAME if c["id"] == "experiments/rename")),
    ajax_case(next(c for c in _LIFECYCLE if c["id"] == "experiments/restore-after-delete")),
    ajax_case(next(c for c in _TAGS if c["id"] == "experiment-tags/set")),
]

CASES = _LIFECYCLE + _RENAME + _TAGS + _AJAX
