"""Accepted, documented differences between Sluice and MLflow: case id -> reason.

A case listed here still runs; a difference is then tolerated and shown in the report, and an
entry whose case no longer differs is flagged there for removal. Keep this near-empty: each
entry is a place where an MLflow client or the UI may see Sluice behave differently.
"""

from __future__ import annotations

# The delete race once listed here (a metric write right after runs/delete answered 200) is
# gone: ingest now looks every run up in PostgreSQL (coalesced), its cache only covers outages.
_MULTIPART = (
    "multipart_uploads_enabled is true: Sluice serves mpu/create|complete|abort for its local "
    "folder root too (parts staged beside the root, api/artifacts/staging.py), where MLflow's "
    "LocalArtifactRepository answers 501 and so advertises false. A client then uploads files "
    "above MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MB) in parts instead of one PUT."
)
DEVIATIONS: dict[str, str] = {
    "server-info/api": _MULTIPART,
    "server-info/ajax": _MULTIPART,
}
