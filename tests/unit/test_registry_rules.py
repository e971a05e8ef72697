"""Registry rules and search compilation (pure)."""

from __future__ import annotations

import pytest

from api.registry import rules, search
from schemas.mlflow_errors import MlflowError


@pytest.mark.parametrize("name", ["", " ", "a/b", "a:b", "..", "."])
def test_bad_model_names(name: str) -> None:
    with pytest.raises(MlflowError):
        rules.validate_model_name(name)


def test_stage_is_canonicalised() -> None:
    assert rules.canonical_stage("production") == "Production"
    assert rules.canonical_stage("NONE") == "None"
    with pytest.raises(MlflowError):
        rules.canonical_stage("prod")


def test_archiving_only_into_active_stages() -> None:
    rules.check_archivable("Staging")
    with pytest.raises(MlflowError) as exc:
        rules.check_archivable("Archived")
    assert exc.value.code == "INTERNAL_ERROR"


@pytest.mark.parametrize("alias", ["", "latest", "LaTeSt", "v1", "V22", "a b", "a/b", "x" * 256])
def test_reserved_or_bad_aliases(alias: str) -> None:
    with pytest.raises(MlflowError):
        rules.validate_alias(alias)


def test_version_must_be_an_integer() -> None:
    assert rules.parse_version("12") == 12
    with pytest.raises(MlflowError) as exc:
        rules.parse_version("abc")
    assert exc.value.message == "Parameter 'version' must be an integer, got 'abc'."


def test_model_search_binds_every_value() -> None:
    query = search.model_search("name LIKE 'a%' AND tags.t = 'x'", ["name DESC"], 10, 20)
    assert "'a%'" not in query.sql and "'x'" not in query.sql
    assert query.args == ("a%", "t", "x", 11, 20)
    assert "ORDER BY m.name DESC" in query.sql


def test_prompts_excluded_unless_asked_for() -> None:
    plain = search.model_search("", [], 10, 0)
    assert "mlflow.prompt.is_prompt' AND lower(t.value) = 'true'" in plain.sql
    asked = search.model_search("tags.`mlflow.prompt.is_prompt` = 'true'", [], 10, 0)
    assert "lower(t.value)" not in asked.sql


@pytest.mark.parametrize(
    "filter_string",
    ["creation_timestamp > 0", "description = 'x'", "name IS NULL", "name > 'a'"],
)
def test_model_search_refuses(filter_string: str) -> None:
    with pytest.raises(MlflowError):
        search.model_search(filter_string, [], 10, 0)


def test_version_search_order_and_ties() -> None:
    query = search.version_search("name = 'm' AND version_number >= 2", [], 5, 0, "v.version")
    assert "ORDER BY v.last_updated_timestamp DESC, m.name, v.version DESC" in query.sql
    with pytest.raises(MlflowError) as exc:
        search.version_search("", ["name", "name DESC"], 5, 0, "v.version")
    assert exc.value.code == "INTERNAL_ERROR"
    with pytest.raises(MlflowError):
        search.version_search("version_number IN (1, 2)", [], 5, 0, "v.version")


PURE_MODULES = [
    "api/registry/rules.py",
    "api/registry/render.py",
    "api/registry/search.py",
    "api/registry/sources.py",
    "api/registry/requests.py",
    "api/artifacts/paths.py",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io_library(module: str) -> None:
    """Issue 4's pure core, held to tests/unit/test_layering.py's rule."""
    from tests.unit.test_layering import IO_LIBS, REPO, _imports  # noqa: PLC0415

    assert not _imports(REPO / module, top_level_only=False) & IO_LIBS
