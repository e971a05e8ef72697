"""Registry races (issue 4, acceptance 3): real concurrent HTTP requests against the stack.

Readers sample while writers run; each sample is one request, so it sees one committed state.
429 (back-pressure when the pool is busy) is retried, as the MLflow client does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import aiohttp

WRITERS_VERSIONS = 50
WRITERS_TRANSITIONS = 20
WRITERS_ALIASES = 20
READERS = 8


async def _call(
    session: aiohttp.ClientSession, base: str, method: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    for _ in range(20):
        async with session.request(method, f"{base}/api/2.0/mlflow/{path}", **kwargs) as resp:
            if resp.status == 429:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            body: dict[str, Any] = await resp.json()
            assert resp.status == 200, body
            return body
    raise AssertionError(f"{path}: still 429 after 20 attempts")


async def _model_with_versions(session: aiohttp.ClientSession, base: str, count: int) -> str:
    name = f"race-{uuid.uuid4().hex[:8]}"
    await _call(session, base, "POST", "registered-models/create", json={"name": name})
    for _ in range(count):
        await _call(
            session,
            base,
            "POST",
            "model-versions/create",
            json={"name": name, "source": "runs:/r/m", "run_id": "r"},
        )
    return name


async def test_parallel_version_creation_is_gap_free(sluice_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        name = await _model_with_versions(session, sluice_url, 0)
        bodies = await asyncio.gather(
            *(
                _call(
                    session,
                    sluice_url,
                    "POST",
                    "model-versions/create",
                    json={"name": name, "source": "runs:/r/m", "run_id": "r"},
                )
                for _ in range(WRITERS_VERSIONS)
            )
        )
    numbers = sorted(int(b["model_version"]["version"]) for b in bodies)
    assert numbers == list(range(1, WRITERS_VERSIONS + 1))


async def _sample_stages(
    session: aiohttp.ClientSession, base: str, name: str, done: asyncio.Event
) -> list[int]:
    seen: list[int] = []
    while not done.is_set():
        body = await _call(
            session, base, "GET", "model-versions/search", params={"filter": f"name='{name}'"}
        )
        stages = Counter(v["current_stage"] for v in body.get("model_versions", []))
        seen.append(stages["Production"])
        latest = await _call(
            session,
            base,
            "POST",
            "registered-models/get-latest-versions",
            json={"name": name, "stages": ["Production"]},
        )
        assert len(latest.get("model_versions", [])) == 1
    return seen


async def test_parallel_promotions_leave_exactly_one_production(sluice_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        name = await _model_with_versions(session, sluice_url, WRITERS_TRANSITIONS)
        await _call(
            session,
            sluice_url,
            "POST",
            "model-versions/transition-stage",
            json={"name": name, "version": "1", "stage": "Production"},
        )
        done = asyncio.Event()
        readers = [
            asyncio.create_task(_sample_stages(session, sluice_url, name, done))
            for _ in range(READERS)
        ]
        await asyncio.gather(
            *(
                _call(
                    session,
                    sluice_url,
                    "POST",
                    "model-versions/transition-stage",
                    json={
                        "name": name,
                        "version": str(v),
                        "stage": "Production",
                        "archive_existing_versions": True,
                    },
                )
                for v in range(1, WRITERS_TRANSITIONS + 1)
            )
        )
        done.set()
        samples = [n for seen in await asyncio.gather(*readers) for n in seen]
        final = await _call(
            session, sluice_url, "GET", "model-versions/search", params={"filter": f"name='{name}'"}
        )
    print(f"promotions: {len(samples)} reader samples, Production counts {Counter(samples)}")
    assert len(samples) >= READERS and set(samples) == {1}, Counter(samples)
    stages = Counter(v["current_stage"] for v in final["model_versions"])
    assert stages["Production"] == 1
    assert stages["Archived"] == WRITERS_TRANSITIONS - 1


async def test_parallel_alias_moves_leave_one_target(sluice_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        name = await _model_with_versions(session, sluice_url, WRITERS_ALIASES)
        await asyncio.gather(
            *(
                _call(
                    session,
                    sluice_url,
                    "POST",
                    "registered-models/alias",
                    json={"name": name, "alias": "champion", "version": str(v)},
                )
                for v in range(1, WRITERS_ALIASES + 1)
            )
        )
        model = await _call(
            session, sluice_url, "GET", "registered-models/get", params={"name": name}
        )
        by_alias = await _call(
            session,
            sluice_url,
            "GET",
            "registered-models/alias",
            params={"name": name, "alias": "champion"},
        )
        # model-versions/get renders a version's aliases (model-versions/search does not, as
        # in MLflow).
        versions = await asyncio.gather(
            *(
                _call(
                    session,
                    sluice_url,
                    "GET",
                    "model-versions/get",
                    params={"name": name, "version": str(v)},
                )
                for v in range(1, WRITERS_ALIASES + 1)
            )
        )
    aliases = model["registered_model"]["aliases"]
    assert len(aliases) == 1 and aliases[0]["alias"] == "champion"
    assert by_alias["model_version"]["version"] == aliases[0]["version"]
    holders = [
        v["model_version"]["version"]
        for v in versions
        if "champion" in v["model_version"].get("aliases", [])
    ]
    assert holders == [aliases[0]["version"]]
