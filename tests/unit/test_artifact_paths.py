"""Artifact path and model-version source validation (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.artifacts import paths
from api.registry import sources
from schemas.mlflow_errors import MlflowError

HOSTILE_TAILS = [
    "..",
    ".",
    "../x",
    "a/../../x",
    "a/./b",
    "a//b",
    "/etc/passwd",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "..%2fx",
    "%252e%252e%252fx",
    "%25252e%25252e/x",
    "a/%2e%2e/%2e%2e/x",
    "..%5cx",
    "a%5c..%5c..%5cx",
    "a\\b",
    "a#/../x",
    "a%23/../x",
    "a%00b",
    "a%2500b",
    "a%0ab",
    "C:%5cWindows",
    "C:/Windows/win.ini",
    "%2fetc%2fpasswd",
    "%c0%ae%c0%ae/x",
    "file:%2f%2f%2fetc%2fpasswd",
    "a/" + "x" * 256,
]


@pytest.mark.parametrize("tail", HOSTILE_TAILS)
def test_hostile_tails_are_refused(tail: str) -> None:
    with pytest.raises(MlflowError) as exc:
        paths.from_raw_tail(tail)
    assert exc.value.code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("tail", "parts"),
    [
        ("0/abc/artifacts/model/MLmodel", ("0", "abc", "artifacts", "model", "MLmodel")),
        ("a/b%20c.txt", ("a", "b c.txt")),
        ("dir/", ("dir",)),
        ("weird..name/x..y", ("weird..name", "x..y")),
    ],
)
def test_ordinary_tails_are_segments(tail: str, parts: tuple[str, ...]) -> None:
    assert paths.from_raw_tail(tail) == parts


def test_root_only_when_listing() -> None:
    assert paths.from_decoded("", allow_root=True) == ()
    with pytest.raises(MlflowError):
        paths.from_decoded("")


@given(st.lists(st.sampled_from(["a", "..", ".", "%2e", "%25", "2e", "/", "%2f", "\\", "#"])))
def test_no_accepted_path_climbs(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        parts = paths.from_raw_tail(text)
    except MlflowError:
        return
    assert all(p not in ("", ".", "..") for p in parts)
    assert all("\\" not in p and "#" not in p for p in parts)


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "relative/dir",
        "runs:/r/../../x",
        "runs:/r/%2e%2e/x",
        "runs:/r/%252e%252e/x",
        "mlflow-artifacts:/0/../../x",
        "mlflow-artifacts://evil.example/0/x",
        "http://169.254.169.254/latest",
        "https://example.com/api/2.0/mlflow-artifacts/artifacts/../../x",
        "ftp://host/x",
        "gs://bucket/x",
        "runs:/r/x#frag",
        "runs:/r/x\\y",
        "runs:/r/x\x00",
        "runs://host/r/x",
        "models://host/m/1",
    ],
)
def test_hostile_sources_are_refused(source: str) -> None:
    with pytest.raises(MlflowError):
        sources.classify(source, is_prompt=False)


def test_sources_are_classified() -> None:
    assert sources.classify("runs:/abc/model", False).ref == "abc"
    assert sources.classify("models:/m-" + "0" * 32, False).kind == "logged_model"
    assert sources.classify("models:/name/3", False).version_or_alias == "3"
    assert sources.classify("models:/name@champ", False).version_or_alias == "@champ"
    art = sources.classify("mlflow-artifacts:/1/run/artifacts/m", False)
    assert art.kind == "artifacts" and art.parts == ("1", "run", "artifacts", "m")
    assert sources.within(art.parts, ("1", "run", "artifacts"))
    assert not sources.within(art.parts, ("1", "other"))
    assert sources.classify("dummy-source", True).kind == "prompt"
    with pytest.raises(MlflowError):
        sources.classify("runs:/abc/model", True)
