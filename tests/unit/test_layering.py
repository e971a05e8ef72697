"""Import layering: schemas imports nothing of ours; the runtime imports only schemas (its CLI
starts services through lazy imports inside functions); services never import each other;
pure modules import no I/O library."""

import ast
import re
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
SERVICES = {"api", "ingest", "writer"}
# Pure modules, by where they live: the I/O shell (handlers, store, app, ...) is the exception
# a module has to be placed or named as. A new module in a pure folder or with a pure role's
# name is checked without being added here.
PURE_FOLDERS = ["schemas", "api/search"]
PURE_ROLES = ["rules.py", "render.py", "search.py", "filter.py"]  # validation, JSON out, filters
PURE_FILES = [
    "api/page_tokens.py",
    "api/run_names.py",
    "api/artifacts/download_headers.py",
    "api/artifacts/multipart.py",
    "api/artifacts/paths.py",
    "api/registry/requests.py",
    "api/registry/sources.py",
    "api/ui/artifact_rules.py",
    "api/ui/graphql/limits.py",
    "api/webhooks/signing.py",
    "api/traces/metric_filters.py",
    "api/traces/metric_rules.py",
    "api/traces/search_rules.py",
    "ingest/otlp.py",
    "ingest/trace_rules.py",
    "ingest/validate.py",
    "sluice/commands/transfer/table_spec.py",
    "sluice/commands/transfer/tables.py",
    "sluice/commands/transfer/trace_export.py",
    "sluice/commands/transfer/trace_tables.py",
    "sluice/commands/transfer/traces.py",
    "sluice/limits.py",
    "writer/batch.py",
    "writer/pace.py",
    "schemas/chunks.py",
    "writer/trace_batch.py",
]
# A module whose docstring opens by calling itself pure must be found by the rules above.
_CLAIMS_PURITY = re.compile(r'^"""(Pure\b|[^\n]*\(pure\))')


def _product_modules() -> list[Path]:
    return sorted(p for package in sorted(ALLOWED) for p in (REPO / package).rglob("*.py"))


def _is_pure(path: Path) -> bool:
    rel = path.relative_to(REPO)
    return (
        any(rel.is_relative_to(folder) for folder in PURE_FOLDERS)
        or (rel.parts[0] in SERVICES and rel.name in PURE_ROLES)
        or rel.as_posix() in PURE_FILES
    )


PURE = [p for p in _product_modules() if _is_pure(p)]


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


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(REPO).as_posix())
def test_pure_modules_import_no_io_library(path: Path) -> None:
    used = _imports(path, top_level_only=False) & IO_LIBS
    assert not used, f"{path.relative_to(REPO)} imports {used}"


def test_every_module_that_claims_purity_is_found_by_location() -> None:
    claims = [p for p in _product_modules() if _CLAIMS_PURITY.match(p.read_text())]
    assert claims, "the claim pattern matches nothing: it is stale"
    missed = [p.relative_to(REPO).as_posix() for p in claims if not _is_pure(p)]
    assert not missed, f"place or name these as pure modules: {missed}"


def test_pure_files_exist() -> None:
    for name in PURE_FILES:
        assert (REPO / name).is_file(), name


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
