"""Accepted, documented differences between Sluice and MLflow: case id -> reason.

A case listed here still runs; a difference is then tolerated and shown in the report, and an
entry whose case no longer differs is flagged there for removal. Keep this near-empty: each
entry is a place where an MLflow client or the UI may see Sluice behave differently.
"""

from __future__ import annotations

# The delete race once listed here (a metric write right after runs/delete answered 200) is
# gone: ingest now looks every run up in PostgreSQL (coalesced), its cache only covers outages.
DEVIATIONS: dict[str, str] = {}
