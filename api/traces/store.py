"""Trace data access (PostgreSQL): every statement of api/traces/ lives here.

Writes from the api (tags, assessments, run links, deletes) lock the trace_info row first, then
spans or assessments, the order the writer's flush uses (writer/trace_flush.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, TypeAlias

import asyncpg
import orjson

from schemas.mlflow_errors import does_not_exist

Row = Any  # asyncpg.Record
Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

_INFO_COLUMNS = (
    "trace_id, experiment_id, request_time_ms, execution_ms, state, request_preview,"
    " response_preview, client_request_id, tags, metadata"
)
SPAN_FETCH = 500  # spans per cursor fetch: a huge trace streams in bounded pieces


def not_found(trace_id: str) -> Exception:
    return does_not_exist(f"Trace with ID {trace_id} is not found.")


async def infos(conn: Conn, trace_ids: Sequence[str]) -> list[Row]:
    """Trace rows of ``trace_ids`` that exist, in no particular order."""
    return list(
        await conn.fetch(
            f"SELECT {_INFO_COLUMNS} FROM trace_info WHERE trace_id = ANY($1::text[])",
            list(trace_ids),
        )
    )


async def info(conn: Conn, trace_id: str) -> Row:
    rows = await infos(conn, [trace_id])
    if not rows:
        raise not_found(trace_id)
    return rows[0]


async def assessments(conn: Conn, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "SELECT trace_id, doc FROM trace_assessments WHERE trace_id = ANY($1::text[])"
        " ORDER BY trace_id, created_ms, assessment_id",
        list(trace_ids),
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["trace_id"], []).append(orjson.loads(row["doc"]))
    return found


async def span_protos(conn: asyncpg.Connection, trace_id: str) -> AsyncIterator[bytes]:
    """The trace's span messages, by start time, fetched SPAN_FETCH at a time (inside the
    caller's transaction: a server-side cursor)."""
    cursor = conn.cursor(
        "SELECT proto FROM trace_spans WHERE trace_id = $1 ORDER BY start_ns, span_id",
        trace_id,
        prefetch=SPAN_FETCH,
    )
    async for row in cursor:
        yield row["proto"]


# A trace's assessments as a JSON array, NULL without any. The EXISTS probe first: most traces
# have none, and the ordered aggregate costs a sort set-up per trace even then.
_ASSESSMENTS = (
    "CASE WHEN EXISTS (SELECT FROM trace_assessments a WHERE a.trace_id = t.trace_id)"
    " THEN (SELECT json_agg(a.doc ORDER BY a.created_ms, a.assessment_id)"
    " FROM trace_assessments a WHERE a.trace_id = t.trace_id) END"
)


# A trace_info row ``t`` as MLflow's TraceInfo JSON text: the stored document (migration
# 0032, the same as schemas/trace_json.trace_info_json; tests/integration/test_trace_search_json.py
# compares them) with the trace's assessments. A search page is spliced into the answer unparsed.
INFO_JSON = f"t.info_doc || coalesce(',\"assessments\":' || ({_ASSESSMENTS})::text, '') || '}}'"


async def search(
    conn: Conn,
    experiment_ids: list[int],
    where: list[str],
    params: list[Any],
    order: str,
    limit: int,
    offset: int,
    *,
    rendered: bool = False,
) -> list[Row]:
    """One page of trace rows, each with its assessments (column ``assessments``: a JSON array
    or NULL), in one statement; ``where`` and ``order`` come from api/traces/search_rules.py
    (fixed SQL text with numbered parameters, never user text). ``rendered``: rows of one
    column ``doc`` instead, each trace's TraceInfo JSON text (``INFO_JSON``).

    Over several experiments the page is a UNION ALL of per-experiment pages, each read from the
    (experiment, time) index in order and cut at ``limit + offset`` rows: with
    ``experiment_id = ANY(array)`` PostgreSQL sorted every trace of the experiments.

    Experiment ids, limit and offset are integers written into the text, not parameters: a
    statement without parameters is planned once per connection and its plan reused (the
    api's pool plans every statement with parameters anew, ``sluice/pg.py``; half of a
    newest-first page's PostgreSQL time was that planning over the 16 partitions). Each
    experiment and page is then a statement of its own in asyncpg's per-connection cache."""
    columns = f"{INFO_JSON} AS doc" if rendered else f"t.*, {_ASSESSMENTS} AS assessments"
    select = f"{_SELECT}, t.info_doc" if rendered else None
    experiments = _experiment_literals(experiment_ids)
    page = _ordered(where, order, experiments, int(limit), int(offset), select=select)
    text = f"SELECT {columns} FROM ({page}) t ORDER BY {order}"
    return list(await conn.fetch(text, *params))


def _ordered(
    where: list[str],
    order: str,
    experiments: list[str] | str,
    limit: int | None = None,
    offset: int | None = None,
    *,
    select: str | None = None,
) -> str:
    """The search's rows in ``order`` (optionally a page). ``experiments``: one SQL value per
    experiment -- one is one ordered index scan; several a UNION ALL of per-experiment ordered
    scans, each cut at ``limit + offset`` rows, merged in order -- or one SQL array, scanned
    at once (past MAX_MERGED_SCANS experiments). ``select``: the columns (default: a row's
    fields without its stored document)."""
    select = select or _SELECT
    paged = limit is not None and offset is not None
    page = f" LIMIT {limit} OFFSET {offset}" if paged else ""
    if isinstance(experiments, str):
        condition = f"t.experiment_id = ANY({experiments})"
        return f"SELECT {select} FROM trace_info t WHERE {' AND '.join([condition, *where])}" + (
            f" ORDER BY {order}{page}"
        )
    scans = [
        f"SELECT {select} FROM trace_info t"
        f" WHERE {' AND '.join([f't.experiment_id = {e}', *where])} ORDER BY {order}"
        for e in experiments
    ]
    if len(scans) == 1:
        return scans[0] + page
    cut = f" LIMIT {limit + offset}" if limit is not None and offset is not None else ""
    union = " UNION ALL ".join(f"({scan}{cut})" for scan in scans)
    return f"SELECT * FROM ({union}) t ORDER BY {order}{page}"


_SELECT = _INFO_COLUMNS.replace("trace_id,", "t.trace_id,", 1)
# Beyond this many experiments a search is one scan of them all (sorting), not a UNION ALL of
# one branch each: a request may name thousands, and each branch is planned and parameterised.
MAX_MERGED_SCANS = 32


def _experiment_literals(experiment_ids: list[int]) -> list[str] | str:
    """The ``experiments`` argument of _ordered as integer literals."""
    distinct = [int(e) for e in dict.fromkeys(experiment_ids)]
    if len(distinct) <= MAX_MERGED_SCANS:
        return [f"{e}::bigint" for e in distinct]
    return "'{" + ",".join(str(e) for e in distinct) + "}'::bigint[]"


def _experiment_params(experiment_ids: list[int], first: int) -> tuple[list[str] | str, list[Any]]:
    """The ``experiments`` argument of _ordered as parameters numbered from ``$first``, and
    their values."""
    distinct = list(dict.fromkeys(experiment_ids))
    if len(distinct) <= MAX_MERGED_SCANS:
        return [f"${first + i}::bigint" for i in range(len(distinct))], distinct
    return f"${first}::bigint[]", [distinct]


def _in_experiments(number: int, experiment_ids: list[int]) -> str:
    """The experiment condition on parameter ``$number`` (unordered reads)."""
    if len(experiment_ids) == 1:
        return f"t.experiment_id = ${number}::bigint"
    return f"t.experiment_id = ANY(${number}::bigint[])"


def _experiments_param(experiment_ids: list[int]) -> int | list[int]:
    return experiment_ids[0] if len(experiment_ids) == 1 else experiment_ids


async def search_cursor(
    conn: asyncpg.Connection,
    experiment_ids: list[int],
    where: list[str],
    params: list[Any],
    order: str,
) -> AsyncGenerator[Row, None]:
    """Every trace row of a search, in order, fetched a page at a time (inside the caller's
    transaction), for searches whose span conditions are tested in Python."""
    experiments, experiment_args = _experiment_params(experiment_ids, len(params) + 1)
    text = _ordered(where, order, experiments)
    async for row in conn.cursor(text, *params, *experiment_args, prefetch=200):
        yield row


async def flag_cursor(
    conn: asyncpg.Connection,
    experiment_ids: list[int],
    where: list[str],
    params: list[Any],
    flags: list[str],
) -> AsyncGenerator[Row, None]:
    """Trace ids of the experiments meeting ``where``, each with boolean columns f0, f1, ...
    (the SQL conditions in ``flags``, from api/traces/search_rules.py), a page at a time."""
    n = len(params)
    conditions = " AND ".join([_in_experiments(n + 1, experiment_ids), *where])
    columns = "".join(f", {flag} AS f{i}" for i, flag in enumerate(flags))
    text = f"SELECT t.trace_id{columns} FROM trace_info t WHERE {conditions}"
    cursor = conn.cursor(text, *params, _experiments_param(experiment_ids), prefetch=1000)
    async for row in cursor:
        yield row


async def span_rows(conn: asyncpg.Connection, trace_id: str) -> AsyncGenerator[Row, None]:
    """The trace's spans with the columns search tests (inside the caller's transaction)."""
    cursor = conn.cursor(
        "SELECT name, span_type, status, proto FROM trace_spans WHERE trace_id = $1"
        " ORDER BY start_ns, span_id",
        trace_id,
        prefetch=SPAN_FETCH,
    )
    async for row in cursor:
        yield row


async def delete(
    conn: asyncpg.Connection,
    experiment_id: int,
    trace_ids: list[str] | None,
    max_timestamp_ms: int | None,
    max_traces: int | None,
) -> int:
    """Delete traces of the experiment (by ids, or older than a time, oldest first, at most
    ``max_traces``) with their spans, assessments and links; the number deleted."""
    if trace_ids is not None:
        ids = await conn.fetch(
            "SELECT trace_id FROM trace_info WHERE experiment_id = $1"
            " AND trace_id = ANY($2::text[]) ORDER BY trace_id FOR UPDATE",
            experiment_id,
            trace_ids,
        )
    else:
        ids = await conn.fetch(
            "SELECT trace_id FROM (SELECT trace_id, request_time_ms FROM trace_info"
            " WHERE experiment_id = $1 AND request_time_ms <= $2"
            " ORDER BY request_time_ms, trace_id LIMIT $3) d ORDER BY trace_id",
            experiment_id,
            max_timestamp_ms,
            max_traces,
        )
    doomed = [row["trace_id"] for row in ids]
    if not doomed:
        return 0
    await conn.execute("DELETE FROM trace_info WHERE trace_id = ANY($1::text[])", doomed)
    for table in ("trace_spans", "trace_assessments", "trace_run_links", "trace_prompt_links"):
        await conn.execute(f"DELETE FROM {table} WHERE trace_id = ANY($1::text[])", doomed)
    return len(doomed)


async def set_tag(conn: Conn, trace_id: str, key: str, value: str) -> None:
    status = await conn.execute(
        "UPDATE trace_info SET tags = tags || jsonb_build_object($2::text, $3::text)"
        " WHERE trace_id = $1",
        trace_id,
        key,
        value,
    )
    if status != "UPDATE 1":
        raise not_found(trace_id)


async def delete_tag(conn: Conn, trace_id: str, key: str) -> bool:
    """False when the trace has no such tag (MLflow's 404)."""
    status = await conn.execute(
        "UPDATE trace_info SET tags = tags - $2::text WHERE trace_id = $1 AND tags ? $2",
        trace_id,
        key,
    )
    return bool(status == "UPDATE 1")


async def link_to_run(conn: Conn, trace_ids: list[str], run_id: str) -> None:
    await conn.execute(
        "INSERT INTO trace_run_links (trace_id, run_id)"
        " SELECT t, $2 FROM unnest($1::text[]) AS t ON CONFLICT DO NOTHING",
        trace_ids,
        run_id,
    )


async def link_prompts(conn: Conn, trace_id: str, prompts: list[str]) -> None:
    await conn.execute(
        "INSERT INTO trace_prompt_links (trace_id, prompt)"
        " SELECT $1, p FROM unnest($2::text[]) AS p ON CONFLICT DO NOTHING",
        trace_id,
        prompts,
    )


async def experiment_of(conn: Conn, trace_id: str) -> int | None:
    """The trace's experiment (access control: grants are per experiment)."""
    value = await conn.fetchval(
        "SELECT experiment_id FROM trace_info WHERE trace_id = $1", trace_id
    )
    return int(value) if value is not None else None


# -- assessments -------------------------------------------------------------------------------


async def insert_assessment(
    conn: asyncpg.Connection,
    trace_id: str,
    assessment_id: str,
    created_ms: int,
    doc: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO trace_assessments (trace_id, assessment_id, created_ms, doc)"
        " VALUES ($1, $2, $3, $4::jsonb)",
        trace_id,
        assessment_id,
        created_ms,
        orjson.dumps(doc).decode(),
    )


async def assessment(conn: Conn, trace_id: str, assessment_id: str) -> dict[str, Any] | None:
    raw = await conn.fetchval(
        "SELECT doc FROM trace_assessments WHERE trace_id = $1 AND assessment_id = $2",
        trace_id,
        assessment_id,
    )
    return orjson.loads(raw) if raw is not None else None


async def replace_assessment(
    conn: asyncpg.Connection, trace_id: str, assessment_id: str, doc: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE trace_assessments SET doc = $3::jsonb WHERE trace_id = $1 AND assessment_id = $2",
        trace_id,
        assessment_id,
        orjson.dumps(doc).decode(),
    )


async def delete_assessment(conn: Conn, trace_id: str, assessment_id: str) -> None:
    await conn.execute(
        "DELETE FROM trace_assessments WHERE trace_id = $1 AND assessment_id = $2",
        trace_id,
        assessment_id,
    )


# MLflow keeps the run an assessment was made in only in its metadata, under this key; written
# as a literal so the planner matches the expression index of migration 0020.
_SOURCE_RUN = "doc -> 'metadata' ->> 'mlflow.assessment.sourceRunId'"


async def delete_assessments_of_run(conn: asyncpg.Connection, run_id: str) -> None:
    """Deleting a run deletes the assessments made in it, as MLflow does (0020 indexes this)."""
    await conn.execute(f"DELETE FROM trace_assessments WHERE {_SOURCE_RUN} = $1", run_id)


async def delete_assessments_of_experiment(conn: asyncpg.Connection, experiment_id: int) -> None:
    """Deleting an experiment deletes the assessments made in any of its runs."""
    await conn.execute(
        f"DELETE FROM trace_assessments WHERE {_SOURCE_RUN} IN"
        " (SELECT run_uuid FROM runs WHERE experiment_id = $1)",
        experiment_id,
    )


async def metric_rows(conn: Conn, text: str, params: list[Any]) -> list[Row]:
    """The rows of a trace metrics query (api/traces/metric_rules.py builds the SQL from fixed
    text; user values are parameters)."""
    return list(await conn.fetch(text, *params))
