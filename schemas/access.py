"""Who may call what: the access rule of every route handler (MLflow's auth app semantics).

Permissions are per experiment and per registered model: READ < EDIT < MANAGE, plus
NO_PERMISSIONS; a user without a grant has the configured default (MLflow's default: READ);
admins may do everything; the creator of an experiment or registered model gets MANAGE.
Every handler named in schemas/routes.py must appear here (tests/unit/test_access.py), so a new
route cannot be added unprotected.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Level(enum.IntEnum):
    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3


class Resource(enum.Enum):
    NONE = "none"  # authentication only
    EXPERIMENT = "experiment"  # field experiment_id (or experiment_name)
    RUN = "run"  # field run_id / run_uuid -> its experiment
    ARTIFACT = "artifact"  # first segment of the artifact path is the experiment id
    LOGGED_MODEL = "logged_model"  # path model_id -> its experiment
    MODEL = "model"  # registered model field name
    # A trace's experiment: header x-mlflow-experiment-id (OTLP), StartTraceV3's location, a
    # trace id (path, query or body field trace_id / request_id), or field experiment_id.
    TRACE = "trace"


@dataclass(frozen=True, slots=True)
class Rule:
    resource: Resource
    level: Level = Level.READ
    public: bool = False  # no credentials needed (server-info; a URL that is its own credential)
    creates: Resource | None = None  # the caller becomes MANAGE of what the call creates


def _r(resource: Resource, level: Level = Level.READ) -> Rule:
    return Rule(resource, level)


_E, _RUN, _A, _LM, _M, _T = (
    Resource.EXPERIMENT,
    Resource.RUN,
    Resource.ARTIFACT,
    Resource.LOGGED_MODEL,
    Resource.MODEL,
    Resource.TRACE,
)
READ, EDIT, MANAGE = Level.READ, Level.EDIT, Level.MANAGE

RULES: Final[dict[str, Rule]] = {
    # public probes
    "server_info": Rule(Resource.NONE, public=True),
    # experiments
    "create_experiment": Rule(Resource.NONE, creates=Resource.EXPERIMENT),
    "search_experiments": _r(Resource.NONE),
    "get_experiment": _r(_E),
    "get_experiment_by_name": _r(_E),
    "update_experiment": _r(_E, EDIT),
    "set_experiment_tag": _r(_E, EDIT),
    "delete_experiment_tag": _r(_E, EDIT),
    "delete_experiment": _r(_E, MANAGE),
    "restore_experiment": _r(_E, MANAGE),
    # runs
    "create_run": _r(_E, EDIT),
    "search_runs": _r(Resource.NONE),
    "get_run": _r(_RUN),
    "get_metric_history": _r(_RUN),
    "get_metric_history_bulk_interval": _r(Resource.NONE),
    "get_metric_history_bulk": _r(Resource.NONE),
    "update_run": _r(_RUN, EDIT),
    "log_batch": _r(_RUN, EDIT),
    "log_metric": _r(_RUN, EDIT),
    "log_param": _r(_RUN, EDIT),
    "set_tag": _r(_RUN, EDIT),
    "delete_tag": _r(_RUN, EDIT),
    "log_inputs": _r(_RUN, EDIT),
    "log_outputs": _r(_RUN, EDIT),
    "delete_run": _r(_RUN, MANAGE),
    "restore_run": _r(_RUN, MANAGE),
    # artifacts proxy
    "proxy_list_artifacts": _r(Resource.NONE),
    "proxy_download_artifact": _r(_A),
    "proxy_upload_artifact": _r(_A, EDIT),
    "proxy_delete_artifact": _r(_A, MANAGE),
    # Multipart needs what a plain upload needs, on the experiment its path names (MLflow had
    # no check here: CVE-2026-2651, cross-user overwrite).
    "create_multipart_upload_artifact": _r(_A, EDIT),
    "complete_multipart_upload_artifact": _r(_A, EDIT),
    "abort_multipart_upload_artifact": _r(_A, EDIT),
    # A local part URL works like an S3 presigned URL: the MLflow client PUTs it without
    # credentials, and its unguessable upload id (256 random bits, handed out by create to a
    # caller with EDIT, expiring) is the credential.
    "upload_multipart_part": Rule(Resource.NONE, public=True),
    # logged models
    "create_logged_model": _r(_E, EDIT),
    "search_logged_models": _r(Resource.NONE),
    "get_logged_model": _r(_LM),
    "finalize_logged_model": _r(_LM, EDIT),
    "set_logged_model_tags": _r(_LM, EDIT),
    "delete_logged_model_tag": _r(_LM, EDIT),
    "log_logged_model_params": _r(_LM, EDIT),
    "delete_logged_model": _r(_LM, MANAGE),
    # traces (issue 13): writes need EDIT on the trace's experiment, as MLflow's auth app
    "export_otlp_traces": _r(_T, EDIT),
    "start_trace_v3": _r(_T, EDIT),
    "get_trace_info_v3": _r(_T),
    "get_trace_info_v2": _r(_T),
    "get_trace": _r(_T),
    "get_trace_artifact": _r(_T),
    "batch_get_traces": _r(Resource.NONE),
    "batch_get_trace_infos": _r(Resource.NONE),
    "search_traces_v3": _r(Resource.NONE),
    "search_traces_v2": _r(Resource.NONE),
    "delete_traces": _r(_T, MANAGE),
    "set_trace_tag": _r(_T, EDIT),
    "delete_trace_tag": _r(_T, EDIT),
    "link_traces_to_run": _r(_RUN, EDIT),
    "create_assessment": _r(_T, EDIT),
    "get_assessment": _r(_T),
    "update_assessment": _r(_T, EDIT),
    "delete_assessment": _r(_T, EDIT),
    # registry
    "create_registered_model": Rule(Resource.NONE, creates=Resource.MODEL),
    "search_registered_models": _r(Resource.NONE),
    "search_model_versions": _r(Resource.NONE),
    "get_registered_model": _r(_M),
    "get_latest_versions": _r(_M),
    "get_model_version": _r(_M),
    "get_model_version_download_uri": _r(_M),
    "get_model_version_by_alias": _r(_M),
    "rename_registered_model": _r(_M, EDIT),
    "update_registered_model": _r(_M, EDIT),
    "set_registered_model_tag": _r(_M, EDIT),
    "delete_registered_model_tag": _r(_M, EDIT),
    "set_registered_model_alias": _r(_M, EDIT),
    "delete_registered_model_alias": _r(_M, EDIT),
    "create_model_version": _r(_M, EDIT),
    "update_model_version": _r(_M, EDIT),
    "transition_model_version_stage": _r(_M, EDIT),
    "set_model_version_tag": _r(_M, EDIT),
    "delete_model_version_tag": _r(_M, EDIT),
    "delete_registered_model": _r(_M, MANAGE),
    "delete_model_version": _r(_M, MANAGE),
}


def allowed(rule: Rule, is_admin: bool, granted: Level | None, default: Level) -> bool:
    """The decision, pure: admins pass; otherwise the grant (or the default) must reach the
    rule's level. Rules on no resource only need an authenticated caller."""
    if is_admin or rule.resource is Resource.NONE:
        return True
    return (granted if granted is not None else default) >= rule.level
