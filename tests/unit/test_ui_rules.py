"""The web UI's pure rules: bundle cache policy and confinement, artifact content types and
dispositions, artifact roots, GraphQL bounds and names."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import parse

from api.artifacts.paths import from_raw_tail
from api.ui import artifact_rules, bundle
from api.ui.graphql import limits
from api.ui.graphql.resolvers import snake, snake_keys
from schemas.mlflow_errors import MlflowError


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("main.c2f5f8d4.js", bundle.LONG_CACHE),
        ("3254.9017d695.chunk.js", bundle.LONG_CACHE),
        ("TelemetryLogger.telemetry-worker.d0f8ea2c83c08b63528f.worker.js", bundle.LONG_CACHE),
        ("index.html", bundle.NO_CACHE),
        ("favicon.ico", bundle.NO_CACHE),
        ("manifest.json", bundle.NO_CACHE),
    ],
)
def test_only_content_hashed_files_are_cached_long(name: str, policy: str) -> None:
    assert bundle.cache_control(name) == policy


def test_bundle_files_resolve_inside_the_root_only(tmp_path: Path) -> None:
    root = tmp_path / "build"
    (root / "static").mkdir(parents=True)
    (root / "static" / "a.js").write_text("x")
    (tmp_path / "secret.txt").write_text("s")
    (root / "static" / "escape").symlink_to(tmp_path / "secret.txt")
    resolved = root.resolve()
    assert bundle.locate(resolved, ("static", "a.js")) == resolved / "static" / "a.js"
    assert bundle.locate(resolved, ("static",)) is None  # a directory
    assert bundle.locate(resolved, ("static", "missing.js")) is None
    assert bundle.locate(resolved, ("static", "escape")) is None  # symlink out of the root


@pytest.mark.parametrize(
    "raw", ["../secret.txt", "%2e%2e/secret.txt", "%252e%252e%252fsecret.txt", "a\\..\\b", "/etc"]
)
def test_bundle_paths_take_the_artifact_path_checks(raw: str) -> None:
    with pytest.raises(MlflowError):
        from_raw_tail(raw)


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("notes.txt", "text/plain"),
        ("config.yaml", "text/plain"),
        ("metrics.json", "text/plain"),
        ("MLmodel", "text/plain"),
        ("plot.png", "image/png"),
        ("report.html", "text/html"),
        ("weights.bin", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
    ],
)
def test_content_types_follow_mlflow(name: str, mime: str) -> None:
    assert artifact_rules.mime_type(name) == mime


def test_every_download_is_an_attachment_that_is_never_sniffed() -> None:
    headers = artifact_rules.download_headers("report.html")
    assert headers["Content-Disposition"] == "attachment; filename=report.html"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert artifact_rules.content_disposition('a "b".txt') == 'attachment; filename="a \\"b\\".txt"'
    assert artifact_rules.content_disposition("résumé.txt") == (
        "attachment; filename=resume.txt; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    )


def test_artifact_roots_inside_the_store_only() -> None:
    assert artifact_rules.store_root("mlflow-artifacts:/1/abc/artifacts", None) == (
        "1",
        "abc",
        "artifacts",
    )
    s3 = ("bucket", ("pre", "fix"))
    assert artifact_rules.store_root("s3://bucket/pre/fix/1/r/artifacts", s3) == (
        "1",
        "r",
        "artifacts",
    )
    assert artifact_rules.store_root("s3://other/pre/fix/1", s3) is None
    assert artifact_rules.store_root("s3://bucket/1", s3) is None
    assert artifact_rules.store_root("file:///etc", s3) is None
    assert artifact_rules.store_root("http://evil/x", s3) is None
    with pytest.raises(MlflowError):
        artifact_rules.store_root("mlflow-artifacts:/1/%2e%2e/%2e%2e/x", None)


def _deep(levels: int) -> str:
    return "query { " + "a { " * levels + "b" + " }" * levels + " }"


def test_graphql_depth_bound() -> None:
    limits.check(parse(_deep(limits.MAX_DEPTH - 2)))
    with pytest.raises(limits.QueryTooLarge, match="maximum depth of 10"):
        limits.check(parse(_deep(limits.MAX_DEPTH + 1)))


def test_graphql_alias_and_root_field_bounds() -> None:
    aliased = "query { x { " + " ".join(f"a{i}: b" for i in range(11)) + " } }"
    with pytest.raises(limits.QueryTooLarge, match="at most 10 aliases, got 11 aliases"):
        limits.check(parse(aliased))
    roots = "query { " + " ".join(f"f{i}" for i in range(11)) + " }"
    with pytest.raises(limits.QueryTooLarge, match="at most 10 root fields"):
        limits.check(parse(roots))


def test_graphql_selection_bound_counts_fragments_and_survives_cycles() -> None:
    wide = "fragment F on T { " + " ".join(f"f{i}" for i in range(400)) + " }"
    query = "query { a { ...F } b { ...F } c { ...F } } " + wide
    with pytest.raises(limits.QueryTooLarge, match="total selections of 1000"):
        limits.check(parse(query))
    # A fragment cycle ends the walk (each fragment once per path); validation refuses it.
    limits.check(parse("query { a { ...F } } fragment F on T { x { ...F } }"))


def test_graphql_names_map_to_rest_json() -> None:
    assert snake("runUuid") == "run_uuid"
    assert snake("experimentIds") == "experiment_ids"
    assert snake_keys({"runIds": ["a"], "data": {"maxResults": 3}}) == {
        "run_ids": ["a"],
        "data": {"max_results": 3},
    }
