"""Creations inside an experiment against a concurrent experiment delete (issue 11).

A delete locks the experiment row FOR UPDATE, marks it deleted and commits. A run or a logged
model created meanwhile must either commit before the delete or see the experiment deleted;
without the creation's FOR SHARE lock it would read the last committed row ("active") and
insert into an experiment that is being deleted. The delete is held open here by hand, on a
plain connection, so the interleaving is certain rather than a matter of timing luck.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

pytestmark = pytest.mark.services

_CREATIONS = {
    "runs/create": ("POST", "runs/create", "runs"),
    "logged-models": ("POST", "logged-models", "logged_models"),
}


async def _create_experiment(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(
        f"{base}/api/2.0/mlflow/experiments/create", json={"name": f"race-{uuid.uuid4().hex}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return str(body["experiment_id"])


@pytest.mark.parametrize("call", sorted(_CREATIONS))
async def test_creation_waits_for_an_experiment_delete_in_flight_then_refuses(
    sluice_url: str, conn: asyncpg.Connection, call: str
) -> None:
    method, path, table = _CREATIONS[call]
    async with aiohttp.ClientSession() as session:
        exp_id = await _create_experiment(session, sluice_url)
        delete = conn.transaction()
        await delete.start()
        try:
            await conn.execute(
                "SELECT 1 FROM experiments WHERE experiment_id = $1 FOR UPDATE", int(exp_id)
            )
            await conn.execute(
                "UPDATE experiments SET lifecycle_stage = 'deleted' WHERE experiment_id = $1",
                int(exp_id),
            )
            request = asyncio.create_task(
                session.request(
                    method, f"{sluice_url}/api/2.0/mlflow/{path}", json={"experiment_id": exp_id}
                )
            )
            await asyncio.sleep(0.5)
            assert not request.done(), "the creation did not wait for the experiment's lock"
        finally:
            await delete.commit()
        async with await request as resp:
            body = await resp.json()
        assert resp.status == 400, body
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert body["message"] == (
            f"The experiment {exp_id} must be in the 'active' state. Current state is deleted."
        )
    created = await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE experiment_id = $1",
        int(exp_id),
    )
    assert created == 0
