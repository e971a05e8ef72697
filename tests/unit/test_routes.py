from schemas.routes import ROUTES, routes_of, service_for


def test_every_route_is_served_under_api_and_ajax_api() -> None:
    for route in ROUTES:
        if route.bare:  # OTLP's own path
            (url,) = route.urls()
            assert not url.startswith("/api") and service_for(url) == route.service
            continue
        if route.ajax_only:  # registered by hand in MLflow, under /ajax-api only
            (ajax,) = route.urls()
            assert ajax.startswith("/ajax-api/") and service_for(ajax) == route.service
            continue
        api, ajax = route.urls()
        assert api.startswith("/api/") and ajax.startswith("/ajax-api/")
        assert service_for(api) == service_for(ajax) == route.service


def test_unknown_paths_go_to_the_api_which_answers_404() -> None:
    assert service_for("/api/2.0/mlflow/no-such-thing") == "api"


def test_no_route_is_declared_twice() -> None:
    keys = [(r.method, r.urls()[0]) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_high_volume_writes_go_to_ingest() -> None:
    ingest_paths = {r.path for r in routes_of("ingest")}
    assert {"/mlflow/runs/log-batch", "/mlflow/runs/log-metric"} <= ingest_paths
