"""Two older tracking calls the UI (and some model flavours) still make: the datasets of
experiments (the runs table's dataset filter) and ``runs/log-model`` (the legacy record of a
logged model in the run's ``mlflow.log-model.history`` tag)."""

from __future__ import annotations

import json
from typing import Any, Final

import orjson
from aiohttp import web

from api.deps import deps_key, request_doc
from api.runs import store as runs
from schemas.access import Level
from schemas.fields import get_list, get_string
from schemas.mlflow_errors import invalid_parameter, missing_parameter
from sluice.auth import require_experiment
from sluice.http import json_response

MAX_EXPERIMENT_IDS: Final = 20  # MLflow's bound per search-datasets request
MAX_SUMMARIES: Final = 1000  # MLflow's bound on the answer
HISTORY_TAG: Final = "mlflow.log-model.history"
MAX_TAG_VALUE: Final = 8000  # MLflow's tag value limit (validate_tag)
_REQUIRED_MODEL_FIELDS: Final = ("artifact_path", "flavors", "utc_time_created", "run_id")
# In MLflow's order (its Model's attributes): clients compare the tag's JSON text.
_KEPT_MODEL_FIELDS: Final = ("run_id", "artifact_path", "utc_time_created", "model_uuid")

# The dataset summaries of experiments: each (dataset, context) pair once.
_SUMMARIES = """
SELECT DISTINCT d.experiment_id, d.name, d.digest, i.context
FROM datasets d JOIN run_inputs i USING (dataset_uuid)
WHERE d.experiment_id = ANY($1::bigint[])
LIMIT $2
"""


def _experiment_ids(doc: dict[str, Any]) -> list[int]:
    ids = [str(e) for e in get_list(doc, "experiment_ids")]
    if not ids:
        raise invalid_parameter("SearchDatasets request must specify at least one experiment_id.")
    if len(ids) > MAX_EXPERIMENT_IDS:
        raise invalid_parameter(
            f"SearchDatasets request cannot specify more than {MAX_EXPERIMENT_IDS}"
            f" experiment_ids. Received {len(ids)} experiment_ids."
        )
    try:
        return [int(e) for e in ids]
    except ValueError:
        raise invalid_parameter(f"Invalid experiment IDs: {ids}") from None


async def search_datasets(request: web.Request) -> web.Response:
    ids = _experiment_ids(await request_doc(request, frozenset({"experiment_ids"})))
    for experiment_id in ids:  # READ on each, as MLflow's auth app checks
        await require_experiment(request, experiment_id, Level.READ)
    rows = await request.app[deps_key].pool.fetch(_SUMMARIES, ids, MAX_SUMMARIES)
    summaries = [
        {
            "experiment_id": str(r["experiment_id"]),
            "name": r["name"],
            "digest": r["digest"],
            **({"context": r["context"]} if r["context"] is not None else {}),
        }
        for r in rows
    ]
    return json_response({"dataset_summaries": summaries} if summaries else {})


def history_entry(model_json: str) -> dict[str, Any]:
    """The part of a logged model's MLmodel MLflow keeps in the history tag (pure)."""
    try:
        model = orjson.loads(model_json)
    except orjson.JSONDecodeError:
        model = None
    if not isinstance(model, dict):
        raise invalid_parameter(f"Malformed model info. \n {model_json} \n is not a valid JSON.")
    missing = [f for f in _REQUIRED_MODEL_FIELDS if f not in model]
    if missing:
        raise invalid_parameter(f"Model json is missing mandatory fields: {set(missing)}")
    entry = {k: model[k] for k in _KEPT_MODEL_FIELDS if k in model}
    flavors = model["flavors"] if isinstance(model["flavors"], dict) else {}
    entry["flavors"] = {
        name: {k: v for k, v in conf.items() if k != "config"} if isinstance(conf, dict) else conf
        for name, conf in flavors.items()
    }
    return entry


async def log_model(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    run_id = get_string(doc, "run_id", required=True)
    model_json = get_string(doc, "model_json")
    if not model_json:
        raise missing_parameter("model_json")
    entry = history_entry(model_json)
    async with request.app[deps_key].pool.acquire() as conn, conn.transaction():
        # The run row lock serialises concurrent appends to the one tag.
        await runs.lock_active(conn, run_id, for_update=True)
        old = await conn.fetchval(
            "SELECT value FROM tags WHERE run_uuid = $1 AND key = $2", run_id, HISTORY_TAG
        )
        # json.dumps' defaults, as MLflow writes the tag (", " and ": ", ASCII-escaped):
        # clients compare the string.
        value = json.dumps([*(orjson.loads(old) if old else []), entry])
        if len(value) > MAX_TAG_VALUE:
            raise invalid_parameter(
                f"'{HISTORY_TAG}' exceeds the maximum length of {MAX_TAG_VALUE} characters"
            )
        await conn.execute(
            "INSERT INTO tags (run_uuid, key, value) VALUES ($1, $2, $3)"
            " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
            run_id,
            HISTORY_TAG,
            value,
        )
    return json_response({})
