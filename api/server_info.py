"""Server-info: what the artifact client and UI probe before choosing upload/download flows.
Only features that are implemented are advertised (a true flag switches client code paths):
``multipart_uploads_enabled`` says whether the configured artifact store serves ``mpu/*``."""

from __future__ import annotations

from aiohttp import web

from api.artifacts.store import artifact_store_key
from sluice.http import json_response

SERVER_INFO = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "artifact_serving_enabled": True,
    "multipart_uploads_enabled": False,  # per artifact store, in server_info below
    "multipart_downloads_enabled": False,
    "artifacts_presigned_only": False,
    "trace_archival_enabled": False,
    "features_enabled": {"gateway": False, "scheduled_issue_detection": False},
}


async def server_info(request: web.Request) -> web.Response:
    store = request.app.get(artifact_store_key)
    multipart = store is not None and store.multipart is not None
    return json_response({**SERVER_INFO, "multipart_uploads_enabled": multipart})
