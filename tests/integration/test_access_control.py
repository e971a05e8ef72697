"""Access control, on by configuration: every route (REST and ajax, from the route table, health
excepted) answers 401 without credentials and 403 with the wrong permission; refused writes are
never produced to Kafka; per-user rate limits answer 429 with Retry-After."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.access import CHECKED_IN_HANDLER, RULES, Resource
from schemas.route_record import Route
from schemas.routes import ROUTES
from sluice.commands import users
from sluice.config import PgConfig
from tests.stack import Ports, Stack

TIMEOUT = 30


@dataclass(frozen=True)
class Secured:
    api: str
    ingest: str
    experiment_id: str
    run_id: str
    model: str
    logged_model: str
    trace_id: str


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = _basic("root", "root-pw")
BOB = _basic("bob", "bob-pw")


@pytest.fixture(scope="module")
def secured(stack: Stack) -> Iterator[Secured]:
    ports = Ports.free()
    pg = PgConfig(dsn=stack.dsn)
    asyncio.run(users.add_user(pg, "root", "root-pw", True))
    asyncio.run(users.add_user(pg, "bob", "bob-pw", False))
    asyncio.run(users.add_user(pg, "carol", "carol-pw", False))
    auth = {
        "SLUICE_AUTH_ENABLED": "true",
        "SLUICE_AUTH_RATE_PER_S": "5",
        # Above what one user sends over every route of the table and the tests after it (bob);
        # below the 1,500 requests of the rate-limit test (carol).
        "SLUICE_AUTH_RATE_BURST": "600",
    }
    stack.start("api", "api-auth", ports.api, SLUICE_API_PORT=str(ports.api), **auth)
    stack.start(
        "ingest",
        "ingest-auth",
        ports.ingest,
        SLUICE_INGEST_PORT=str(ports.ingest),
        **auth,
    )
    api, ingest = f"http://127.0.0.1:{ports.api}", f"http://127.0.0.1:{ports.ingest}"
    try:
        yield _resources(api, ingest, stack.dsn)
    finally:
        for name in ("api-auth", "ingest-auth"):
            stack.kill(name)


def _post(url: str, body: dict[str, object], headers: dict[str, str]) -> dict[str, object]:
    response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert isinstance(doc, dict)
    return doc


def _resources(api: str, ingest: str, dsn: str) -> Secured:
    """An experiment, run, registered model and logged model owned by the admin; bob is
    explicitly denied on them."""
    base = f"{api}/api/2.0/mlflow"
    exp = str(
        _post(f"{base}/experiments/create", {"name": f"acl-{uuid.uuid4().hex}"}, ADMIN)[
            "experiment_id"
        ]
    )
    run = _post(f"{base}/runs/create", {"experiment_id": exp}, ADMIN)["run"]
    run_id = str(run["info"]["run_id"])  # type: ignore[index]
    model = f"acl-model-{uuid.uuid4().hex[:8]}"
    _post(f"{base}/registered-models/create", {"name": model}, ADMIN)
    logged = _post(f"{base}/logged-models", {"experiment_id": exp, "name": "m"}, ADMIN)
    model_id = str(logged["model"]["info"]["model_id"])  # type: ignore[index]
    for kind, target in (("experiment", exp), ("model", model)):
        asyncio.run(users.grant(PgConfig(dsn=dsn), "bob", kind, target, "NO_PERMISSIONS"))
    return Secured(api, ingest, exp, run_id, model, model_id, _trace(api, ingest, exp))


def _trace(api: str, ingest: str, experiment_id: str) -> str:
    """A trace of the secured experiment (StartTraceV3 through ingest), visible to the api."""
    trace_id = f"tr-{uuid.uuid4().hex}"
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
    info = {
        "trace_id": trace_id,
        "trace_location": location,
        "request_time": "2026-01-01T00:00:00Z",
    }
    _post(f"{ingest}/api/3.0/mlflow/traces", {"trace": {"trace_info": info}}, ADMIN)
    got = requests.get(f"{api}/api/3.0/mlflow/traces/{trace_id}", headers=ADMIN, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    return trace_id


def _url(route: Route, url: str, s: Secured) -> str:
    base = s.ingest if route.service == "ingest" else s.api
    filled = re.sub(
        r"\{artifact_path:[^}]*\}|\{path:[^}]*\}",
        f"{s.experiment_id}/{s.run_id}/artifacts/f.txt",
        url,
    )
    filled = filled.replace("{model_id}", s.logged_model).replace("{tag_key}", "t")
    for name in ("{trace_id}", "{request_id}"):
        filled = filled.replace(name, s.trace_id)
    filled = filled.replace("{assessment_id}", "a-0")
    # Any other parameter (the GenAI 501 routes' ids): aiohttp's default pattern refuses braces.
    return base + re.sub(r"\{[a-z_]+\}", "x", filled)


def _request(route: Route, url: str, s: Secured, headers: dict[str, str]) -> requests.Response:
    fields = {
        "experiment_id": s.experiment_id,
        "run_id": s.run_id,
        "name": s.model,
        "key": "k",
        "value": "v",
        "version": "1",
        "metric_key": "m",
    }
    if route.method == "GET":
        return requests.get(_url(route, url, s), params=fields, headers=headers, timeout=TIMEOUT)
    return requests.request(
        route.method, _url(route, url, s), json=fields, headers=headers, timeout=TIMEOUT
    )


CASES = [
    (route, url) for route in ROUTES for url in route.urls() if not RULES[route.handler].public
]


@pytest.mark.parametrize(("route", "url"), CASES, ids=[f"{r.method} {u}" for r, u in CASES])
def test_every_route_needs_credentials_and_the_right_permission(
    route: Route, url: str, secured: Secured
) -> None:
    anonymous = _request(route, url, secured, {})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    denied = _request(route, url, secured, BOB)
    if route.handler in CHECKED_IN_HANDLER:
        assert denied.status_code != 401, denied.text  # READ on what it names: 403 possible
    elif RULES[route.handler].resource is Resource.NONE:
        assert denied.status_code not in (401, 403), denied.text  # authentication suffices
    else:
        assert denied.status_code == 403, denied.text
        assert denied.json()["error_code"] == "PERMISSION_DENIED"


def test_bearer_tokens_and_creator_permissions(secured: Secured, stack: Stack) -> None:
    token = asyncio.run(users.add_token(PgConfig(dsn=stack.dsn), "bob"))
    bearer = {"Authorization": f"Bearer {token}"}
    base = f"{secured.api}/api/2.0/mlflow"
    exp = str(
        _post(f"{base}/experiments/create", {"name": f"bob-{uuid.uuid4().hex}"}, bearer)[
            "experiment_id"
        ]
    )
    run = _post(f"{base}/runs/create", {"experiment_id": exp}, bearer)  # creator got MANAGE
    run_id = str(run["run"]["info"]["run_id"])  # type: ignore[index]
    _post(
        f"{secured.ingest}/api/2.0/mlflow/runs/log-metric",
        {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1},
        bearer,
    )
    wrong = requests.get(
        f"{base}/experiments/get",
        params={"experiment_id": exp},
        headers={"Authorization": "Bearer nope"},
        timeout=TIMEOUT,
    )
    assert wrong.status_code == 401


def test_refused_writes_are_not_produced(secured: Secured, stack: Stack) -> None:
    before = asyncio.run(_end_offsets(stack))
    body = {"run_id": secured.run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1}]}
    for headers in ({}, BOB):
        r = requests.post(
            f"{secured.ingest}/api/2.0/mlflow/runs/log-batch",
            json=body,
            headers=headers,
            timeout=TIMEOUT,
        )
        assert r.status_code in (401, 403)
    assert asyncio.run(_end_offsets(stack)) == before


def test_trace_searches_and_batch_reads_check_the_traces_experiments(secured: Secured) -> None:
    """These routes name no single resource (Resource.NONE in the table): the handler checks
    READ on every experiment searched or every trace's experiment."""
    v3 = f"{secured.api}/api/3.0/mlflow/traces"
    experiment = {"experiment_id": secured.experiment_id}
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": experiment}
    calls = [
        ("POST", f"{v3}/search", {"json": {"locations": [location]}}),
        (
            "GET",
            f"{secured.api}/api/2.0/mlflow/traces",
            {"params": {"experiment_ids": secured.experiment_id}},
        ),
        ("GET", f"{v3}/batchGet", {"params": {"trace_ids": secured.trace_id}}),
        ("POST", f"{v3}/batchGetInfos", {"json": {"trace_ids": [secured.trace_id]}}),
    ]
    for method, url, kwargs in calls:
        denied = requests.request(method, url, headers=BOB, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
        assert denied.status_code == 403, (url, denied.text)
        assert denied.json()["error_code"] == "PERMISSION_DENIED"
        allowed = requests.request(method, url, headers=ADMIN, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
        assert allowed.status_code == 200, (url, allowed.text)
        assert secured.trace_id in allowed.text


def test_searches_list_only_what_the_caller_may_read(secured: Secured, stack: Stack) -> None:
    """MLflow's auth app drops unreadable experiments and registered models (and their
    versions) from search answers and refuses bulk reads of unreadable runs."""
    base = f"{secured.api}/api/2.0/mlflow"
    _post(
        f"{base}/model-versions/create",
        {
            "name": secured.model,
            "source": f"runs:/{secured.run_id}/model",
            "run_id": secured.run_id,
        },
        ADMIN,
    )
    listings: list[tuple[str, dict[str, str | int], str, str]] = [
        ("experiments/search", {"max_results": 1000}, "experiments", "experiment_id"),
        ("registered-models/search", {"max_results": 1000}, "registered_models", "name"),
        (
            "model-versions/search",
            {"filter": f"name = '{secured.model}'"},
            "model_versions",
            "name",
        ),
    ]
    wanted = {"experiment_id": secured.experiment_id, "name": secured.model}
    for path, body, field, key in listings:
        for headers, visible in ((ADMIN, True), (BOB, False)):
            answer = requests.get(f"{base}/{path}", params=body, headers=headers, timeout=TIMEOUT)
            assert answer.status_code == 200, (path, answer.text)
            found = [str(item[key]) for item in answer.json().get(field, [])]
            assert (wanted[key] in found) is visible, (path, headers is ADMIN, found)
    for headers, visible in ((ADMIN, True), (BOB, False)):
        answer = requests.post(
            f"{base}/logged-models/search",
            json={"experiment_ids": [secured.experiment_id]},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        found = [m["info"]["model_id"] for m in answer.json().get("models", [])]
        assert (secured.logged_model in found) is visible, found

    # pages of one over three experiments, bob refused the middle one: full pages, exact tokens
    prefix = f"aclpage-{uuid.uuid4().hex[:8]}"
    created = [
        str(_post(f"{base}/experiments/create", {"name": f"{prefix}-{i}"}, ADMIN)["experiment_id"])
        for i in range(3)
    ]
    asyncio.run(
        users.grant(PgConfig(dsn=stack.dsn), "bob", "experiment", created[1], "NO_PERMISSIONS")
    )
    token, seen, pages = None, [], 0
    while pages < 5:
        params: dict[str, str | int] = {
            "max_results": 1,
            "filter": f"name LIKE '{prefix}-%'",
            "order_by": "name ASC",
            **({"page_token": token} if token else {}),
        }
        page = requests.get(f"{base}/experiments/search", params=params, headers=BOB, timeout=30)
        seen += [e["experiment_id"] for e in page.json().get("experiments", [])]
        token, pages = page.json().get("next_page_token"), pages + 1
        if not token:
            break
    assert seen == [created[0], created[2]] and not token

    ajax = f"{secured.api}/ajax-api/2.0/mlflow"
    refused = [
        ("GET", f"{ajax}/metrics/get-history-bulk", {"run_id": secured.run_id, "metric_key": "m"}),
        (
            "GET",
            f"{ajax}/metrics/get-history-bulk-interval",
            {"run_ids": secured.run_id, "metric_key": "m"},
        ),
        (
            "POST",
            f"{ajax}/experiments/search-datasets",
            {"experiment_ids": [secured.experiment_id]},
        ),
    ]
    for method, url, fields in refused:
        where = {"params": fields} if method == "GET" else {"json": fields}
        denied = requests.request(method, url, headers=BOB, timeout=TIMEOUT, **where)  # type: ignore[arg-type]
        assert denied.status_code == 403, (url, denied.text)
        assert denied.json()["error_code"] == "PERMISSION_DENIED"
        allowed = requests.request(method, url, headers=ADMIN, timeout=TIMEOUT, **where)  # type: ignore[arg-type]
        assert allowed.status_code == 200, (url, allowed.text)

    query = (
        "query Q($input: MlflowGetMetricHistoryBulkIntervalInput) {"
        " mlflowGetMetricHistoryBulkInterval(input: $input) { metrics { key } } }"
    )
    variables = {"input": {"runIds": [secured.run_id], "metricKey": "m"}}
    graphql = requests.post(
        f"{secured.api}/graphql",
        json={"query": query, "variables": variables},
        headers=BOB,
        timeout=TIMEOUT,
    )
    assert "Permission denied" in graphql.text, graphql.text


def test_model_grants_follow_a_rename_and_go_with_a_delete(secured: Secured, stack: Stack) -> None:
    """Grants are keyed by model name: a rename carries them; a deleted model's grants do not
    pass to a later model of the same name (both as MLflow's auth app)."""
    base = f"{secured.api}/api/2.0/mlflow"
    old, new = f"acl-old-{uuid.uuid4().hex[:8]}", f"acl-new-{uuid.uuid4().hex[:8]}"
    _post(f"{base}/registered-models/create", {"name": old}, ADMIN)
    asyncio.run(users.grant(PgConfig(dsn=stack.dsn), "bob", "model", old, "NO_PERMISSIONS"))
    _post(f"{base}/registered-models/rename", {"name": old, "new_name": new}, ADMIN)

    def bob_sees(name: str) -> bool:
        found = requests.get(
            f"{base}/registered-models/search",
            params={"filter": f"name = '{name}'"},
            headers=BOB,
            timeout=TIMEOUT,
        )
        assert found.status_code == 200, found.text
        return [m["name"] for m in found.json().get("registered_models", [])] == [name]

    assert not bob_sees(new)
    got = requests.get(
        f"{base}/registered-models/get", params={"name": new}, headers=BOB, timeout=TIMEOUT
    )
    assert got.status_code == 403, got.text
    deleted = requests.delete(
        f"{base}/registered-models/delete", json={"name": new}, headers=ADMIN, timeout=TIMEOUT
    )
    assert deleted.status_code == 200, deleted.text
    _post(f"{base}/registered-models/create", {"name": new}, ADMIN)
    assert bob_sees(new)  # the default (READ), not the deleted model's refusal


def test_a_body_that_does_not_decode_is_a_400_before_permissions(secured: Secured) -> None:
    """The permission check reads the body to find the run; a broken gzip body is the
    client's error there too, never a 500."""
    headers = {**ADMIN, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    for url in (
        f"{secured.ingest}/api/2.0/mlflow/runs/log-batch",
        f"{secured.api}/api/2.0/mlflow/runs/update",
    ):
        r = requests.post(url, data=b"not gzip at all", headers=headers, timeout=TIMEOUT)
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert r.headers.get("Connection") == "close"


def test_rate_limit_answers_429_with_retry_after(secured: Secured) -> None:
    carol = _basic("carol", "carol-pw")
    url = f"{secured.api}/api/2.0/mlflow/experiments/search"
    statuses = []
    with requests.Session() as session:
        for _ in range(1500):
            r = session.post(url, json={"max_results": 1}, headers=carol, timeout=TIMEOUT)
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
                break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}


async def _end_offsets(stack: Stack) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(stack.topic, p) for p in range(4)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
