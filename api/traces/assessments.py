"""Assessments (feedback and expectations) of traces: rare, synchronous PostgreSQL writes.

An assessment is stored as MLflow's JSON of the Assessment message. Creating one with
``overrides`` marks the overridden assessment invalid (``valid: false``), as MLflow does.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from api.deps import deps_key, request_doc
from api.traces import store
from api.traces.fence import trace_fence_key
from schemas.fields import expect_object
from schemas.mlflow_errors import does_not_exist, invalid_parameter, missing_parameter
from schemas.trace_json import timestamp_json
from sluice.http import json_response

_UPDATABLE = {
    "assessment_name": "assessment_name",
    "assessmentName": "assessment_name",
    "expectation": "expectation",
    "feedback": "feedback",
    "rationale": "rationale",
    "metadata": "metadata",
    "valid": "valid",
}


def _now() -> str:
    return timestamp_json(int(time.time() * 1000))


def _assessment_doc(doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("assessment")
    if raw is None or raw == {}:
        raise missing_parameter("assessment")
    return expect_object(raw, "assessment")


def _kind(assessment: dict[str, Any]) -> None:
    kinds = [k for k in ("feedback", "expectation") if assessment.get(k) is not None]
    if len(kinds) != 1:
        shown = kinds[0] if kinds else None
        raise invalid_parameter(f"Unknown assessment type: {shown}")


def _not_found(trace_id: str, assessment_id: str) -> Exception:
    return does_not_exist(f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'")


async def create_assessment(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"]
    assessment = dict(_assessment_doc(await request_doc(request)))
    _kind(assessment)
    now = _now()
    assessment.update(
        assessment_id=f"a-{uuid.uuid4().hex}",
        trace_id=trace_id,
        create_time=assessment.get("create_time") or now,
        last_update_time=assessment.get("last_update_time") or now,
    )
    assessment.setdefault("valid", True)
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        rows = await store.infos(conn, [trace_id])
        if not rows:
            raise does_not_exist(f"Trace with ID '{trace_id}' not found.")
        overridden = assessment.get("overrides")
        if isinstance(overridden, str) and overridden:
            old = await store.assessment(conn, trace_id, overridden)
            if old is None:
                raise _not_found(trace_id, overridden)
            await store.replace_assessment(conn, trace_id, overridden, {**old, "valid": False})
        await store.insert_assessment(
            conn, trace_id, assessment["assessment_id"], int(time.time() * 1000), assessment
        )
    return _json({"assessment": _ordered(assessment)})


async def get_assessment(request: web.Request) -> web.Response:
    trace_id, assessment_id = request.match_info["trace_id"], request.match_info["assessment_id"]
    await request.app[trace_fence_key].wait_for_trace(trace_id)
    found = await store.assessment(request.app[deps_key].pool, trace_id, assessment_id)
    if found is None:
        raise _not_found(trace_id, assessment_id)
    return _json({"assessment": _ordered(found)})


async def update_assessment(request: web.Request) -> web.Response:
    trace_id, assessment_id = request.match_info["trace_id"], request.match_info["assessment_id"]
    doc = await request_doc(request)
    changes = _assessment_doc(doc)
    paths = _mask_paths(doc.get("update_mask"))
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        found = await store.assessment(conn, trace_id, assessment_id)
        if found is None:
            raise _not_found(trace_id, assessment_id)
        updated = _apply(found, changes, paths)
        await store.replace_assessment(conn, trace_id, assessment_id, updated)
    return _json({"assessment": _ordered(updated)})


def _mask_paths(mask: Any) -> list[str]:
    if mask is None or mask in ("", {}):
        raise missing_parameter("update_mask")
    if isinstance(mask, str):  # FieldMask's JSON form: "assessmentName,feedback"
        return [p.strip() for p in mask.split(",") if p.strip()]
    if isinstance(mask, dict) and isinstance(mask.get("paths"), list):
        return [str(p) for p in mask["paths"]]
    raise invalid_parameter(f"Invalid value {mask!r} for parameter 'update_mask' supplied.")


def _apply(found: dict[str, Any], changes: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    updated = dict(found)
    for path in paths:
        field = _UPDATABLE.get(path)
        if field is None:
            continue
        if field == "metadata":
            updated["metadata"] = {**found.get("metadata", {}), **changes.get("metadata", {})}
        elif field in ("feedback", "expectation"):
            updated.pop("feedback", None)
            updated.pop("expectation", None)
            updated[field] = changes.get(field, {})
        else:
            updated[field] = changes.get(field)
    updated["last_update_time"] = _now()
    return updated


async def delete_assessment(request: web.Request) -> web.Response:
    trace_id, assessment_id = request.match_info["trace_id"], request.match_info["assessment_id"]
    await store.delete_assessment(request.app[deps_key].pool, trace_id, assessment_id)
    return _json({})


_ORDER = (
    "assessment_id",
    "assessment_name",
    "trace_id",
    "span_id",
    "source",
    "create_time",
    "last_update_time",
    "feedback",
    "expectation",
    "rationale",
    "metadata",
    "overrides",
    "valid",
)


def _ordered(assessment: dict[str, Any]) -> dict[str, Any]:
    """MLflow's field order (proto order), unset fields left out."""
    known = {k: assessment[k] for k in _ORDER if assessment.get(k) is not None}
    return known | {k: v for k, v in assessment.items() if k not in known and v is not None}


def _json(body: dict[str, Any]) -> web.Response:
    return json_response(body)
