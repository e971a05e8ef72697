"""The ``mlflow-artifacts`` proxy API (upload, download, list, delete, multipart) and its store's
lifetime.

Paths come from the *raw* URL tail (or the ``path`` query parameter) and go through
``api.artifacts.paths`` before any storage call; a multipart target is the URL directory plus
the basename of the body's ``path``, validated as one path the same way.

Multipart (``mpu/create|complete|abort``, protocol in ``api.artifacts.multipart``) is served by
both backends, so server-info advertises ``multipart_uploads_enabled``. On S3 the client PUTs
parts to presigned S3 URLs (``api.artifacts.s3``). On a local root the part URLs name
``PUT /api/2.0/mlflow-artifacts/mpu/part/<upload_id>/<n>`` on this api: the unguessable upload
id is the credential (the client sends no Authorization there), parts are staged beside the
root and assembled atomically on complete (``api.artifacts.staging``, which also sweeps stale
uploads). The part URL's origin is ``SLUICE_API_PUBLIC_URL`` when set, else the request's
X-Forwarded-Host/-Proto, else its Host (``multipart.base_url``): behind ``sluice front``,
which forwards neither, that is the api's own address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api.artifacts import multipart, paths
from api.artifacts.multipart import MAX_PART_BYTES, PART_PATH, MultipartStore, PartUrl
from api.artifacts.s3 import open_s3_store
from api.artifacts.staging import SWEEP_INTERVAL_S, LocalMultipart
from api.artifacts.store import ArtifactStore, LocalStore, artifact_store_key
from api.deps import request_doc
from schemas.protojson import parse_json_body
from sluice.config import ApiConfig
from sluice.http import BodyTooLarge, json_response, read_body

log = logging.getLogger(__name__)

_MARKER = "/mlflow-artifacts/artifacts/"
_MPU_CREATE = "/mlflow-artifacts/mpu/create/"
_MPU_COMPLETE = "/mlflow-artifacts/mpu/complete/"
_MPU_ABORT = "/mlflow-artifacts/mpu/abort/"
_CHUNK = 1024 * 1024
# A complete lists up to 10,000 parts, each with the URL it was PUT to (an S3 presigned URL is
# ~0.5-1 KB): above the api's general body bound, so complete reads up to this much.
_COMPLETE_MAX_BODY = 16 * 1024 * 1024

public_url_key = web.AppKey("artifact_public_url", str)


async def artifact_store_context(app: web.Application, cfg: ApiConfig) -> AsyncIterator[None]:
    """cleanup_ctx: the configured store (S3 client or local folder) for the app's lifetime,
    and for a local folder the sweep of stale multipart uploads."""
    app[public_url_key] = cfg.public_url
    if cfg.artifact_root.startswith("s3://"):
        async with open_s3_store(
            cfg.artifact_root,
            cfg.artifact_s3_endpoint_url,
            cfg.artifact_upload_part_bytes,
            cfg.artifact_s3_timeout_s,
            cfg.artifact_mpu_expiry_s,
        ) as s3:
            app[artifact_store_key] = s3
            yield
        return
    store = LocalStore(cfg.artifact_root, cfg.artifact_mpu_staging_dir, cfg.artifact_mpu_expiry_s)
    app[artifact_store_key] = store
    sweeper = asyncio.create_task(_sweep_forever(store.multipart))
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper


async def _sweep_forever(staged: LocalMultipart) -> None:
    while True:
        try:
            removed = await staged.sweep()
        except Exception:  # keep sweeping: a failed round is retried at the next interval
            log.exception("multipart staging sweep failed")
        else:
            if removed:
                log.info("removed stale multipart uploads", extra={"count": removed})
        await asyncio.sleep(SWEEP_INTERVAL_S)


def _tail(request: web.Request, marker: str = _MARKER, allow_root: bool = False) -> paths.Segments:
    # request.raw_path is the request target as received; rel_url has had its dot segments
    # removed (RFC 3986), which would silently turn "a/../b" into "b" instead of refusing it.
    raw = request.raw_path.partition("?")[0]
    _, found, tail = raw.partition(marker)
    if not found:
        raise paths.invalid_path(raw)
    return paths.from_raw_tail(tail, allow_root=allow_root)


def _store(request: web.Request) -> ArtifactStore:
    return request.app[artifact_store_key]


def _multipart(request: web.Request) -> MultipartStore:
    store = _store(request).multipart
    if store is None:
        raise multipart.unsupported()
    return store


async def proxy_upload_artifact(request: web.Request) -> web.Response:
    parts = _tail(request)
    await _store(request).put(parts, request.content.iter_chunked(_CHUNK))
    return web.Response(content_type="application/json")  # MLflow: an empty body


async def proxy_download_artifact(request: web.Request) -> web.StreamResponse:
    return await _store(request).download(_tail(request), request)


async def proxy_delete_artifact(request: web.Request) -> web.Response:
    await _store(request).delete(_tail(request))
    return json_response({})


async def proxy_list_artifacts(request: web.Request) -> web.Response:
    parts = paths.from_decoded(request.query.get("path", ""), allow_root=True)
    entries = await _store(request).list(parts)
    files = [
        # proto3 leaves a zero out: an empty file is listed without file_size, as in MLflow.
        {"path": e.name, "is_dir": e.is_dir, **({"file_size": e.size} if e.size else {})}
        for e in entries
    ]
    return json_response({"files": files} if files else {})


# --- multipart -------------------------------------------------------------------------------
def _part_url(request: web.Request) -> PartUrl:
    base = multipart.base_url(
        request.app[public_url_key],
        request.headers.get("X-Forwarded-Host"),
        request.headers.get("X-Forwarded-Proto"),
        request.host,
        request.scheme,
    )
    return lambda upload_id, number: f"{base}{PART_PATH}/{upload_id}/{number}"


async def create_multipart_upload_artifact(request: web.Request) -> web.Response:
    directory = _tail(request, _MPU_CREATE, allow_root=True)
    doc = await request_doc(request)
    target = multipart.target_of(directory, doc)
    num_parts = multipart.num_parts_of(doc)
    created = await _multipart(request).create_upload(target, num_parts, _part_url(request))
    return json_response(created.to_json())


async def complete_multipart_upload_artifact(request: web.Request) -> web.Response:
    directory = _tail(request, _MPU_COMPLETE, allow_root=True)
    bounded = request.clone(client_max_size=_COMPLETE_MAX_BODY)
    raw = await read_body(bounded, _COMPLETE_MAX_BODY)
    doc = parse_json_body(raw, request.headers.get("Content-Type"), request.method)
    target = multipart.target_of(directory, doc)
    upload_id = multipart.upload_id_of(doc)
    parts = multipart.parts_of(doc)
    await _multipart(request).complete_upload(target, upload_id, parts)
    return json_response({})


async def abort_multipart_upload_artifact(request: web.Request) -> web.Response:
    directory = _tail(request, _MPU_ABORT, allow_root=True)
    doc = await request_doc(request)
    target = multipart.target_of(directory, doc)
    await _multipart(request).abort_upload(target, multipart.upload_id_of(doc))
    return json_response({})


async def upload_multipart_part(request: web.Request) -> web.Response:
    """A part PUT to a local-root upload (S3 uploads take their parts at S3)."""
    upload_id = request.match_info["upload_id"]
    staged = _store(request).multipart
    if not isinstance(staged, LocalMultipart):
        raise multipart.unknown_upload(upload_id)
    declared = request.content_length
    if declared is not None and declared > MAX_PART_BYTES:
        raise BodyTooLarge(declared, MAX_PART_BYTES)
    number = int(request.match_info["part_number"])
    etag = await staged.upload_part(upload_id, number, request.content.iter_chunked(_CHUNK))
    return json_response({}, headers={"ETag": f'"{etag}"'})
