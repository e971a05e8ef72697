"""Import layering: schemas imports nothing of ours; the runtime imports only schemas (its CLI
starts services through lazy imports inside functions); services never import each other;
pure modules import no I/O library."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"schemas", "sluice", "ingest", "writer", "api"}
ALLOWED = {
    "schemas": set(),
    "sluice": {"schemas"},
    "ingest": {"schemas", "sluice"},
    "writer": {"schemas", "sluice"},
    "api": {"schemas", "sluice"},
}
IO_LIBS = {"aiohttp", "aiokafka", "asyncpg", "aioboto3"}
PURE = [
    "schemas",
    "writer/batch.py",
    "ingest/validate.py",
    "api/pages.py",
    "api/render.py",
    "api/search_filter.py",
    "api/search_lexer.py",
    "api/search_rules.py",
    "api/search_order.py",
    "api/search_request.py",
    "api/search_sql.py",
    "api/run_search.py",
    "api/experiment_search.py",
    "api/artifacts/multipart.py",
]


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_allowed_layers(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        used = _imports(path, top_level_only=True) & OURS - {package}
        assert used <= ALLOWED[package], (
            f"{path.relative_to(REPO)} imports {used - ALLOWED[package]}"
        )


@pytest.mark.parametrize("target", PURE)
def test_pure_modules_import_no_io_library(target: str) -> None:
    root = REPO / target
    paths = list(root.rglob("*.py")) if root.is_dir() else [root]
    for path in paths:
        used = _imports(path, top_level_only=False) & IO_LIBS
        assert not used, f"{path.relative_to(REPO)} imports {used}"


def test_runtime_does_not_import_operator_commands() -> None:
    """sluice/ is the runtime the services share; sluice/commands/ sits on top of it (the CLI
    dispatches to both), so a runtime module importing a command would invert the layers."""
    for path in (REPO / "sluice").glob("*.py"):
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("sluice.commands"), path.name
