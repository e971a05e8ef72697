"""What api handlers need, built once per app by api/app.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from api.read_fence import ReadFence
from schemas.protojson import parse_json_body, query_to_dict
from sluice.http import read_body


@dataclass(frozen=True, slots=True)
class Deps:
    pool: asyncpg.Pool
    fence: ReadFence
    max_body_bytes: int


deps_key = web.AppKey("deps", Deps)


async def request_doc(
    request: web.Request, repeated: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The request's fields: query string for GET, JSON body otherwise (MLflow's rules)."""
    if request.method == "GET":
        return query_to_dict(list(request.query.items()), repeated)
    raw = await read_body(request, request.app[deps_key].max_body_bytes)
    return parse_json_body(raw, request.headers.get("Content-Type"), request.method)
