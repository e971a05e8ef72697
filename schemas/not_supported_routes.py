"""MLflow 3's GenAI route families that Sluice answers 501 for (``api/not_supported.py``); the
route table (``schemas/routes.py``) serves them after its own routes."""

from __future__ import annotations

from typing import Final

from schemas.route_record import Route

# MLflow 3's GenAI families, out of Sluice's scope (issue 14): every route MLflow 3.17.2 serves
# for them answers NOT_IMPLEMENTED (501, which the client does not retry) naming the feature
# (api/not_supported.py), so a client learns "not here" instead of "no such endpoint". Taken
# from MLflow's protos and hand-registered routes (tests/compat/surface/mlflow_surface.json);
# (method, path, ajax_only). Static paths are listed before parameterised ones, which aiohttp
# would otherwise match first (datasets/search vs datasets/{dataset_id}).
NOT_SUPPORTED_FAMILIES: Final[dict[str, tuple[tuple[str, str, bool], ...]]] = {
    "gateway": (
        ("POST", "/mlflow/gateway/secrets/create", False),
        ("GET", "/mlflow/gateway/secrets/get", False),
        ("POST", "/mlflow/gateway/secrets/update", False),
        ("DELETE", "/mlflow/gateway/secrets/delete", False),
        ("GET", "/mlflow/gateway/secrets/list", False),
        ("POST", "/mlflow/gateway/endpoints/create", False),
        ("GET", "/mlflow/gateway/endpoints/get", False),
        ("POST", "/mlflow/gateway/endpoints/update", False),
        ("DELETE", "/mlflow/gateway/endpoints/delete", False),
        ("GET", "/mlflow/gateway/endpoints/list", False),
        ("POST", "/mlflow/gateway/model-definitions/create", False),
        ("GET", "/mlflow/gateway/model-definitions/get", False),
        ("GET", "/mlflow/gateway/model-definitions/list", False),
        ("POST", "/mlflow/gateway/model-definitions/update", False),
        ("DELETE", "/mlflow/gateway/model-definitions/delete", False),
        ("POST", "/mlflow/gateway/endpoints/models/attach", False),
        ("POST", "/mlflow/gateway/endpoints/models/detach", False),
        ("POST", "/mlflow/gateway/endpoints/bindings/create", False),
        ("DELETE", "/mlflow/gateway/endpoints/bindings/delete", False),
        ("GET", "/mlflow/gateway/endpoints/bindings/list", False),
        ("POST", "/mlflow/gateway/endpoints/set-tag", False),
        ("DELETE", "/mlflow/gateway/endpoints/delete-tag", False),
        ("POST", "/mlflow/gateway/budgets/create", False),
        ("GET", "/mlflow/gateway/budgets/get", False),
        ("POST", "/mlflow/gateway/budgets/update", False),
        ("DELETE", "/mlflow/gateway/budgets/delete", False),
        ("GET", "/mlflow/gateway/budgets/list", False),
        ("GET", "/mlflow/gateway/budgets/windows", False),
        ("POST", "/mlflow/gateway/guardrails/create", False),
        ("GET", "/mlflow/gateway/guardrails/get", False),
        ("DELETE", "/mlflow/gateway/guardrails/delete", False),
        ("GET", "/mlflow/gateway/guardrails/list", False),
        ("POST", "/mlflow/gateway/guardrails/add-to-endpoint", False),
        ("DELETE", "/mlflow/gateway/guardrails/remove-from-endpoint", False),
        ("GET", "/mlflow/gateway/guardrails/list-for-endpoint", False),
        ("PATCH", "/mlflow/gateway/guardrails/update-config", False),
        ("GET", "/mlflow/gateway/supported-providers", True),
        ("GET", "/mlflow/gateway/supported-models", True),
        ("GET", "/mlflow/gateway/provider-config", True),
        ("GET", "/mlflow/gateway/secrets/config", True),
    ),
    "issues": (
        ("POST", "/mlflow/issues", False),
        ("PATCH", "/mlflow/issues/{issue_id}", False),
        ("GET", "/mlflow/issues/{issue_id}", False),
        ("POST", "/mlflow/issues/search", False),
        ("POST", "/mlflow/issues/invoke", True),
    ),
    "scorers": (
        ("POST", "/mlflow/scorers/register", False),
        ("GET", "/mlflow/scorers/list", False),
        ("GET", "/mlflow/scorers/versions", False),
        ("GET", "/mlflow/scorers/get", False),
        ("DELETE", "/mlflow/scorers/delete", False),
        ("GET", "/mlflow/scorers/online-configs", False),
        ("PUT", "/mlflow/scorers/online-config", False),
        ("POST", "/mlflow/scorer/invoke", True),
        ("POST", "/mlflow/genai/evaluate/invoke", True),
    ),
    "evaluation_datasets": (
        ("POST", "/mlflow/datasets/create", False),
        ("GET", "/mlflow/datasets/{dataset_id}", False),
        ("DELETE", "/mlflow/datasets/{dataset_id}", False),
        # datasets/search is served (empty pages, api/traces/datasets.py): the traces tab calls it
        ("PATCH", "/mlflow/datasets/{dataset_id}/tags", False),
        ("DELETE", "/mlflow/datasets/{dataset_id}/tags/{key}", False),
        ("POST", "/mlflow/datasets/{dataset_id}/records", False),
        ("GET", "/mlflow/datasets/{dataset_id}/experiment-ids", False),
        ("GET", "/mlflow/datasets/{dataset_id}/records", False),
        ("DELETE", "/mlflow/datasets/{dataset_id}/records", False),
        ("POST", "/mlflow/datasets/{dataset_id}/add-experiments", False),
        ("POST", "/mlflow/datasets/{dataset_id}/remove-experiments", False),
    ),
    "prompt_optimization": (
        ("POST", "/mlflow/prompt-optimization/jobs", False),
        ("GET", "/mlflow/prompt-optimization/jobs/{job_id}", False),
        ("POST", "/mlflow/prompt-optimization/jobs/search", False),
        ("GET", "/mlflow/prompt-optimization/jobs/search", False),
        ("POST", "/mlflow/prompt-optimization/jobs/{job_id}/cancel", False),
        ("DELETE", "/mlflow/prompt-optimization/jobs/{job_id}", False),
    ),
}
NOT_SUPPORTED_ROUTES: Final[tuple[Route, ...]] = tuple(
    Route(method, path, f"api.not_supported:{family}", version="3.0", ajax_only=ajax_only)
    for family, routes in NOT_SUPPORTED_FAMILIES.items()
    for method, path, ajax_only in sorted(routes, key=lambda r: "{" in r[1])
)
