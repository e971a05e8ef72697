"""How the UI's artifact routes name and type files (pure).

Every file is sent as an attachment with ``nosniff``: an HTML artifact is downloaded, never
rendered on the UI's origin (XSS). Content type and disposition follow MLflow's mapping, shared
with the mlflow-artifacts downloads (``api/artifacts/download_headers.py``).
"""

from __future__ import annotations

import urllib.parse

from api.artifacts import download_headers as download_headers_module
from api.artifacts import paths
from api.registry import sources


def mime_type(name: str) -> str:
    return download_headers_module.content_type(name)


def content_disposition(name: str) -> str:
    """``attachment`` with the file name; a non-ASCII name gets an ASCII fallback and the
    exact name as ``filename*`` (RFC 6266 / 5987), since header values must be ASCII."""
    return download_headers_module.content_disposition(name)


def download_headers(name: str) -> dict[str, str]:
    return {
        "Content-Type": mime_type(name),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def store_root(uri: str, s3_root: tuple[str, tuple[str, ...]] | None) -> tuple[str, ...] | None:
    """The store segments an artifact root URI (a run's, logged model's or model version's)
    names: ``mlflow-artifacts:/<path>``, or ``s3://`` inside the configured bucket and prefix.
    None for anything else: Sluice never reads locations a user supplied."""
    parts = sources.artifact_parts(uri)
    if parts is None and s3_root is not None and uri.startswith("s3://"):
        split = urllib.parse.urlsplit(sources.fully_decoded(uri))
        keys = tuple(p for p in split.path.split("/") if p)
        bucket, prefix = s3_root
        if split.netloc == bucket and keys[: len(prefix)] == prefix:
            parts = keys[len(prefix) :]
    if parts is None:
        return None
    # Roots come from the database, but an experiment's location was once a user's input:
    # the same checks as a request path.
    return paths.from_decoded("/".join(parts), allow_root=True)
