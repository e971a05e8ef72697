"""Accepted, documented differences between Sluice and MLflow: case id -> reason.

A case listed here still runs; a difference is then tolerated and shown in the report, and an
entry whose case no longer differs is flagged there for removal. Keep this near-empty: each
entry is a place where an MLflow client or the UI may see Sluice behave differently.
"""

from __future__ import annotations

from collections.abc import Mapping

# The delete race once listed here (a metric write right after runs/delete answered 200) is
# gone: ingest now looks every run up in PostgreSQL (coalesced), its cache only covers outages.
_MULTIPART = (
    "multipart_uploads_enabled is true: Sluice serves mpu/create|complete|abort for its local "
    "folder root too (parts staged beside the root, api/artifacts/staging.py), where MLflow's "
    "LocalArtifactRepository answers 501 and so advertises false. A client then uploads files "
    "above MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MB) in parts instead of one PUT."
)
_PRESIGNED = (
    "presigned_upload_run_id_supported / presigned_upload_model_id_supported are false: MLflow "
    "advertises the request contract of artifacts/presigned-upload-url, which Sluice does not "
    "serve (clients upload through mlflow-artifacts instead). No 3.17.2 client or UI code reads "
    "the flags; a future one that does must not be sent to a route that answers 404."
)
DEVIATIONS: dict[str, str] = {
    "numeric/post-logged-models-search/max_results/negative-string": (
        "max_results below -1 (here -3): MLflow's store asks for LIMIT max_results + 1, which "
        "SQLite reads as no limit (the answer is every model but the last three, with a page "
        "token pointing before the start) and PostgreSQL refuses (a 500). Sluice answers 400 "
        "INVALID_PARAMETER_VALUE, as against the PostgreSQL reference: a client learns its "
        "page size is wrong instead of getting a truncated list. (-1, 0 and the rest match.)"
    ),
    "numeric/get-metrics-get-history-bulk-interval/end_step/int64-overflow": (
        "end_step beyond 64 bits: MLflow on SQLite fails in its driver (500 'Python int too "
        "large to convert to SQLite INTEGER', which clients retry); MLflow on PostgreSQL "
        "answers the points up to the last step. Sluice answers as the PostgreSQL reference."
    ),
}
# Differences confined to one field, which the cases touching it leave out of the comparison
# (`ignore`): field path -> reason. The report lists them with the case deviations.
FIELD_DEVIATIONS: dict[str, str] = {
    "multipart_uploads_enabled": _MULTIPART,
    "presigned_upload_run_id_supported": _PRESIGNED,
    "presigned_upload_model_id_supported": _PRESIGNED,
}

# Judged against the SQLite reference, which the suite runs by default; these differ from the
# PostgreSQL-backed one (SLUICE_COMPAT_REFERENCE=postgresql), where MLflow's own answers change
# with the backend. Applied only in a session against that reference.
_BACKEND_ORDER = (
    "MLflow reads latest_versions without an ORDER BY: on SQLite they come by stage (search) or "
    "by first version (get, get-latest-versions), on PostgreSQL in another order. Sluice keeps "
    "the SQLite reference's order, the one MLflow's own tests and the UI were written against. "
    "(On PostgreSQL the order also varies between runs, so an entry may show as not differing.)"
)
_STATUS_TEXT = (
    "A logged-model filter comparing an integer column (status, experiment_id) with a string: "
    "MLflow on PostgreSQL hands the integer column and the string to the driver and passes its "
    "error on (400 with the driver's text); on SQLite the comparison follows SQLite's typing "
    "(a string that is no number never equals the number, so '=' matches nothing and '!=' "
    "everything). Sluice compares the number's text, as the SQLite reference: a client gets "
    "the models instead of a database error."
)
PG_DEVIATIONS: dict[str, str] = {
    "experiments/create-name-at-500-chars": (
        "MLflow on PostgreSQL refuses a name over 256 characters with the driver's error (its "
        "column is varchar(256)); on SQLite it stores it. Sluice stores it, as SQLite-backed "
        "MLflow does: a client gets the experiment instead of a database error."
    ),
    "outputs/repeated-model-refused": (
        "Same status and error code; MLflow's message is its database driver's text, SQLite's "
        "'UNIQUE constraint failed: inputs...' on one reference and psycopg2's 'duplicate key "
        "value violates unique constraint' on the other. Sluice sends the SQLite text."
    ),
    "order/get-mlflow-registered-models-search": _BACKEND_ORDER,
    "order/get-mlflow-registered-models-get": _BACKEND_ORDER,
    "order/get-mlflow-registered-models-get-latest-versions": _BACKEND_ORDER,
    "order/post-mlflow-registered-models-get-latest-versions": _BACKEND_ORDER,
    "logged-models/filter/status/=": _STATUS_TEXT,
    "logged-models/filter/status/LIKE": _STATUS_TEXT,
    "logged-models/filter/status/ILIKE": _STATUS_TEXT,
    "logged-models/filter/status/IN": _STATUS_TEXT,
    "logged-models/filter/status/!=": _STATUS_TEXT,
    **{
        f"logged-models/filter/experiment_id/{op}": _STATUS_TEXT
        for op in ("=", "!=", "LIKE", "ILIKE", "IN")
    },
    "registry/stages-and-latest": _BACKEND_ORDER,
    "registry/stages-and-latest@ajax": _BACKEND_ORDER,
}


def active_deviations(environ: Mapping[str, str]) -> dict[str, str]:
    """The deviations of this session's reference (SLUICE_COMPAT_REFERENCE)."""
    if environ.get("SLUICE_COMPAT_REFERENCE") == "postgresql":
        return {**DEVIATIONS, **PG_DEVIATIONS}
    return DEVIATIONS
