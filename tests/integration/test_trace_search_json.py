"""traces/search pages come from PostgreSQL (each row's stored ``info_doc``, migration 0032, and
its assessments: ``api/traces/store.py`` ``INFO_JSON``): the text must be the document the
Python renderer (``schemas/trace_json.trace_info_json``) makes of the same row, for every value
a row can hold -- times before 1970 and on whole seconds, negative durations, unset and empty
fields, strings that need escaping, assessments -- and must follow every later change of the
row (tags set and deleted by the api, the writer's merge of more spans and the final info)."""

from __future__ import annotations

import random
import uuid

import asyncpg
import orjson

from api.traces import render, store
from api.traces.search_rules import compile_order

# Milliseconds where protobuf's formatting changes: whole seconds, before 1970, far years.
EDGE_MS = (
    0,
    1,
    999,
    1000,
    1001,
    -1,
    -999,
    -1000,
    -1001,
    -1500,
    1_764_000_000_000,
    1_764_000_000_370,
    253_402_300_799_999,
    -62_135_596_800_000,
)
TEXTS = (
    "",
    "plain",
    'quote " and \\ backslash',
    "tab\tnew\nline\r\x01\x1f",
    "é ü 日本 🚀",
    "</script>",
    "\u2028\u2029",
)


def _row(rng: random.Random, i: int, experiment_id: int) -> tuple[object, ...]:
    def text() -> str | None:
        return rng.choice((None, *TEXTS))

    def mapping() -> str:
        pairs = {rng.choice(TEXTS) + str(k): rng.choice(TEXTS) for k in range(rng.randrange(4))}
        return orjson.dumps(pairs).decode()

    return (
        f"tr-{uuid.uuid4().hex}",
        experiment_id,
        EDGE_MS[i] if i < len(EDGE_MS) else rng.randrange(-(10**12), 10**14),
        rng.choice((None, 0, 1, 999, 1000, 1500, -1, -1000, -1500, rng.randrange(10**9))),
        rng.choice(("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED")),
        text(),
        text(),
        text(),
        mapping(),
        mapping(),
    )


_INSERT = (
    "INSERT INTO trace_info (trace_id, experiment_id, request_time_ms, execution_ms, state,"
    " request_preview, response_preview, client_request_id, tags, metadata)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb)"
)


async def _assert_pages_agree(
    conn: asyncpg.Connection, experiment_id: int, count: int
) -> list[asyncpg.Record]:
    """The rendered page, after checking it against the Python rendering of the plain rows."""
    order = compile_order([])
    plain = await store.search(conn, [experiment_id], [], [], order, 500, 0)
    rendered = await store.search(conn, [experiment_id], [], [], order, 500, 0, rendered=True)
    assert len(plain) == len(rendered) == count
    for row, text in zip(plain, rendered, strict=True):
        assessments = orjson.loads(row["assessments"]) if row["assessments"] else []
        assert orjson.loads(text["doc"]) == render.trace_info(row, assessments), row
    return rendered


async def test_rendered_page_equals_the_python_rendering(conn: asyncpg.Connection) -> None:
    rng = random.Random(13)
    experiment_id = rng.randrange(10**15, 10**16)  # no experiment row: only these traces
    rows = [_row(rng, i, experiment_id) for i in range(200)]
    await conn.executemany(_INSERT, rows)
    assessed = [r[0] for r in rows[:5]]
    for n, trace_id in enumerate(assessed):
        for k in range(n % 3 + 1):
            doc = {"assessment_id": f"a-{k}", "assessment_name": TEXTS[k], "feedback": {"value": k}}
            await store.insert_assessment(conn, str(trace_id), f"a-{k}", 1000 - k, doc)
    try:
        rendered = await _assert_pages_agree(conn, experiment_id, len(rows))
        assert any(orjson.loads(r["doc"]).get("assessments") for r in rendered)
    finally:
        await conn.execute("DELETE FROM trace_assessments WHERE trace_id = ANY($1)", assessed)
        await conn.execute("DELETE FROM trace_info WHERE experiment_id = $1", experiment_id)


async def test_the_stored_document_follows_every_change_of_the_row(
    conn: asyncpg.Connection,
) -> None:
    rng = random.Random(31)
    experiment_id = rng.randrange(10**15, 10**16)
    rows = [_row(rng, i, experiment_id) for i in range(40)]
    await conn.executemany(_INSERT, rows)
    ids = [str(r[0]) for r in rows]
    try:
        for trace_id in ids[:20]:  # the api's tag routes
            await store.set_tag(conn, trace_id, "added", 'with "quotes" 日本')
        for trace_id in ids[:10]:
            await store.delete_tag(conn, trace_id, "added")
        # the writer's merge: a final info (StartTraceV3) for some traces, more spans for others
        await conn.execute(
            "UPDATE trace_info SET state = 'ERROR', execution_ms = 1234, finalized = true,"
            " request_preview = 'new', client_request_id = 'c-1',"
            ' metadata = metadata || \'{"mlflow.user": "me"}\'::jsonb'
            " WHERE trace_id = ANY($1::text[])",
            ids[20:30],
        )
        await conn.execute(
            "UPDATE trace_info SET request_time_ms = request_time_ms - 1001, execution_ms = NULL"
            " WHERE trace_id = ANY($1::text[])",
            ids[30:],
        )
        await _assert_pages_agree(conn, experiment_id, len(rows))
        changed = await store.infos(conn, ids[:1])
        assert "added" not in orjson.loads(changed[0]["tags"])
    finally:
        await conn.execute("DELETE FROM trace_info WHERE experiment_id = $1", experiment_id)
