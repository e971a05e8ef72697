"""Who may call what: the access rule of every route handler (MLflow's auth app semantics).

Permissions are per experiment and per registered model: READ < EDIT < MANAGE, plus
NO_PERMISSIONS; a user without a grant has the configured default (MLflow's default: READ);
admins may do everything; the creator of an experiment or registered model gets MANAGE.
Rules are keyed by the route table's handler reference (``"<module>:<function>"``,
schemas/routes.py); every handler named there must appear here (tests/unit/test_access.py), so
a new route cannot be added unprotected.
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
    ADMIN = "admin"  # admins only (MLflow's auth app: the webhook routes)


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
    "api.server_info:server_info": Rule(Resource.NONE, public=True),
    # MLflow 3 GenAI families Sluice answers NOT_IMPLEMENTED (authenticated callers only)
    "api.not_supported:gateway": _r(Resource.NONE),
    "api.not_supported:issues": _r(Resource.NONE),
    "api.not_supported:scorers": _r(Resource.NONE),
    "api.not_supported:evaluation_datasets": _r(Resource.NONE),
    "api.not_supported:prompt_optimization": _r(Resource.NONE),
    # experiments
    "api.experiments.handlers:create_experiment": Rule(Resource.NONE, creates=Resource.EXPERIMENT),
    "api.experiments.handlers:search_experiments": _r(Resource.NONE),
    "api.experiments.handlers:get_experiment": _r(_E),
    "api.experiments.handlers:get_experiment_by_name": _r(_E),
    "api.experiments.handlers:update_experiment": _r(_E, EDIT),
    "api.experiments.handlers:set_experiment_tag": _r(_E, EDIT),
    "api.experiments.handlers:delete_experiment_tag": _r(_E, EDIT),
    "api.experiments.handlers:delete_experiment": _r(_E, MANAGE),
    "api.experiments.handlers:restore_experiment": _r(_E, MANAGE),
    # runs
    "api.runs.handlers:create_run": _r(_E, EDIT),
    "api.runs.handlers:search_runs": _r(Resource.NONE),
    "api.runs.handlers:get_run": _r(_RUN),
    "api.metrics.handlers:get_metric_history": _r(_RUN),
    "api.metrics.handlers:get_metric_history_bulk_interval": _r(Resource.NONE),
    "api.metrics.handlers:get_metric_history_bulk": _r(Resource.NONE),
    "api.runs.handlers:update_run": _r(_RUN, EDIT),
    "ingest.handlers:log_batch": _r(_RUN, EDIT),
    "ingest.handlers:log_metric": _r(_RUN, EDIT),
    "ingest.handlers:log_param": _r(_RUN, EDIT),
    "ingest.handlers:set_tag": _r(_RUN, EDIT),
    "ingest.handlers:delete_tag": _r(_RUN, EDIT),
    "api.runs.handlers:log_inputs": _r(_RUN, EDIT),
    "api.runs.handlers:log_outputs": _r(_RUN, EDIT),
    "api.runs.handlers:delete_run": _r(_RUN, MANAGE),
    "api.runs.handlers:restore_run": _r(_RUN, MANAGE),
    # artifacts proxy
    "api.artifacts.handlers:proxy_list_artifacts": _r(Resource.NONE),
    "api.artifacts.handlers:proxy_download_artifact": _r(_A),
    "api.artifacts.handlers:proxy_upload_artifact": _r(_A, EDIT),
    "api.artifacts.handlers:proxy_delete_artifact": _r(_A, MANAGE),
    # Multipart needs what a plain upload needs, on the experiment its path names (MLflow had
    # no check here: CVE-2026-2651, cross-user overwrite).
    "api.artifacts.handlers:create_multipart_upload_artifact": _r(_A, EDIT),
    "api.artifacts.handlers:complete_multipart_upload_artifact": _r(_A, EDIT),
    "api.artifacts.handlers:abort_multipart_upload_artifact": _r(_A, EDIT),
    # A local part URL works like an S3 presigned URL: the MLflow client PUTs it without
    # credentials, and its unguessable upload id (256 random bits, handed out by create to a
    # caller with EDIT, expiring) is the credential.
    "api.artifacts.handlers:upload_multipart_part": Rule(Resource.NONE, public=True),
    # logged models
    "api.logged_models.handlers:create_logged_model": _r(_E, EDIT),
    "api.logged_models.handlers:search_logged_models": _r(Resource.NONE),
    "api.logged_models.handlers:get_logged_model": _r(_LM),
    "api.logged_models.handlers:finalize_logged_model": _r(_LM, EDIT),
    "api.logged_models.handlers:set_logged_model_tags": _r(_LM, EDIT),
    "api.logged_models.handlers:delete_logged_model_tag": _r(_LM, EDIT),
    "api.logged_models.handlers:log_logged_model_params": _r(_LM, EDIT),
    "api.logged_models.handlers:delete_logged_model": _r(_LM, MANAGE),
    # registry
    "api.registry.models:create_registered_model": Rule(Resource.NONE, creates=Resource.MODEL),
    "api.registry.models:search_registered_models": _r(Resource.NONE),
    "api.registry.versions:search_model_versions": _r(Resource.NONE),
    "api.registry.models:get_registered_model": _r(_M),
    "api.registry.models:get_latest_versions": _r(_M),
    "api.registry.versions:get_model_version": _r(_M),
    "api.registry.versions:get_model_version_download_uri": _r(_M),
    "api.registry.versions:get_model_version_by_alias": _r(_M),
    "api.registry.models:rename_registered_model": _r(_M, EDIT),
    "api.registry.models:update_registered_model": _r(_M, EDIT),
    "api.registry.models:set_registered_model_tag": _r(_M, EDIT),
    "api.registry.models:delete_registered_model_tag": _r(_M, EDIT),
    "api.registry.versions:set_registered_model_alias": _r(_M, EDIT),
    "api.registry.versions:delete_registered_model_alias": _r(_M, EDIT),
    "api.registry.versions:create_model_version": _r(_M, EDIT),
    "api.registry.versions:update_model_version": _r(_M, EDIT),
    "api.registry.versions:transition_model_version_stage": _r(_M, EDIT),
    "api.registry.versions:set_model_version_tag": _r(_M, EDIT),
    "api.registry.versions:delete_model_version_tag": _r(_M, EDIT),
    "api.registry.models:delete_registered_model": _r(_M, MANAGE),
    "api.registry.versions:delete_model_version": _r(_M, MANAGE),
    # the web UI (issue 12). The page and its scripts: the page needs credentials (so a
    # browser asks for them, as with MLflow's auth app); the static bundle is public, as there.
    "api.ui.bundle:ui_index": _r(Resource.NONE),
    "api.ui.bundle:ui_static_file": Rule(Resource.NONE, public=True),
    # GraphQL checks READ on each run/experiment it resolves (api/ui/graphql/).
    "api.ui.graphql.handler:graphql": _r(Resource.NONE),
    "api.ui.artifacts:get_artifact": _r(_RUN),
    "api.ui.artifacts:list_artifacts": _r(_RUN),
    "api.ui.artifacts:get_model_version_artifact": _r(_M),
    "api.ui.artifacts:list_logged_model_artifacts": _r(_LM),
    "api.ui.artifacts:get_logged_model_artifact": _r(_LM),
    "api.ui.runs_extra:search_datasets": _r(Resource.NONE),
    "api.ui.runs_extra:log_model": _r(_RUN, EDIT),
    "api.ui.probes:current_user": _r(Resource.NONE),
    "api.ui.probes:ui_telemetry": _r(Resource.NONE),
    "api.ui.probes:ui_telemetry_events": _r(Resource.NONE),
    "api.ui.probes:gateway_proxy": _r(Resource.NONE),
    "api.ui.probes:assistant_config": _r(Resource.NONE),
    "api.ui.probes:assistant_providers": _r(Resource.NONE),
    # traces (issue 13): writes need EDIT on the trace's experiment, as MLflow's auth app
    "ingest.traces:export_otlp_traces": _r(_T, EDIT),
    "ingest.traces:start_trace_v3": _r(_T, EDIT),
    "ingest.traces:start_trace_v2": _r(_T, EDIT),  # field experiment_id
    "ingest.traces:end_trace_v2": _r(_T, EDIT),  # path request_id -> its experiment
    "api.traces.handlers:get_trace_info_v3": _r(_T),
    "api.traces.handlers:get_trace_info_v2": _r(_T),
    "api.traces.handlers:get_trace": _r(_T),
    "api.traces.handlers:get_trace_artifact": _r(_T),
    "api.traces.handlers:batch_get_traces": _r(Resource.NONE),
    "api.traces.handlers:batch_get_trace_infos": _r(Resource.NONE),
    "api.traces.handlers:search_traces_v3": _r(Resource.NONE),
    "api.traces.handlers:search_traces_v2": _r(Resource.NONE),
    # READ on each experiment, checked in the handler (a list of experiments, as MLflow's auth)
    "api.traces.metrics:query_trace_metrics": _r(Resource.NONE),
    "api.traces.correlation:calculate_filter_correlation": _r(Resource.NONE),
    "api.traces.datasets:search_evaluation_datasets": _r(Resource.NONE),
    "api.traces.handlers:delete_traces": _r(_T, MANAGE),
    "api.traces.handlers:set_trace_tag": _r(_T, EDIT),
    "api.traces.handlers:delete_trace_tag": _r(_T, EDIT),
    "api.traces.handlers:link_traces_to_run": _r(_RUN, EDIT),
    "api.traces.handlers:link_prompts_to_trace": _r(_T, EDIT),
    "api.traces.assessments:create_assessment": _r(_T, EDIT),
    "api.traces.assessments:get_assessment": _r(_T),
    "api.traces.assessments:update_assessment": _r(_T, EDIT),
    "api.traces.assessments:delete_assessment": _r(_T, EDIT),
    # webhooks (issue 14): admins only, as MLflow's auth app (sender_is_admin): a webhook
    # receives every registry event, whatever the caller's grants.
    "api.webhooks.handlers:create_webhook": _r(Resource.ADMIN, MANAGE),
    "api.webhooks.handlers:list_webhooks": _r(Resource.ADMIN, MANAGE),
    "api.webhooks.handlers:get_webhook": _r(Resource.ADMIN, MANAGE),
    "api.webhooks.handlers:update_webhook": _r(Resource.ADMIN, MANAGE),
    "api.webhooks.handlers:delete_webhook": _r(Resource.ADMIN, MANAGE),
    "api.webhooks.handlers:test_webhook": _r(Resource.ADMIN, MANAGE),
}


# Routes that name many resources (Resource.NONE above) and check READ on each of them in the
# handler, as MLflow's auth app does for them: a caller may be refused (403) after all.
CHECKED_IN_HANDLER: Final = frozenset(
    {
        "api.metrics.handlers:get_metric_history_bulk",
        "api.metrics.handlers:get_metric_history_bulk_interval",
        "api.ui.runs_extra:search_datasets",
        "api.ui.graphql.handler:graphql",
        "api.traces.handlers:batch_get_traces",
        "api.traces.handlers:batch_get_trace_infos",
        "api.traces.handlers:search_traces_v3",
        "api.traces.handlers:search_traces_v2",
        "api.traces.metrics:query_trace_metrics",
        "api.traces.correlation:calculate_filter_correlation",
    }
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """A caller whose listings are cut to what they may read (access control on, not an
    admin): searches keep the rows where their grant, or else ``default``, reaches READ."""

    username: str
    default: Level


def allowed(rule: Rule, is_admin: bool, granted: Level | None, default: Level) -> bool:
    """The decision, pure: admins pass; otherwise the grant (or the default) must reach the
    rule's level. Rules on no resource only need an authenticated caller."""
    if is_admin or rule.resource is Resource.NONE:
        return True
    if rule.resource is Resource.ADMIN:
        return False
    return (granted if granted is not None else default) >= rule.level
