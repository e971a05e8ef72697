"""Server-info: what the artifact client and UI probe before choosing upload/download flows.

The keys are MLflow 3.17.2's (``build_server_info_payload``), no more: the UI reads
``features_enabled[name]`` with a default of *true*, so a key is never invented here. Only what
Sluice implements is advertised true: ``multipart_uploads_enabled`` per artifact store; the
presigned-upload request contracts are false because ``artifacts/presigned-upload-url`` is not
served (tests/compat/deviations.py); the AI gateway is one of the MLflow 3 GenAI families Sluice
answers with NOT_IMPLEMENTED (api/not_supported.py)."""

from __future__ import annotations

from aiohttp import web

from api.artifacts.store import artifact_store_key
from sluice.http import json_response

SERVER_INFO = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,  # per artifact store, in server_info below
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}


async def server_info(request: web.Request) -> web.Response:
    store = request.app.get(artifact_store_key)
    multipart = store is not None and store.multipart is not None
    return json_response({**SERVER_INFO, "multipart_uploads_enabled": multipart})
