"""Which handler serves which MLflow REST route, and so which service.

A route (``schemas/route_record.py``) names its handler by module and function; tracking and
trace routes are listed here, the GenAI families Sluice answers 501 for in
``schemas/not_supported_routes.py``. The dev proxy (``sluice front``) routes by this table
(``service_for``); production load balancers use the same split (``sluice balancer``).
"""

from __future__ import annotations

import re
from typing import Final

from schemas.not_supported_routes import NOT_SUPPORTED_ROUTES
from schemas.route_record import Route, Service, url_regex

_TRACKING_ROUTES: Final[tuple[Route, ...]] = (
    # High-volume writes: ingest.
    Route("POST", "/mlflow/runs/log-batch", "ingest.handlers:log_batch"),
    Route("POST", "/mlflow/runs/log-metric", "ingest.handlers:log_metric"),
    Route("POST", "/mlflow/runs/log-parameter", "ingest.handlers:log_param"),
    Route("POST", "/mlflow/runs/set-tag", "ingest.handlers:set_tag"),
    Route("POST", "/mlflow/runs/delete-tag", "ingest.handlers:delete_tag"),
    # Traces (issue 13): span exports and the client's final trace info go through Kafka.
    Route("POST", "/v1/traces", "ingest.traces:export_otlp_traces", bare=True),
    Route("POST", "/mlflow/traces", "ingest.traces:start_trace_v3", version="3.0"),
    # Lifecycle and reads: api.
    Route("POST", "/mlflow/experiments/create", "api.experiments.handlers:create_experiment"),
    Route("GET", "/mlflow/experiments/get", "api.experiments.handlers:get_experiment"),
    Route(
        "GET", "/mlflow/experiments/get-by-name", "api.experiments.handlers:get_experiment_by_name"
    ),
    Route("POST", "/mlflow/experiments/delete", "api.experiments.handlers:delete_experiment"),
    Route("POST", "/mlflow/experiments/restore", "api.experiments.handlers:restore_experiment"),
    Route("POST", "/mlflow/experiments/update", "api.experiments.handlers:update_experiment"),
    Route(
        "POST",
        "/mlflow/experiments/set-experiment-tag",
        "api.experiments.handlers:set_experiment_tag",
    ),
    Route(
        "POST",
        "/mlflow/experiments/delete-experiment-tag",
        "api.experiments.handlers:delete_experiment_tag",
    ),
    Route("POST", "/mlflow/experiments/search", "api.experiments.handlers:search_experiments"),
    Route("GET", "/mlflow/experiments/search", "api.experiments.handlers:search_experiments"),
    Route("POST", "/mlflow/runs/search", "api.runs.handlers:search_runs"),
    Route("POST", "/mlflow/runs/create", "api.runs.handlers:create_run"),
    Route("GET", "/mlflow/runs/get", "api.runs.handlers:get_run"),
    Route("POST", "/mlflow/runs/update", "api.runs.handlers:update_run"),
    Route("POST", "/mlflow/runs/delete", "api.runs.handlers:delete_run"),
    Route("POST", "/mlflow/runs/restore", "api.runs.handlers:restore_run"),
    Route("GET", "/mlflow/metrics/get-history", "api.metrics.handlers:get_metric_history"),
    Route(
        "GET",
        "/mlflow/metrics/get-history-bulk-interval",
        "api.metrics.handlers:get_metric_history_bulk_interval",
    ),
    Route(
        "GET",
        "/mlflow/metrics/get-history-bulk",
        "api.metrics.handlers:get_metric_history_bulk",
        ajax_only=True,
    ),
    # Rare, deduplicated on the call: synchronous PostgreSQL from the api (docs/design.md).
    Route("POST", "/mlflow/runs/log-inputs", "api.runs.handlers:log_inputs"),
    Route("POST", "/mlflow/runs/outputs", "api.runs.handlers:log_outputs"),
    Route("GET", "/mlflow/server-info", "api.server_info:server_info", version="3.0"),
    # ---- Issue 4: model registry, mlflow-artifacts proxy, MLflow 3 logged models (api). ----
    Route(
        "POST", "/mlflow/registered-models/create", "api.registry.models:create_registered_model"
    ),
    Route("GET", "/mlflow/registered-models/get", "api.registry.models:get_registered_model"),
    Route(
        "POST", "/mlflow/registered-models/rename", "api.registry.models:rename_registered_model"
    ),
    Route(
        "PATCH", "/mlflow/registered-models/update", "api.registry.models:update_registered_model"
    ),
    Route(
        "DELETE", "/mlflow/registered-models/delete", "api.registry.models:delete_registered_model"
    ),
    Route(
        "GET", "/mlflow/registered-models/search", "api.registry.models:search_registered_models"
    ),
    Route(
        "POST",
        "/mlflow/registered-models/get-latest-versions",
        "api.registry.models:get_latest_versions",
    ),
    Route(
        "GET",
        "/mlflow/registered-models/get-latest-versions",
        "api.registry.models:get_latest_versions",
    ),
    Route(
        "POST", "/mlflow/registered-models/set-tag", "api.registry.models:set_registered_model_tag"
    ),
    Route(
        "DELETE",
        "/mlflow/registered-models/delete-tag",
        "api.registry.models:delete_registered_model_tag",
    ),
    Route(
        "POST",
        "/mlflow/registered-models/alias",
        "api.registry.versions:set_registered_model_alias",
    ),
    Route(
        "DELETE",
        "/mlflow/registered-models/alias",
        "api.registry.versions:delete_registered_model_alias",
    ),
    Route(
        "GET", "/mlflow/registered-models/alias", "api.registry.versions:get_model_version_by_alias"
    ),
    Route("POST", "/mlflow/model-versions/create", "api.registry.versions:create_model_version"),
    Route("GET", "/mlflow/model-versions/get", "api.registry.versions:get_model_version"),
    Route("PATCH", "/mlflow/model-versions/update", "api.registry.versions:update_model_version"),
    Route("DELETE", "/mlflow/model-versions/delete", "api.registry.versions:delete_model_version"),
    Route(
        "POST",
        "/mlflow/model-versions/transition-stage",
        "api.registry.versions:transition_model_version_stage",
    ),
    Route("GET", "/mlflow/model-versions/search", "api.registry.versions:search_model_versions"),
    Route(
        "GET",
        "/mlflow/model-versions/get-download-uri",
        "api.registry.versions:get_model_version_download_uri",
    ),
    Route("POST", "/mlflow/model-versions/set-tag", "api.registry.versions:set_model_version_tag"),
    Route(
        "DELETE",
        "/mlflow/model-versions/delete-tag",
        "api.registry.versions:delete_model_version_tag",
    ),
    Route("GET", "/mlflow-artifacts/artifacts", "api.artifacts.handlers:proxy_list_artifacts"),
    Route(
        "PUT",
        "/mlflow-artifacts/artifacts/{artifact_path:.+}",
        "api.artifacts.handlers:proxy_upload_artifact",
    ),
    Route(
        "GET",
        "/mlflow-artifacts/artifacts/{artifact_path:.+}",
        "api.artifacts.handlers:proxy_download_artifact",
    ),
    Route(
        "DELETE",
        "/mlflow-artifacts/artifacts/{artifact_path:.+}",
        "api.artifacts.handlers:proxy_delete_artifact",
    ),
    # Multipart: the tail is the target's directory ("" = the root), named artifact_path so
    # access control finds the experiment as for plain uploads.
    Route(
        "POST",
        "/mlflow-artifacts/mpu/create/{artifact_path:.*}",
        "api.artifacts.handlers:create_multipart_upload_artifact",
    ),
    Route(
        "POST",
        "/mlflow-artifacts/mpu/complete/{artifact_path:.*}",
        "api.artifacts.handlers:complete_multipart_upload_artifact",
    ),
    Route(
        "POST",
        "/mlflow-artifacts/mpu/abort/{artifact_path:.*}",
        "api.artifacts.handlers:abort_multipart_upload_artifact",
    ),
    # Not MLflow's: where local-root part URLs point (api/artifacts/handlers.py).
    Route(
        "PUT",
        "/mlflow-artifacts/mpu/part/{upload_id}/{part_number:[0-9]{1,5}}",
        "api.artifacts.handlers:upload_multipart_part",
    ),
    Route("POST", "/mlflow/logged-models", "api.logged_models.handlers:create_logged_model"),
    Route(
        "POST", "/mlflow/logged-models/search", "api.logged_models.handlers:search_logged_models"
    ),
    Route("GET", "/mlflow/logged-models/{model_id}", "api.logged_models.handlers:get_logged_model"),
    Route(
        "PATCH",
        "/mlflow/logged-models/{model_id}",
        "api.logged_models.handlers:finalize_logged_model",
    ),
    Route(
        "DELETE",
        "/mlflow/logged-models/{model_id}",
        "api.logged_models.handlers:delete_logged_model",
    ),
    Route(
        "PATCH",
        "/mlflow/logged-models/{model_id}/tags",
        "api.logged_models.handlers:set_logged_model_tags",
    ),
    Route(
        "DELETE",
        "/mlflow/logged-models/{model_id}/tags/{tag_key}",
        "api.logged_models.handlers:delete_logged_model_tag",
    ),
    Route(
        "POST",
        "/mlflow/logged-models/{model_id}/params",
        "api.logged_models.handlers:log_logged_model_params",
    ),
    # ---- Issue 12: what the MLflow web UI calls (api/ui/). ----
    Route("GET", "/", "api.ui.bundle:ui_index", bare=True),
    Route("GET", "/static-files/{path:.+}", "api.ui.bundle:ui_static_file", bare=True),
    Route("POST", "/graphql", "api.ui.graphql.handler:graphql", bare=True),
    Route("GET", "/graphql", "api.ui.graphql.handler:graphql", bare=True),
    Route("GET", "/get-artifact", "api.ui.artifacts:get_artifact", bare=True),
    Route(
        "GET",
        "/model-versions/get-artifact",
        "api.ui.artifacts:get_model_version_artifact",
        bare=True,
    ),
    Route("GET", "/mlflow/artifacts/list", "api.ui.artifacts:list_artifacts"),
    Route(
        "GET",
        "/mlflow/logged-models/{model_id}/artifacts/directories",
        "api.ui.artifacts:list_logged_model_artifacts",
    ),
    Route(
        "GET",
        "/mlflow/logged-models/{model_id}/artifacts/files",
        "api.ui.artifacts:get_logged_model_artifact",
        ajax_only=True,
    ),
    Route(
        "POST",
        "/mlflow/experiments/search-datasets",
        "api.ui.runs_extra:search_datasets",
        ajax_only=True,
    ),
    Route("POST", "/mlflow/runs/log-model", "api.ui.runs_extra:log_model"),
    Route("GET", "/mlflow/users/current", "api.ui.probes:current_user"),
    Route(
        "GET", "/mlflow/ui-telemetry", "api.ui.probes:ui_telemetry", version="3.0", ajax_only=True
    ),
    Route(
        "POST",
        "/mlflow/ui-telemetry",
        "api.ui.probes:ui_telemetry_events",
        version="3.0",
        ajax_only=True,
    ),
    # No deployments server behind Sluice: MLflow then answers as an empty gateway.
    Route("GET", "/mlflow/gateway-proxy", "api.ui.probes:gateway_proxy", ajax_only=True),
    Route("POST", "/mlflow/gateway-proxy", "api.ui.probes:gateway_proxy", ajax_only=True),
    Route(
        "GET",
        "/mlflow/assistant/config",
        "api.ui.probes:assistant_config",
        version="3.0",
        ajax_only=True,
    ),
    Route(
        "GET",
        "/mlflow/assistant/providers",
        "api.ui.probes:assistant_providers",
        version="3.0",
        ajax_only=True,
    ),
)

# Trace reads and the rare trace writes (tags, assessments, deletes): api/traces/. The fixed
# paths come before /traces/{trace_id}: aiohttp matches in the order routes were added.
_V3: Final = "3.0"
_T: Final = "api.traces.handlers:"
_A: Final = "api.traces.assessments:"
_D: Final = "api.traces.datasets:"
TRACE_ROUTES: Final[tuple[Route, ...]] = (
    Route("GET", "/mlflow/traces/get", _T + "get_trace", version=_V3),
    Route("GET", "/mlflow/traces/batchGet", _T + "batch_get_traces", version=_V3),
    Route("POST", "/mlflow/traces/batchGetInfos", _T + "batch_get_trace_infos", version=_V3),
    Route("POST", "/mlflow/traces/search", _T + "search_traces_v3", version=_V3),
    Route("POST", "/mlflow/traces/metrics", "api.traces.metrics:query_trace_metrics", version=_V3),
    Route(
        "POST",
        "/mlflow/traces/calculate-filter-correlation",
        "api.traces.correlation:calculate_filter_correlation",
        version=_V3,
    ),
    Route("POST", "/mlflow/datasets/search", _D + "search_evaluation_datasets", version=_V3),
    Route("GET", "/mlflow/datasets/search", _D + "search_evaluation_datasets", version=_V3),
    Route("POST", "/mlflow/traces/delete-traces", _T + "delete_traces"),
    Route("POST", "/mlflow/traces/delete-traces", _T + "delete_traces", version=_V3),
    Route("POST", "/mlflow/traces/link-to-run", _T + "link_traces_to_run"),
    Route("POST", "/mlflow/traces/link-prompts", _T + "link_prompts_to_trace"),
    Route("GET", "/mlflow/traces/{trace_id}", _T + "get_trace_info_v3", version=_V3),
    Route("GET", "/mlflow/traces/{request_id}/info", _T + "get_trace_info_v2"),
    Route("GET", "/mlflow/traces", _T + "search_traces_v2"),
    Route("PATCH", "/mlflow/traces/{request_id}/tags", _T + "set_trace_tag"),
    Route("PATCH", "/mlflow/traces/{trace_id}/tags", _T + "set_trace_tag", version=_V3),
    Route("DELETE", "/mlflow/traces/{request_id}/tags", _T + "delete_trace_tag"),
    Route("DELETE", "/mlflow/traces/{trace_id}/tags", _T + "delete_trace_tag", version=_V3),
    Route("POST", "/mlflow/traces/{trace_id}/assessments", _A + "create_assessment", version=_V3),
    Route(
        "GET",
        "/mlflow/traces/{trace_id}/assessments/{assessment_id}",
        _A + "get_assessment",
        version=_V3,
    ),
    Route(
        "PATCH",
        "/mlflow/traces/{trace_id}/assessments/{assessment_id}",
        _A + "update_assessment",
        version=_V3,
    ),
    Route(
        "DELETE",
        "/mlflow/traces/{trace_id}/assessments/{assessment_id}",
        _A + "delete_assessment",
        version=_V3,
    ),
    # Registered by hand in MLflow (the UI's trace view and older clients).
    Route("GET", "/mlflow/get-trace-artifact", _T + "get_trace_artifact", ajax_only=True),
    Route(
        "GET", "/mlflow/get-trace-artifact", _T + "get_trace_artifact", version=_V3, ajax_only=True
    ),
    # MLflow 2.x clients' trace start and end (deprecated in MLflow, still served): writes, so
    # ingest. The POST shares its URL with the api's GET search above: routed by method too.
    Route("POST", "/mlflow/traces", "ingest.traces:start_trace_v2"),
    Route("PATCH", "/mlflow/traces/{request_id}", "ingest.traces:end_trace_v2"),
)

# Model registry webhooks (MLflow 3.3+, issue 14): api/webhooks/. Admins only (schemas/access.py).
_W: Final = "api.webhooks.handlers:"
WEBHOOK_ROUTES: Final[tuple[Route, ...]] = (
    Route("POST", "/mlflow/webhooks", _W + "create_webhook"),
    Route("GET", "/mlflow/webhooks", _W + "list_webhooks"),
    Route("GET", "/mlflow/webhooks/{webhook_id}", _W + "get_webhook"),
    Route("PATCH", "/mlflow/webhooks/{webhook_id}", _W + "update_webhook"),
    Route("DELETE", "/mlflow/webhooks/{webhook_id}", _W + "delete_webhook"),
    Route("POST", "/mlflow/webhooks/{webhook_id}/test", _W + "test_webhook"),
)


ROUTES: Final[tuple[Route, ...]] = (
    *_TRACKING_ROUTES,
    *TRACE_ROUTES,
    *WEBHOOK_ROUTES,
    *NOT_SUPPORTED_ROUTES,
)


def routes_of(service: Service) -> list[Route]:
    return [r for r in ROUTES if r.service == service]


def service_for(method: str, path: str) -> Service:
    """The service a request goes to. A path only ingest serves goes to ingest whatever the
    method (ingest answers a wrong one with MLflow's 405); a path both serve (``POST
    /api/2.0/mlflow/traces`` starts a trace in ingest, ``GET`` searches in the api) is decided
    by the method; every other path, known or not, goes to the api (which answers 404)."""
    methods = _ingest_methods(path)
    if not methods:
        return "api"
    if method in methods or not _api_serves(path):
        return "ingest"
    return "api"


def shares_url_with_api(route: Route) -> bool:
    """Whether an ingest route's URLs are also (some of) the api's, so that only the method
    tells the two apart (a path-only router cannot express the route)."""
    return any(_api_serves(url) or _api_overlaps(url) for url in route.urls())


def _ingest_methods(path: str) -> frozenset[str]:
    found = _INGEST_LITERAL.get(path, frozenset())
    for pattern, method in _INGEST_PATTERNS:
        if pattern.match(path):
            found = found | {method}
    return found


def _api_serves(path: str) -> bool:
    return path in _API_LITERAL or any(p.match(path) for p in _API_PATTERNS)


def _api_overlaps(url: str) -> bool:
    """A templated ingest URL and an api URL one path could match (an api literal matching
    it, e.g. ``/traces/delete-traces`` against ``/traces/{request_id}``)."""
    if "{" not in url:
        return False
    pattern = re.compile(url_regex(url))
    return any(pattern.match(u) for u in _API_LITERAL)


def _literal(service: Service) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for r in ROUTES:
        if r.service == service:
            for url in r.urls():
                if "{" not in url:
                    out.setdefault(url, set()).add(r.method)
    return {url: frozenset(methods) for url, methods in out.items()}


_INGEST_LITERAL: Final = _literal("ingest")
_INGEST_PATTERNS: Final = tuple(
    (re.compile(url_regex(url)), r.method)
    for r in ROUTES
    if r.service == "ingest"
    for url in r.urls()
    if "{" in url
)
_API_LITERAL: Final = frozenset(_literal("api"))
_API_PATTERNS: Final = tuple(
    re.compile(url_regex(url))
    for r in ROUTES
    if r.service == "api"
    for url in r.urls()
    if "{" in url
)
