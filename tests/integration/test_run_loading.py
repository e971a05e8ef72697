"""``api.runs.store.load_runs`` on PostgreSQL: a page of runs in one statement, each run's child
rows as arrays of table rows, rendered into the exact MLflow documents.

Rows go straight into the tables so one run can carry every child kind (NaN metric, datasets
with and without schema/profile, input tags out of key order, model inputs and outputs) next to
a run that has none, and the orders MLflow uses can be checked: metrics, params and tags by
key; datasets, their tags, model inputs and outputs as logged.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from api.runs.store import load_runs

pytestmark = pytest.mark.services


async def _experiment(conn: asyncpg.Connection) -> int:
    experiment_id: int = await conn.fetchval(
        "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time,"
        " last_update_time) VALUES (nextval('experiment_id_seq'), $1, '', 0, 0)"
        " RETURNING experiment_id",
        uuid.uuid4().hex,
    )
    return experiment_id


async def _full_run(conn: asyncpg.Connection, exp: int, run_id: str) -> list[str]:
    """A run with every kind of child row, inserted out of the order MLflow returns them in;
    returns its two dataset ids in logging order."""
    await conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,"
        " artifact_uri) VALUES ($1, $2, 'full', 'ann', 'FINISHED', 10, 20, 'file:///a')",
        run_id,
        exp,
    )
    await conn.executemany(
        "INSERT INTO latest_metrics VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (run_id, "loss", 3, 300, 0.25, False),
            (run_id, "acc", 1, 100, 1.0, False),
            (run_id, "gap", 2, 200, 0.0, True),
        ],
    )
    await conn.executemany(
        "INSERT INTO params VALUES ($1, $2, $3)", [(run_id, "lr", "0.1"), (run_id, "depth", "4")]
    )
    await conn.executemany(
        "INSERT INTO tags VALUES ($1, $2, $3)", [(run_id, "team", "a"), (run_id, "phase", "x")]
    )
    datasets = [uuid.uuid4().hex, uuid.uuid4().hex]
    await conn.executemany(
        "INSERT INTO datasets VALUES ($1, $2, $3, $4, 'local', 'src', $5, $6)",
        [
            (datasets[0], exp, "train", uuid.uuid4().hex, "{}", None),
            (datasets[1], exp, "eval", uuid.uuid4().hex, None, '{"rows": 5}'),
        ],
    )
    for dataset in datasets:  # logging order: position is an identity column
        await conn.execute(
            "INSERT INTO run_inputs (run_uuid, dataset_uuid) VALUES ($1, $2)", run_id, dataset
        )
    await conn.executemany(
        "INSERT INTO input_tags VALUES ($1, $2, $3, $4, $5)",
        [
            (run_id, datasets[1], "z", "last-logged-first", 0),
            (run_id, datasets[0], "b", "2", 1),
            (run_id, datasets[0], "a", "1", 0),
        ],
    )
    for model in ("m2", "m1"):
        await conn.execute(
            "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2)", run_id, model
        )
    for model, step in (("m9", 3), ("m1", 1)):
        await conn.execute(
            "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3)",
            run_id,
            model,
            step,
        )
    return datasets


def _expected_full(run_id: str, exp: int, digests: dict[str, str]) -> dict[str, Any]:
    return {
        "info": {
            "run_id": run_id,
            "run_uuid": run_id,
            "run_name": "full",
            "experiment_id": str(exp),
            "user_id": "ann",
            "status": "FINISHED",
            "start_time": 10,
            "artifact_uri": "file:///a",
            "lifecycle_stage": "active",
            "end_time": 20,
        },
        "data": {
            "metrics": [
                {"key": "acc", "value": 1.0, "timestamp": 100, "step": 1},
                {"key": "gap", "value": "NaN", "timestamp": 200, "step": 2},
                {"key": "loss", "value": 0.25, "timestamp": 300, "step": 3},
            ],
            "params": [{"key": "depth", "value": "4"}, {"key": "lr", "value": "0.1"}],
            "tags": [{"key": "phase", "value": "x"}, {"key": "team", "value": "a"}],
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
                    "dataset": {
                        "name": "train",
                        "digest": digests["train"],
                        "source_type": "local",
                        "source": "src",
                        "schema": "{}",
                    },
                },
                {
                    "tags": [{"key": "z", "value": "last-logged-first"}],
                    "dataset": {
                        "name": "eval",
                        "digest": digests["eval"],
                        "source_type": "local",
                        "source": "src",
                        "profile": '{"rows": 5}',
                    },
                },
            ],
            "model_inputs": [{"model_id": "m2"}, {"model_id": "m1"}],
        },
        "outputs": {
            "model_outputs": [{"model_id": "m9", "step": 3}, {"model_id": "m1", "step": 1}]
        },
    }


async def test_page_documents_in_requested_order(conn: asyncpg.Connection) -> None:
    """Every child kind rendered exactly; a bare run gets empty sections and start_time 0; an
    unknown id is skipped; the requested order is kept."""
    exp = await _experiment(conn)
    full, bare, unknown = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    datasets = await _full_run(conn, exp, full)
    await conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, artifact_uri)"
        " VALUES ($1, $2, 'bare', 'file:///b')",
        bare,
        exp,
    )
    digests = dict(
        await conn.fetch(
            "SELECT name, digest FROM datasets WHERE dataset_uuid = ANY($1::text[])", datasets
        )
    )

    loaded = await load_runs(conn, [bare, unknown, full])

    assert loaded == [
        {
            "info": {
                "run_id": bare,
                "run_uuid": bare,
                "run_name": "bare",
                "experiment_id": str(exp),
                "user_id": "",
                "status": "RUNNING",
                "start_time": 0,
                "artifact_uri": "file:///b",
                "lifecycle_stage": "active",
            },
            "data": {},
            "inputs": {},
            "outputs": {},
        },
        _expected_full(full, exp, digests),
    ]


async def test_empty_and_unknown_pages(conn: asyncpg.Connection) -> None:
    assert await load_runs(conn, []) == []
    assert await load_runs(conn, [uuid.uuid4().hex]) == []


async def test_page_of_many_runs_is_one_statement(conn: asyncpg.Connection) -> None:
    """A 100-run page costs one round trip, whatever the page size (it used to be eight).

    The first call on a connection also introspects the composite row types (asyncpg caches
    their codecs with the prepared statement), so the count is taken on the second."""
    exp = await _experiment(conn)
    ids = [uuid.uuid4().hex for _ in range(100)]
    await conn.executemany(
        "INSERT INTO runs (run_uuid, experiment_id, name, artifact_uri) VALUES ($1, $2, $1, '')",
        [(r, exp) for r in ids],
    )
    await load_runs(conn, ids[:1])
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    loaded = await load_runs(conn, ids)
    await asyncio.sleep(0)  # asyncpg hands query records to loggers with call_soon
    assert [doc["info"]["run_id"] for doc in loaded] == ids
    assert len(statements) == 1
