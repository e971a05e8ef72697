"""The ``mlflow-artifacts`` proxy API (upload, download, list, delete) and its store's lifetime.

Paths come from the *raw* URL tail (or the ``path`` query parameter) and go through
``api.artifacts.paths`` before any storage call. Multipart (``mpu/*``) is not implemented and
answers MLflow's 501, so server-info keeps ``multipart_uploads_enabled`` false.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.artifacts import paths
from api.artifacts.s3 import open_s3_store
from api.artifacts.store import ArtifactStore, LocalStore, artifact_store_key
from schemas.mlflow_errors import MlflowError
from sluice.config import ApiConfig
from sluice.http import json_response

_MARKER = "/mlflow-artifacts/artifacts/"
_CHUNK = 1024 * 1024


async def artifact_store_context(app: web.Application, cfg: ApiConfig) -> AsyncIterator[None]:
    """cleanup_ctx: the configured store (S3 client or local folder) for the app's lifetime."""
    if cfg.artifact_root.startswith("s3://"):
        async with open_s3_store(
            cfg.artifact_root,
            cfg.artifact_s3_endpoint_url,
            cfg.artifact_upload_part_bytes,
            cfg.artifact_s3_timeout_s,
        ) as s3:
            app[artifact_store_key] = s3
            yield
        return
    app[artifact_store_key] = LocalStore(cfg.artifact_root)
    yield


def _tail(request: web.Request) -> paths.Segments:
    # request.raw_path is the request target as received; rel_url has had its dot segments
    # removed (RFC 3986), which would silently turn "a/../b" into "b" instead of refusing it.
    raw = request.raw_path.partition("?")[0]
    _, found, tail = raw.partition(_MARKER)
    if not found:
        raise paths.invalid_path(raw)
    return paths.from_raw_tail(tail)


def _store(request: web.Request) -> ArtifactStore:
    return request.app[artifact_store_key]


async def proxy_upload_artifact(request: web.Request) -> web.Response:
    parts = _tail(request)
    await _store(request).put(parts, request.content.iter_chunked(_CHUNK))
    return json_response({})


async def proxy_download_artifact(request: web.Request) -> web.StreamResponse:
    return await _store(request).download(_tail(request), request)


async def proxy_delete_artifact(request: web.Request) -> web.Response:
    await _store(request).delete(_tail(request))
    return json_response({})


async def proxy_list_artifacts(request: web.Request) -> web.Response:
    parts = paths.from_decoded(request.query.get("path", ""), allow_root=True)
    entries = await _store(request).list(parts)
    files = [
        {"path": e.name, "is_dir": e.is_dir, **({} if e.size is None else {"file_size": e.size})}
        for e in entries
    ]
    return json_response({"files": files} if files else {})


async def proxy_multipart_unsupported(_: web.Request) -> web.Response:
    raise MlflowError(
        "NOT_IMPLEMENTED",
        "Multipart upload is not supported for the current artifact repository",
    )
