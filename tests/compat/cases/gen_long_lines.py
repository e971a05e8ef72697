"""Class 7 of issue 14, generated: long request lines and headers, as MLflow's UI and clients
send them, must reach the handler (or be refused in MLflow's JSON), on every GET route.

The UI's compare view asks metrics/get-history-bulk(-interval) with one `run_id` per run; 1000
runs make a ~40 KB query string. Every GET route of the route table is also called with a long
unknown parameter and a long header, which MLflow ignores: the answer must be the handler's.
"""

from __future__ import annotations

import re

from tests.compat import surface
from tests.compat.cases._build import AJAX, T0, case, post, run_setup
from tests.compat.deviations import FIELD_DEVIATIONS
from tests.compat.model import Case, Step, step_endpoint

QUERY_PADS = {"13kb": 13_000, "100kb": 100_000}
HEADER_PAD = 60_000
RUN_COUNTS = (1, 100, 101, 1000, 3000)
_FAKE = "{:032x}"


def _ids(count: int) -> list[str]:
    """`${run}` first, then ids of runs that do not exist (MLflow skips those)."""
    return ["${run}", *(_FAKE.format(i + 1) for i in range(count - 1))]


def _bulk(endpoint: str, field: str, count: int) -> Case:
    logged = post(
        "runs/log-metric", {"run_id": "${run}", "key": "m", "value": 1.0, "timestamp": T0}
    )
    step: Step = {
        "method": "GET",
        "path": AJAX + endpoint,
        "query": {field: _ids(count), "metric_key": "m"},
    }
    return case(f"long-lines/{endpoint}/{count}-runs", run_setup(), logged, step)


def _concrete(path: str) -> str:
    # Path parameters get values no server has (${uid}): the handler's 404 is compared.
    path = re.sub(r"\{artifact_path:[^}]*\}", "${uid}/no/such/file.txt", path)
    return re.sub(r"\{\w+(:[^}]*)?\}", "${uid}", path)


# Routes whose answer without parameters lists the whole server: scoped to this case, since
# the target's database outlives sessions.
SCOPES: dict[str, dict[str, str]] = {
    "/mlflow/registered-models/search": {"filter": "name = '${uid}'"},
    "/mlflow/model-versions/search": {"filter": "name = '${uid}'"},
    "/mlflow/experiments/search": {"filter": "name = '${uid}'"},
    "/mlflow-artifacts/artifacts": {"path": "${uid}"},
}


def _padded(endpoint: surface.Endpoint) -> list[Case]:
    url = _concrete(endpoint.route.urls()[0])
    ignored = tuple(FIELD_DEVIATIONS) if endpoint.route.path.endswith("server-info") else ()
    slug = endpoint.route.path.removeprefix("/").replace("/", "-")
    scope = SCOPES.get(endpoint.route.path, {})
    cases = [
        case(
            f"long-lines/{slug}/query-{label}",
            {
                "method": "GET",
                "path": url,
                "query": {**scope, "sluice_pad": "p" * size},
                "ignore": ignored,
            },
        )
        for label, size in QUERY_PADS.items()
    ]
    cases.append(
        case(
            f"long-lines/{slug}/header-60kb",
            {
                "method": "GET",
                "path": url,
                "query": scope,
                "headers": {"X-Sluice-Pad": "h" * HEADER_PAD},
                "ignore": ignored,
            },
        )
    )
    return cases


CASES: list[Case] = [
    *(_bulk("metrics/get-history-bulk", "run_id", n) for n in RUN_COUNTS),
    *(_bulk("metrics/get-history-bulk-interval", "run_ids", n) for n in RUN_COUNTS),
    *(c for e in surface.endpoints() if e.route.method == "GET" for c in _padded(e)),
]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
