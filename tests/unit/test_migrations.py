"""Migration bookkeeping: checksums, status, and the no-transaction statement split (pure)."""

from sluice import schema
from sluice.commands.migrate import _statements, render_status


def _shipped() -> list[schema.Migration]:
    return [
        schema.Migration(1, "0001_a.sql", "CREATE TABLE a ();"),
        schema.Migration(2, "0002_b.sql", "CREATE TABLE b ();"),
    ]


def test_a_matching_history_has_no_problems() -> None:
    shipped = _shipped()
    done = [schema.Applied(m.version, m.name, m.checksum) for m in shipped]
    assert schema.mismatches(done, shipped) == []


def test_pending_changed_and_unknown_migrations_are_named() -> None:
    shipped = _shipped()
    done = [
        schema.Applied(1, "0001_a.sql", "0" * 64),
        schema.Applied(3, "0003_future.sql", None),
    ]
    problems = schema.mismatches(done, shipped)
    assert any("0001_a.sql was changed after it was applied" in p for p in problems)
    assert any("0003_future.sql is applied but unknown" in p for p in problems)
    assert any(p.startswith("pending migrations 0002_b.sql") for p in problems)


def test_a_row_without_checksum_is_not_a_mismatch() -> None:
    shipped = _shipped()
    done = [schema.Applied(1, "0001_a.sql", None), schema.Applied(2, "0002_b.sql", None)]
    assert schema.mismatches(done, shipped) == []


def test_status_lists_applied_and_pending() -> None:
    shipped = _shipped()
    done = [schema.Applied(1, "0001_a.sql", shipped[0].checksum)]
    assert render_status(done, shipped, dry_run=False) == (
        "applied  0001_a.sql\npending  0002_b.sql"
    )
    assert render_status(done, shipped, dry_run=True) == "would apply  0002_b.sql"


def test_shipped_migrations_and_the_concurrent_index() -> None:
    shipped = schema.available()
    assert [m.version for m in shipped] == sorted({m.version for m in shipped})
    concurrent = [m for m in shipped if not m.transactional]
    assert concurrent and all("CONCURRENTLY" in m.sql for m in concurrent)
    for migration in concurrent:
        for statement in _statements(migration.sql):
            assert "IF NOT EXISTS" in statement or "IF EXISTS" in statement


def test_statements_drop_comments_and_split_on_line_ends() -> None:
    sql = "-- sluice: no-transaction\n-- why\nCREATE INDEX CONCURRENTLY x ON t (a);\nDROP y;\n"
    assert _statements(sql) == [
        "-- sluice: no-transaction\n-- why\nCREATE INDEX CONCURRENTLY x ON t (a)",
        "DROP y",
    ]
