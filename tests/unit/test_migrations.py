"""Migration bookkeeping: checksums, status, and the no-transaction statement split (pure)."""

import pytest

from sluice import schema
from sluice.commands.migrate import _statements, render_status, retry_while_unreachable
from sluice.errors import SchemaMismatch, Unreachable


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


class _FakeClock:
    """Time advanced only by the pauses, so the retry deadline is exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> None:
        self.now += seconds


async def test_migrate_retries_while_a_dependency_is_unreachable() -> None:
    clock, calls = _FakeClock(), list[float]()

    async def attempt() -> None:
        calls.append(clock.now)
        if len(calls) < 3:
            raise Unreachable("cannot reach PostgreSQL")

    await retry_while_unreachable(attempt, 30.0, clock, clock.pause)
    assert calls == [0.0, 2.0, 4.0]


async def test_migrate_gives_up_at_the_deadline_and_never_retries_other_errors() -> None:
    clock = _FakeClock()

    async def unreachable() -> None:
        raise Unreachable("cannot reach Kafka")

    with pytest.raises(Unreachable):
        await retry_while_unreachable(unreachable, 5.0, clock, clock.pause)
    assert clock.now == 4.0
    calls = list[int]()

    async def mismatch() -> None:
        calls.append(1)
        raise SchemaMismatch("history differs")

    with pytest.raises(SchemaMismatch):
        await retry_while_unreachable(mismatch, 60.0, clock, clock.pause)
    assert calls == [1]
