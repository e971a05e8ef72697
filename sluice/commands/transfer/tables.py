"""Pure: which MLflow table feeds which Sluice table, and how one row converts.

MLflow's schema grew over the 2.x and 3.x releases (run names, dataset inputs, aliases,
logged models, workspaces); every SELECT here is built from the columns the source really has,
with the value MLflow itself reports when a column is missing or NULL where Sluice's schema
says NOT NULL (an empty string, 0 for a missing creation time). Metric points are not here:
they stream series by series into chunks (``points.py``).

Sluice keys registered models by a generated id, MLflow by name: rows of the registry's child
tables carry the model *name* in column ``name_at``; the importer replaces it by the id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sluice.commands.transfer import trace_tables
from sluice.commands.transfer.table_spec import Has, Row, Table, count

_EMPTY: Final = "''"  # the SQL literal ''
_ACTIVE: Final = "'active'"


# MLflow stores a logged model's status as the proto enum number; Sluice stores its name.
LOGGED_MODEL_STATUS: Final = {
    0: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
STATUS_NUMBER: Final = {name: number for number, name in LOGGED_MODEL_STATUS.items()}


def _or(has: Has, table: str, column: str, fallback: str, alias: str = "") -> str:
    ref = f"{alias}.{column}" if alias else column
    return f"coalesce({ref}, {fallback})" if has(table, column) else fallback


def _default_workspace(has: Has, table: str, alias: str = "") -> str:
    """MLflow 3.x workspaces: Sluice has none, so only the default one is imported."""
    ref = f"{alias}.workspace" if alias else "workspace"
    return f" WHERE {ref} = 'default'" if has(table, "workspace") else ""


def _count_workspace(table: str) -> Callable[[Has], str]:
    return lambda has: f"SELECT count(*) FROM {table}{_default_workspace(has, table)}"


def experiments_select(has: Has, *, default_only: bool = False) -> str:
    """Experiments as Sluice rows; ``default_only``: experiment 0 alone."""
    where = _default_workspace(has, "experiments")
    if default_only:
        where = f"{where} AND experiment_id = 0" if where else " WHERE experiment_id = 0"
    return (
        "SELECT experiment_id, name,"
        f" {_or(has, 'experiments', 'artifact_location', _EMPTY)},"
        f" {_or(has, 'experiments', 'lifecycle_stage', _ACTIVE)},"
        f" {_or(has, 'experiments', 'creation_time', '0')},"
        f" {_or(has, 'experiments', 'last_update_time', '0')}"
        f" FROM experiments{where} ORDER BY experiment_id"
    )


def _run_name(has: Has) -> str:
    # Before MLflow 2.0 the run name lived only in the tag mlflow.runName.
    tag = "(SELECT t.value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'mlflow.runName')"
    if has("runs", "name"):
        return f"coalesce(r.name, {tag}, '')"
    return f"coalesce({tag}, '')"


def _runs(has: Has) -> str:
    deleted = "r.deleted_time" if has("runs", "deleted_time") else "NULL"
    return (
        f"SELECT r.run_uuid, r.experiment_id, {_run_name(has)}, coalesce(r.user_id, ''),"
        " coalesce(r.status, 'RUNNING'), r.start_time, r.end_time,"
        f" coalesce(r.lifecycle_stage, 'active'), {deleted}, coalesce(r.artifact_uri, '')"
        " FROM runs r ORDER BY r.run_uuid"
    )


def _kv(table: str, owner: str) -> Callable[[Has], str]:
    return lambda has: (
        f'SELECT {owner}, "key", coalesce(value, \'\') FROM {table} ORDER BY {owner}, "key"'
    )


_DATASET_INPUT: Final = " WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN'"
_MODEL_INPUT: Final = " WHERE i.source_type = 'RUN_INPUT' AND i.destination_type = 'MODEL_INPUT'"
_MODEL_OUTPUT: Final = " WHERE i.source_type = 'RUN_OUTPUT' AND i.destination_type = 'MODEL_OUTPUT'"


def _run_inputs(has: Has) -> str:
    context = (
        "(SELECT t.value FROM input_tags t WHERE t.input_uuid = i.input_uuid"
        " AND t.name = 'mlflow.data.context')"
    )
    return f"SELECT i.destination_id, i.source_id, {context} FROM inputs i{_DATASET_INPUT}"


def _input_tags(has: Has) -> str:
    return (
        "SELECT i.destination_id, i.source_id, t.name, t.value,"
        " row_number() OVER (PARTITION BY t.input_uuid ORDER BY t.name) - 1"
        f" FROM input_tags t JOIN inputs i ON i.input_uuid = t.input_uuid{_DATASET_INPUT}"
    )


def _model_outputs(has: Has) -> str:
    step = _or(has, "inputs", "step", "0", "i")
    return f"SELECT i.source_id, i.destination_id, {step} FROM inputs i{_MODEL_OUTPUT}"


def _logged_models(has: Has) -> str:
    return (
        "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms,"
        " last_updated_timestamp_ms, status, status_message, model_type, source_run_id,"
        " coalesce(lifecycle_stage, 'active') FROM logged_models ORDER BY model_id"
    )


def _logged_model_status(row: Row) -> Row:
    return (*row[:6], LOGGED_MODEL_STATUS.get(row[6], LOGGED_MODEL_STATUS[0]), *row[7:])


def _registered_models(has: Has) -> str:
    ws = _default_workspace(has, "registered_models", "m")
    same_ws = " AND v.workspace = m.workspace" if has("model_versions", "workspace") else ""
    return (
        "SELECT m.name, coalesce(m.creation_time, 0), coalesce(m.last_updated_time, 0),"
        " m.description,"
        f" coalesce((SELECT max(v.version) FROM model_versions v WHERE v.name = m.name{same_ws}),"
        f" 0) FROM registered_models m{ws} ORDER BY m.name"
    )


def _registered_model_tags(has: Has) -> str:
    ws = _default_workspace(has, "registered_model_tags")
    return f"SELECT name, \"key\", coalesce(value, '') FROM registered_model_tags{ws}"


def _model_versions(has: Has) -> str:
    ws = _default_workspace(has, "model_versions")
    storage = "storage_location" if has("model_versions", "storage_location") else "NULL"
    return (
        "SELECT name, version, coalesce(creation_time, 0), coalesce(last_updated_time, 0),"
        " description, user_id, coalesce(current_stage, 'None'), source, run_id, run_link,"
        f" coalesce(status, 'READY'), status_message, {storage}"
        f" FROM model_versions{ws} ORDER BY name, version"
    )


def _model_version_tags(has: Has) -> str:
    ws = _default_workspace(has, "model_version_tags")
    return f"SELECT name, version, \"key\", coalesce(value, '') FROM model_version_tags{ws}"


def _aliases(has: Has) -> str:
    ws = _default_workspace(has, "registered_model_aliases")
    return f"SELECT name, alias, version FROM registered_model_aliases{ws}"


# In dependency order: a row's foreign keys are imported before it.
TABLES: Final[tuple[Table, ...]] = (
    Table(
        "experiments",
        "experiments",
        (
            "experiment_id",
            "name",
            "artifact_location",
            "lifecycle_stage",
            "creation_time",
            "last_update_time",
        ),
        ("experiment_id",),
        experiments_select,
        _count_workspace("experiments"),
    ),
    Table(
        "experiment_tags",
        "experiment_tags",
        ("experiment_id", "key", "value"),
        ("experiment_id", "key"),
        _kv("experiment_tags", "experiment_id"),
        count("experiment_tags"),
    ),
    Table(
        "runs",
        "runs",
        (
            "run_uuid",
            "experiment_id",
            "name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
            "deleted_time",
            "artifact_uri",
        ),
        ("run_uuid",),
        _runs,
        count("runs"),
    ),
    Table(
        "params",
        "params",
        ("run_uuid", "key", "value"),
        ("run_uuid", "key"),
        _kv("params", "run_uuid"),
        count("params"),
    ),
    Table(
        "tags",
        "tags",
        ("run_uuid", "key", "value"),
        ("run_uuid", "key"),
        _kv("tags", "run_uuid"),
        count("tags"),
    ),
    Table(
        "datasets",
        "datasets",
        (
            "dataset_uuid",
            "experiment_id",
            "name",
            "digest",
            "source_type",
            "source",
            "schema",
            "profile",
        ),
        ("dataset_uuid",),
        lambda has: (
            "SELECT dataset_uuid, experiment_id, name, digest, dataset_source_type,"
            " dataset_source, dataset_schema, dataset_profile FROM datasets"
            " ORDER BY experiment_id, dataset_uuid"
        ),
        count("datasets"),
        after="datasets",
    ),
    Table(
        "run_inputs",
        "inputs",
        ("run_uuid", "dataset_uuid", "context"),
        ("run_uuid", "dataset_uuid"),
        _run_inputs,
        count("inputs i", _DATASET_INPUT),
        after="inputs",
    ),
    Table(
        "input_tags",
        "input_tags",
        ("run_uuid", "dataset_uuid", "key", "value", "position"),
        ("run_uuid", "dataset_uuid", "key"),
        _input_tags,
        count("input_tags t JOIN inputs i ON i.input_uuid = t.input_uuid", _DATASET_INPUT),
        after="input_tags",
    ),
    Table(
        "run_model_inputs",
        "inputs",
        ("run_uuid", "model_id"),
        ("run_uuid", "model_id"),
        lambda has: f"SELECT i.source_id, i.destination_id FROM inputs i{_MODEL_INPUT}",
        count("inputs i", _MODEL_INPUT),
        after="inputs",
    ),
    Table(
        "run_model_outputs",
        "inputs",
        ("run_uuid", "model_id", "step"),
        ("run_uuid", "model_id"),
        _model_outputs,
        count("inputs i", _MODEL_OUTPUT),
        after="inputs",
    ),
    Table(
        "logged_models",
        "logged_models",
        (
            "model_id",
            "experiment_id",
            "name",
            "artifact_location",
            "creation_timestamp",
            "last_updated_timestamp",
            "status",
            "status_message",
            "model_type",
            "source_run_id",
            "lifecycle_stage",
        ),
        ("model_id",),
        _logged_models,
        count("logged_models"),
        convert=_logged_model_status,
        after="logged_models",
    ),
    Table(
        "logged_model_tags",
        "logged_model_tags",
        ("model_id", "key", "value"),
        ("model_id", "key"),
        lambda has: "SELECT model_id, tag_key, tag_value FROM logged_model_tags",
        count("logged_model_tags"),
        after="logged_model_tags",
    ),
    Table(
        "logged_model_params",
        "logged_model_params",
        ("model_id", "key", "value"),
        ("model_id", "key"),
        lambda has: "SELECT model_id, param_key, param_value FROM logged_model_params",
        count("logged_model_params"),
        after="logged_model_params",
    ),
    Table(
        "logged_model_metrics",
        "logged_model_metrics",
        (
            "model_id",
            "key",
            "timestamp",
            "step",
            "run_uuid",
            "value",
            "dataset_name",
            "dataset_digest",
        ),
        ("model_id", "key", "timestamp", "step", "run_uuid"),
        # MLflow keeps a NaN as NULL here; Sluice keeps what MLflow shows for it (0.0).
        lambda has: (
            "SELECT model_id, metric_name, metric_timestamp_ms, metric_step, run_id,"
            " coalesce(metric_value, 0.0), dataset_name, dataset_digest FROM logged_model_metrics"
        ),
        count("logged_model_metrics"),
        after="logged_model_metrics",
    ),
    Table(
        "registered_models",
        "registered_models",
        ("name", "creation_timestamp", "last_updated_timestamp", "description", "max_version"),
        ("name",),
        _registered_models,
        _count_workspace("registered_models"),
        after="registered_models",
    ),
    Table(
        "registered_model_tags",
        "registered_model_tags",
        ("model_id", "key", "value"),
        ("model_id", "key"),
        _registered_model_tags,
        _count_workspace("registered_model_tags"),
        name_at=0,
        after="registered_model_tags",
    ),
    Table(
        "model_versions",
        "model_versions",
        (
            "model_id",
            "version",
            "creation_timestamp",
            "last_updated_timestamp",
            "description",
            "user_id",
            "current_stage",
            "source",
            "run_id",
            "run_link",
            "status",
            "status_message",
            "storage_location",
        ),
        ("model_id", "version"),
        _model_versions,
        _count_workspace("model_versions"),
        name_at=0,
        after="model_versions",
    ),
    Table(
        "model_version_tags",
        "model_version_tags",
        ("model_id", "version", "key", "value"),
        ("model_id", "version", "key"),
        _model_version_tags,
        _count_workspace("model_version_tags"),
        name_at=0,
        after="model_version_tags",
    ),
    Table(
        "registered_model_aliases",
        "registered_model_aliases",
        ("model_id", "alias", "version"),
        ("model_id", "alias"),
        _aliases,
        _count_workspace("registered_model_aliases"),
        name_at=0,
        after="registered_model_aliases",
    ),
    *trace_tables.TRACE_TABLES,
)


def present(has: Has) -> list[Table]:
    """The tables this source can fill (older MLflow versions lack some)."""
    return [t for t in TABLES if not t.after or has(t.after, "")]
