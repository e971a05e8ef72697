"""The UI's artifact views: list a run's (or logged model's) artifacts and send one file, for
runs, logged models and model versions. Storage is the ``mlflow-artifacts`` store the proxy
API uses (``api.artifacts``), paths go through the same checks (``api.artifacts.paths``), and
only roots inside that store are served (``artifact_rules.store_root``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.artifacts import paths
from api.artifacts.store import artifact_store_key
from api.deps import deps_key, request_doc
from api.registry import store as registry
from api.ui import artifact_rules
from schemas.mlflow_errors import (
    does_not_exist,
    invalid_parameter,
    missing_parameter,
    no_such_run,
)
from sluice.http import json_response

_RUN_ROOT = "SELECT artifact_uri FROM runs WHERE run_uuid = $1"
_LOGGED_MODEL_ROOT = (
    "SELECT artifact_location FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'"
)


def _run_id(doc: dict[str, Any]) -> str:
    run_id = doc.get("run_id") or doc.get("run_uuid")
    if not isinstance(run_id, str) or not run_id:
        raise missing_parameter("run_id")
    return run_id


async def _run_root(request: web.Request, run_id: str) -> str:
    uri = await request.app[deps_key].pool.fetchval(_RUN_ROOT, run_id)
    if uri is None:
        raise no_such_run(run_id)
    return str(uri)


async def _logged_model_root(request: web.Request, model_id: str) -> str:
    uri = await request.app[deps_key].pool.fetchval(_LOGGED_MODEL_ROOT, model_id)
    if uri is None:
        raise does_not_exist(f"Logged model with ID '{model_id}' not found.")
    return str(uri)


async def _model_version_root(request: web.Request, name: str, version: str) -> str:
    if not version.isdigit():
        raise invalid_parameter(f"Model version must be an integer, got '{version}'")
    async with request.app[deps_key].pool.acquire() as conn:
        row = await registry.fetch_version(conn, name, int(version))
    return str(row["storage_location"] or row["source"])


def _root_parts(request: web.Request, uri: str) -> paths.Segments:
    parts = artifact_rules.store_root(uri, request.app[artifact_store_key].s3_root)
    if parts is None:
        raise invalid_parameter(
            f"The artifacts at '{uri}' are not in this server's artifact store; Sluice serves "
            "only mlflow-artifacts:/ locations (and s3:// inside its configured root)."
        )
    return parts


async def _listing(request: web.Request, uri: str, relative: str) -> web.Response:
    below = paths.from_decoded(relative, allow_root=True)
    entries = await request.app[artifact_store_key].list((*_root_parts(request, uri), *below))
    files = [
        {
            "path": paths.display((*below, e.name)),
            "is_dir": e.is_dir,
            **({} if e.size is None else {"file_size": e.size}),
        }
        for e in entries
    ]
    return json_response({"root_uri": uri, **({"files": files} if files else {})})


async def _send(request: web.Request, uri: str, relative: str) -> web.StreamResponse:
    below = paths.from_decoded(relative)
    headers = artifact_rules.download_headers(below[-1])
    store = request.app[artifact_store_key]
    return await store.download((*_root_parts(request, uri), *below), request, headers)


def _required(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value:
        raise missing_parameter(field)
    return value


async def list_artifacts(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    root = await _run_root(request, _run_id(doc))
    return await _listing(request, root, str(doc.get("path") or ""))


async def get_artifact(request: web.Request) -> web.StreamResponse:
    doc = await request_doc(request)
    path = _required(doc, "path")
    return await _send(request, await _run_root(request, _run_id(doc)), path)


async def get_model_version_artifact(request: web.Request) -> web.StreamResponse:
    doc = await request_doc(request)
    name, version, path = (_required(doc, f) for f in ("name", "version", "path"))
    return await _send(request, await _model_version_root(request, name, version), path)


async def list_logged_model_artifacts(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    root = await _logged_model_root(request, request.match_info["model_id"])
    return await _listing(request, root, str(doc.get("artifact_directory_path") or ""))


async def get_logged_model_artifact(request: web.Request) -> web.StreamResponse:
    doc = await request_doc(request)
    path = doc.get("artifact_file_path")
    if not isinstance(path, str) or not path:
        raise invalid_parameter('Request must include the "artifact_file_path" query parameter.')
    root = await _logged_model_root(request, request.match_info["model_id"])
    return await _send(request, root, path)
