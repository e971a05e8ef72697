"""The route table: paths, services, and the handler each route binds."""

import re

import pytest

from schemas.route_record import Route, handler_ref
from schemas.routes import ROUTES, routes_of, service_for, shares_url_with_api
from sluice.http import bind_handler


def _sample(url: str) -> str:
    """A concrete path for a route URL (one segment per placeholder)."""
    return re.sub(r"\{[^{}:]+(?::(?:[^{}]|\{[^{}]*\})+)?\}", "x1", url)


def test_every_route_is_served_under_api_and_ajax_api() -> None:
    for route in ROUTES:
        if route.bare:  # the web UI's pages and OTLP's /v1/traces, served as written
            (url,) = route.urls()
            assert not url.startswith(("/api/", "/ajax-api/"))
            assert service_for(route.method, _sample(url)) == route.service
            continue
        if route.ajax_only:  # registered by hand in MLflow, under /ajax-api only
            (ajax,) = route.urls()
            assert ajax.startswith("/ajax-api/")
            assert service_for(route.method, _sample(ajax)) == route.service
            continue
        api, ajax = route.urls()
        assert api.startswith("/api/") and ajax.startswith("/ajax-api/")
        assert service_for(route.method, _sample(api)) == route.service
        assert service_for(route.method, _sample(ajax)) == route.service


def test_unknown_paths_go_to_the_api_which_answers_404() -> None:
    assert service_for("POST", "/api/2.0/mlflow/no-such-thing") == "api"


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_the_method_decides_where_ingest_and_the_api_share_a_path(prefix: str) -> None:
    # MLflow 2.x StartTrace (ingest) and the v2 trace search (api): one URL.
    assert service_for("POST", f"{prefix}/traces") == "ingest"
    assert service_for("GET", f"{prefix}/traces") == "api"
    assert service_for("DELETE", f"{prefix}/traces") == "api"  # the api's 405
    # EndTrace's templated path also matches the api's literal siblings.
    assert service_for("PATCH", f"{prefix}/traces/0123abcd") == "ingest"
    assert service_for("POST", f"{prefix}/traces/delete-traces") == "api"
    assert service_for("PATCH", f"{prefix}/traces/delete-traces") == "ingest"  # as MLflow
    assert service_for("PATCH", f"{prefix}/traces/0123abcd/tags") == "api"
    # A path only ingest serves goes there whatever the method (ingest answers 405).
    assert service_for("GET", f"{prefix}/traces/0123abcd") == "ingest"
    assert service_for("GET", f"{prefix}/runs/log-batch") == "ingest"


def test_only_the_shared_routes_need_the_method() -> None:
    shared = sorted((r.method, r.path) for r in routes_of("ingest") if shares_url_with_api(r))
    assert shared == [("PATCH", "/mlflow/traces/{request_id}"), ("POST", "/mlflow/traces")]


def test_no_route_is_declared_twice() -> None:
    keys = [(r.method, r.urls()[0]) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_high_volume_writes_go_to_ingest() -> None:
    ingest_paths = {r.path for r in routes_of("ingest")}
    assert {"/mlflow/runs/log-batch", "/mlflow/runs/log-metric"} <= ingest_paths


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_route_binds_the_function_its_reference_spells(route: Route) -> None:
    module, _, name = route.handler.partition(":")
    assert module.split(".")[0] == route.service  # the service is the module's package
    handler = bind_handler(route.handler)
    assert (handler.__module__, handler.__qualname__) == (module, name)
    assert handler_ref(handler) == route.handler  # what the auth middleware looks rules up by


def test_a_name_a_module_only_imports_does_not_bind() -> None:
    with pytest.raises(LookupError):
        bind_handler("api.runs.handlers:json_response")  # imported from sluice.http
    with pytest.raises(LookupError):
        bind_handler("api.runs.handlers:no_such_handler")
    with pytest.raises(LookupError):
        bind_handler("api.runs.handlers:RUN_NAME_TAG")


def test_one_name_in_two_modules_binds_two_functions() -> None:
    """No first-hit search across modules: the module in the reference decides."""
    runs = bind_handler("api.runs.store:lock_active")
    experiments = bind_handler("api.experiments.store:lock_active")
    assert runs is not experiments
    assert (runs.__module__, experiments.__module__) == ("api.runs.store", "api.experiments.store")


def test_a_route_is_one_handler_and_each_handler_one_function() -> None:
    bound = {route.handler: bind_handler(route.handler) for route in ROUTES}
    assert len({id(f) for f in bound.values()}) == len(bound)
