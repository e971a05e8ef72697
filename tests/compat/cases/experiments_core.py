"""experiments/create, experiments/get, experiments/get-by-name: shapes and error paths."""

from __future__ import annotations

from tests.compat.cases._build import (
    UID_LENGTH,
    ajax_api,
    ajax_case,
    api,
    case,
    create_experiment,
    get,
    get_experiment,
    post,
)
from tests.compat.model import Case

ENDPOINTS = api("experiments/create", "experiments/get", "experiments/get-by-name") | ajax_api(
    "experiments/create", "experiments/get", "experiments/get-by-name"
)

TAGS_UNORDERED = ("experiment.tags",)


def _create_error(case_id: str, body: object) -> Case:
    return case(case_id, post("experiments/create", body, expect=400))


def _get_error(case_id: str, query: dict[str, str], status: int) -> Case:
    return case(case_id, get("experiments/get", query, expect=status))


_BASIC: list[Case] = [
    case("experiments/create-then-get", create_experiment(), get_experiment()),
    case(
        "experiments/create-then-get-by-name",
        create_experiment(),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}),
    ),
    case(
        "experiments/create-with-tags",
        create_experiment(
            tags=[{"key": "team", "value": "a"}, {"key": "mlflow.note.content", "value": "n"}]
        ),
        get_experiment(unordered=TAGS_UNORDERED),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}, unordered=TAGS_UNORDERED),
    ),
    case(
        "experiments/create-tag-without-value",
        create_experiment(tags=[{"key": "k"}]),
        get_experiment(),
    ),
    case(
        "experiments/create-with-artifact-location",
        create_experiment(artifact_location="s3://bucket/${uid}/art"),
        get_experiment(),
    ),
    case(
        "experiments/create-unknown-fields-ignored",
        create_experiment(bogus_field=1, another={"x": 1}),
        get_experiment(),
    ),
    case(
        "experiments/create-unicode-name",
        create_experiment(name="${uid} é ü 名前 / :-_."),
        get_experiment(),
        get("experiments/get-by-name", {"experiment_name": "${uid} é ü 名前 / :-_."}),
    ),
    case(
        "experiments/create-name-at-500-chars",
        create_experiment(name="${uid}" + "x" * (500 - UID_LENGTH)),
        get_experiment(),
    ),
    case(
        "experiments/two-experiments-distinct-ids",
        create_experiment("a", name="${uid}-a"),
        create_experiment("b", name="${uid}-b"),
        get_experiment("a"),
        get_experiment("b"),
    ),
    case("experiments/get-default", get("experiments/get", {"experiment_id": "0"})),
    case(
        "experiments/get-by-name-default",
        get("experiments/get-by-name", {"experiment_name": "Default"}),
    ),
    case(
        "experiments/get-id-as-int-string-with-leading-zero",
        create_experiment(),
        get("experiments/get", {"experiment_id": "0${exp}"}),
    ),
]

_ERRORS: list[Case] = [
    case(
        "experiments/create-duplicate-name",
        create_experiment(),
        post(
            "experiments/create",
            {"name": "${uid}"},
            expect=400,
            message_prefix="Experiment(name=${uid}) already exists.",
        ),
        doc="RESOURCE_ALREADY_EXISTS is 400; MLflow appends the raw database error to the text",
    ),
    _create_error("experiments/create-missing-name", {}),
    _create_error("experiments/create-empty-name", {"name": ""}),
    _create_error("experiments/create-null-name", {"name": None}),
    _create_error("experiments/create-name-int", {"name": 123}),
    _create_error("experiments/create-name-list", {"name": ["${uid}"]}),
    _create_error(
        "experiments/create-name-501-chars", {"name": "${uid}" + "x" * (501 - UID_LENGTH)}
    ),
    _create_error(
        "experiments/create-artifact-location-int", {"name": "${uid}", "artifact_location": 5}
    ),
    _create_error(
        "experiments/create-artifact-location-runs-uri",
        {"name": "${uid}", "artifact_location": "runs:/abc/x"},
    ),
    _create_error("experiments/create-tags-not-list", {"name": "${uid}", "tags": {"k": "v"}}),
    _create_error(
        "experiments/create-name-and-camelcase-alias",
        {"name": "${uid}", "artifact_location": "s3://a", "artifactLocation": "s3://b"},
    ),
    case(
        "experiments/create-duplicate-after-failed-create",
        post("experiments/create", {"name": "${uid}", "tags": {"k": "v"}}, expect=400),
        create_experiment(),
        get_experiment(),
        doc="a rejected create leaves no experiment behind",
    ),
    _get_error("experiments/get-non-integer-id", {"experiment_id": "abc"}, 400),
    _get_error("experiments/get-float-id", {"experiment_id": "1.5"}, 400),
    _get_error("experiments/get-unknown-id", {"experiment_id": "987654321"}, 404),
    _get_error("experiments/get-missing-id", {}, 400),
    _get_error("experiments/get-empty-id", {"experiment_id": ""}, 400),
    case(
        "experiments/get-by-name-miss",
        get("experiments/get-by-name", {"experiment_name": "${uid}-missing"}, expect=404),
    ),
    case("experiments/get-by-name-missing-param", get("experiments/get-by-name", {}, expect=400)),
    case(
        "experiments/get-by-name-case-sensitive",
        create_experiment(name="${uid}-Case"),
        get("experiments/get-by-name", {"experiment_name": "${uid}-case"}, expect=404),
    ),
    case(
        "experiments/get-by-name-no-prefix-match",
        create_experiment(name="${uid}-long"),
        get("experiments/get-by-name", {"experiment_name": "${uid}"}, expect=404),
    ),
]

_AJAX = [
    ajax_case(next(c for c in _BASIC if c["id"] == "experiments/create-then-get")),
    ajax_case(next(c for c in _BASIC if c["id"] == "experiments/create-then-get-by-name")),
    ajax_case(next(c for c in _ERRORS if c["id"] == "experiments/create-duplicate-name")),
    ajax_case(next(c for c in _ERRORS if c["id"] == "experiments/get-unknown-id")),
    ajax_case(next(c for c in _ERRORS if c["id"] == "experiments/get-by-name-miss")),
]

CASES = _BASIC + _ERRORS + _AJAX
