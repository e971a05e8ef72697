"""Consumer offsets stored in PostgreSQL, beside the rows (effectively-once delivery).

Worked example: the table says partition 3 is at 1200 (offsets 0..1199 are stored). A writer that
owns partition 3 seeks to 1200, consumes 1200..1499 and commits rows plus
``UPDATE ... SET next_offset = 1500 WHERE next_offset = 1200`` in one transaction. A zombie that
still believes partition 3 is at 1000 updates 0 rows, raises LostOwnership and rolls back, so its
rows never become visible twice.
"""

from __future__ import annotations

import asyncpg


class LostOwnership(Exception):
    """The stored offset moved under us: another writer owns the partition now."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} was committed by another writer")
        self.partition = partition


async def load(conn: asyncpg.Connection, topic: str, partitions: list[int]) -> dict[int, int]:
    """Stored next offsets of ``partitions``, creating rows at 0 for partitions never seen."""
    await conn.execute(
        "INSERT INTO writer_offsets (topic, partition, next_offset)"
        " SELECT $1, p, 0 FROM unnest($2::int[]) AS p ON CONFLICT DO NOTHING",
        topic,
        partitions,
    )
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM writer_offsets"
        " WHERE topic = $1 AND partition = ANY($2::int[])",
        topic,
        partitions,
    )
    return {r["partition"]: r["next_offset"] for r in rows}


async def advance(
    conn: asyncpg.Connection, topic: str, partition: int, expected: int, new: int
) -> None:
    """Move the stored offset from ``expected`` to ``new``; must run inside the flush
    transaction. Raises LostOwnership when the stored value is not ``expected``."""
    status = await conn.execute(
        "UPDATE writer_offsets SET next_offset = $4"
        " WHERE topic = $1 AND partition = $2 AND next_offset = $3",
        topic,
        partition,
        expected,
        new,
    )
    if status != "UPDATE 1":
        raise LostOwnership(partition)
