"""docs/architecture.md matches the tree: every path it names exists, and every handler
reference it quotes is one the route table could bind (module file and function exist)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
_PATH = re.compile(r"`([\w.-]+(?:/[\w.-]*)+)`")  # a backticked word with a slash
_REF = re.compile(r"\b((?:api|ingest)(?:\.\w+)+):(\w+)\b")


def _named_paths() -> list[str]:
    return sorted(set(_PATH.findall(DOC.read_text())))


def test_the_doc_names_paths() -> None:
    assert len(_named_paths()) > 40


def test_every_path_the_doc_names_exists() -> None:
    missing = [p for p in _named_paths() if not (REPO / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_handler_reference_in_the_doc_is_defined() -> None:
    refs = set(_REF.findall(DOC.read_text()))
    assert refs
    for module, name in refs:
        source = REPO / (module.replace(".", "/") + ".py")
        defined = {
            node.name
            for node in ast.parse(source.read_text()).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert name in defined, f"{module}:{name}"
