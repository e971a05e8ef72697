"""Server-info: what the artifact client and UI probe before choosing upload/download flows.
Only features that are implemented are advertised (a true flag switches client code paths)."""

from __future__ import annotations

from aiohttp import web

from sluice.http import json_response

SERVER_INFO = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "artifact_serving_enabled": True,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "artifacts_presigned_only": False,
    "trace_archival_enabled": False,
    "features_enabled": {"gateway": False, "scheduled_issue_detection": False},
}


async def server_info(_: web.Request) -> web.Response:
    return json_response(SERVER_INFO)
