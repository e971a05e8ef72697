"""Which service serves which MLflow REST route.

Every route is served under both ``/api/<v>`` and ``/ajax-api/<v>`` (MLflow registers both).
``sluice up`` routes by this table; production load balancers use the same split (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Service = Literal["ingest", "api"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # below the version prefix, e.g. "/mlflow/runs/log-batch"
    service: Service
    handler: str  # function name in the service's handler module
    version: str = "2.0"

    def urls(self) -> tuple[str, str]:
        return f"/api/{self.version}{self.path}", f"/ajax-api/{self.version}{self.path}"


ROUTES: Final[tuple[Route, ...]] = (
    # High-volume writes: ingest.
    Route("POST", "/mlflow/runs/log-batch", "ingest", "log_batch"),
    Route("POST", "/mlflow/runs/log-metric", "ingest", "log_metric"),
    Route("POST", "/mlflow/runs/log-parameter", "ingest", "log_param"),
    Route("POST", "/mlflow/runs/set-tag", "ingest", "set_tag"),
    Route("POST", "/mlflow/runs/delete-tag", "ingest", "delete_tag"),
    # Lifecycle and reads: api.
    Route("POST", "/mlflow/experiments/create", "api", "create_experiment"),
    Route("GET", "/mlflow/experiments/get", "api", "get_experiment"),
    Route("GET", "/mlflow/experiments/get-by-name", "api", "get_experiment_by_name"),
    Route("POST", "/mlflow/experiments/delete", "api", "delete_experiment"),
    Route("POST", "/mlflow/experiments/restore", "api", "restore_experiment"),
    Route("POST", "/mlflow/experiments/update", "api", "update_experiment"),
    Route("POST", "/mlflow/experiments/set-experiment-tag", "api", "set_experiment_tag"),
    Route("POST", "/mlflow/experiments/delete-experiment-tag", "api", "delete_experiment_tag"),
    Route("POST", "/mlflow/experiments/search", "api", "search_experiments"),
    Route("GET", "/mlflow/experiments/search", "api", "search_experiments"),
    Route("POST", "/mlflow/runs/search", "api", "search_runs"),
    Route("POST", "/mlflow/runs/create", "api", "create_run"),
    Route("GET", "/mlflow/runs/get", "api", "get_run"),
    Route("POST", "/mlflow/runs/update", "api", "update_run"),
    Route("POST", "/mlflow/runs/delete", "api", "delete_run"),
    Route("POST", "/mlflow/runs/restore", "api", "restore_run"),
    Route("GET", "/mlflow/metrics/get-history", "api", "get_metric_history"),
    Route("GET", "/mlflow/server-info", "api", "server_info", version="3.0"),
)


def routes_of(service: Service) -> list[Route]:
    return [r for r in ROUTES if r.service == service]


def service_for(path: str) -> Service:
    """The service a request path goes to; unknown paths go to the api (which answers 404)."""
    return _BY_URL.get(path, "api")


_BY_URL: Final[dict[str, Service]] = {url: r.service for r in ROUTES for url in r.urls()}
