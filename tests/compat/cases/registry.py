"""Model registry: registered models, versions, stages, aliases, tags, search (issue 4)."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import API, ajax_api, ajax_case, api, case, get, post, run_setup
from tests.compat.model import Case, Step

_USED = (
    "experiments/create",
    "runs/create",
    "registered-models/create",
    "registered-models/get",
    "registered-models/rename",
    "registered-models/update",
    "registered-models/delete",
    "registered-models/search",
    "registered-models/get-latest-versions",
    "registered-models/set-tag",
    "registered-models/delete-tag",
    "registered-models/alias",
    "model-versions/create",
    "model-versions/get",
    "model-versions/update",
    "model-versions/delete",
    "model-versions/transition-stage",
    "model-versions/search",
    "model-versions/get-download-uri",
    "model-versions/set-tag",
    "model-versions/delete-tag",
)
ENDPOINTS = api(*_USED) | ajax_api(*_USED)

RM_SETS = ("registered_model.tags", "registered_model.latest_versions")


def _with_body(method: str, endpoint: str, body: Any, **options: Any) -> Step:
    step: Step = {"method": method, "path": API + endpoint, "json": body}
    step.update(options)  # type: ignore[typeddict-item]
    return step


def create_model(name: str = "${uid}", expect: int = 200, **body: Any) -> Step:
    return post(
        "registered-models/create", {"name": name, **body}, expect=expect, unordered=RM_SETS
    )


def get_model(name: str = "${uid}", expect: int = 200) -> Step:
    return get("registered-models/get", {"name": name}, expect=expect, unordered=RM_SETS)


def create_version(expect: int = 200, **body: Any) -> Step:
    doc = {"name": "${uid}", "source": "runs:/${run}/model", "run_id": "${run}", **body}
    return post("model-versions/create", doc, expect=expect)


def get_version(version: str, expect: int = 200) -> Step:
    return get("model-versions/get", {"name": "${uid}", "version": version}, expect=expect)


def transition(version: str, stage: str, archive: bool | None = None, expect: int = 200) -> Step:
    body: dict[str, Any] = {"name": "${uid}", "version": version, "stage": stage}
    if archive is not None:
        body["archive_existing_versions"] = archive
    return post("model-versions/transition-stage", body, expect=expect)


def set_alias(alias: str, version: str, expect: int = 200) -> Step:
    body = {"name": "${uid}", "alias": alias, "version": version}
    return post("registered-models/alias", body, expect=expect)


def get_alias(alias: str, expect: int = 200) -> Step:
    return get("registered-models/alias", {"name": "${uid}", "alias": alias}, expect=expect)


def model_with_versions(count: int) -> list[Step]:
    return [*run_setup(), create_model(), *(create_version() for _ in range(count))]


_MODELS: list[Case] = [
    case(
        "registry/create-get",
        create_model(description="d", tags=[{"key": "k", "value": "v"}, {"key": "e"}]),
        get_model(),
    ),
    case("registry/create-duplicate", create_model(), create_model(expect=400)),
    case("registry/create-slash", create_model(name="a/b", expect=400)),
    case("registry/create-colon", create_model(name="a:b", expect=400)),
    case("registry/create-missing-name", post("registered-models/create", {}, expect=400)),
    case("registry/get-missing", get_model(name="${uid}-none", expect=404)),
    case(
        "registry/update-without-description-clears-it",
        create_model(description="d"),
        _with_body("PATCH", "registered-models/update", {"name": "${uid}"}),
        get_model(),
    ),
    case(
        "registry/rename",
        create_model(),
        post("registered-models/rename", {"name": "${uid}", "new_name": "${uid}-new"}),
        get_model(expect=404),
        get_model(name="${uid}-new"),
    ),
    case(
        "registry/rename-clash",
        create_model(),
        create_model(name="${uid}-b"),
        post(
            "registered-models/rename",
            {"name": "${uid}", "new_name": "${uid}-b"},
            expect=400,
            # The reference appends its database error (SQLite text) to the message.
            message_regex=r"^Registered Model \(name=\S+-b\) already exists\.",
        ),
    ),
    case(
        "registry/tags",
        create_model(),
        post("registered-models/set-tag", {"name": "${uid}", "key": "a", "value": "1"}),
        post("registered-models/set-tag", {"name": "${uid}", "key": "a", "value": "2"}),
        _with_body("DELETE", "registered-models/delete-tag", {"name": "${uid}", "key": "zz"}),
        get_model(),
    ),
    case(
        "registry/delete",
        create_model(),
        _with_body("DELETE", "registered-models/delete", {"name": "${uid}"}),
        get_model(expect=404),
        _with_body("DELETE", "registered-models/delete", {"name": "${uid}"}, expect=404),
    ),
]

_VERSIONS: list[Case] = [
    case("registry/versions-create-get", *model_with_versions(2), get_version("2"), get_model()),
    case(
        "registry/version-numbers-never-reused",
        *model_with_versions(2),
        _with_body("DELETE", "model-versions/delete", {"name": "${uid}", "version": "2"}),
        get_version("2", expect=404),
        create_version(),
    ),
    case("registry/version-not-integer", *model_with_versions(1), get_version("abc", expect=400)),
    case("registry/version-missing", *model_with_versions(1), get_version("7", expect=404)),
    case(
        "registry/version-unknown-model",
        *run_setup(),
        create_version(expect=404),
    ),
    case(
        "registry/version-source-other-run",
        *model_with_versions(0),
        create_version(source="runs:/someone-else/model", expect=400),
    ),
    case(
        "registry/version-update-description",
        *model_with_versions(1),
        _with_body(
            "PATCH", "model-versions/update", {"name": "${uid}", "version": "1", "description": "x"}
        ),
        _with_body("PATCH", "model-versions/update", {"name": "${uid}", "version": "1"}),
        get_version("1"),
    ),
    case(
        "registry/version-tags",
        *model_with_versions(1),
        post("model-versions/set-tag", {"name": "${uid}", "version": "1", "key": "k", "value": ""}),
        _with_body(
            "DELETE", "model-versions/delete-tag", {"name": "${uid}", "version": "1", "key": "no"}
        ),
        get_version("1"),
    ),
    case(
        "registry/download-uri",
        *model_with_versions(1),
        get("model-versions/get-download-uri", {"name": "${uid}", "version": "1"}),
    ),
    case(
        "registry/stages-and-latest",
        *model_with_versions(4),
        transition("1", "production"),
        transition("2", "Staging"),
        transition("3", "Production", archive=True),
        get_version("1"),
        get_model(),
        post(
            "registered-models/get-latest-versions",
            {"name": "${uid}", "stages": ["Production", "None"]},
        ),
        get("registered-models/get-latest-versions", {"name": "${uid}"}),
    ),
    case("registry/stage-invalid", *model_with_versions(1), transition("1", "Prod", expect=400)),
    case(
        "registry/search-versions",
        *model_with_versions(3),
        get("model-versions/search", {"filter": "name='${uid}'", "order_by": ["version_number"]}),
        get(
            "model-versions/search",
            {"filter": "name = '${uid}' AND version_number > 1", "max_results": "1"},
            ignore=("next_page_token",),
        ),
    ),
]

_ALIASES: list[Case] = [
    case(
        "registry/alias-set-move-get",
        *model_with_versions(2),
        set_alias("champion", "1"),
        set_alias("champion", "2"),
        get_alias("champion"),
        get_alias("latest"),
        get_model(),
    ),
    case("registry/alias-latest-reserved", *model_with_versions(1), set_alias("Latest", "1", 400)),
    case("registry/alias-version-reserved", *model_with_versions(1), set_alias("v1", "1", 400)),
    case("registry/alias-unknown", *model_with_versions(1), get_alias("nope", expect=400)),
    case("registry/alias-missing-version", *model_with_versions(1), set_alias("a", "9", 404)),
    case(
        "registry/alias-removed-with-version",
        *model_with_versions(2),
        set_alias("a", "2"),
        _with_body("DELETE", "model-versions/delete", {"name": "${uid}", "version": "2"}),
        get_alias("a", expect=400),
        _with_body("DELETE", "registered-models/alias", {"name": "${uid}", "alias": "a"}),
    ),
]

_SEARCH: list[Case] = [
    case(
        "registry/search-models",
        create_model(name="${uid}-a", tags=[{"key": "t", "value": "x"}]),
        create_model(name="${uid}-b"),
        get(
            "registered-models/search",
            {"filter": "name LIKE '${uid}-%'", "order_by": ["name DESC"]},
        ),
        get("registered-models/search", {"filter": "tags.t = 'x' AND name LIKE '${uid}%'"}),
        get(
            "registered-models/search",
            {"filter": "name LIKE '${uid}%' AND tag.`mlflow.prompt.is_prompt` != 'true'"},
        ),
    ),
    case(
        "registry/search-models-bad-attribute",
        get("registered-models/search", {"filter": "description = 'x'"}, expect=400),
    ),
]

_API_CASES = _MODELS + _VERSIONS + _ALIASES + _SEARCH
CASES: list[Case] = _API_CASES + [ajax_case(c) for c in _API_CASES]
