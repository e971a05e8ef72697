"""experiments/search (POST, as the client sends it, and GET, as the UI does): filters, ordering,
view types, paging and the grammar's error paths. Every search is scoped to the case's own
experiments with `name LIKE '${uid}%'`, since both servers are shared by the whole session."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    ajax_api,
    api,
    case,
    create_experiment,
    get,
    on_ajax,
    post,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "experiments/delete",
    "experiments/search",
    "experiments/set-experiment-tag",
) | ajax_api("experiments/search")

MINE = "name LIKE '${uid}%'"
LISTS = ("experiments[*].tags",)


def search(filter_: str = MINE, expect: int = 200, capture: str | None = None, **body: Any) -> Step:
    step = post(
        "experiments/search",
        {"max_results": 100, "filter": filter_, "order_by": ["name ASC"], **body},
        expect=expect,
        unordered=LISTS,
    )
    if capture:
        step["capture"] = {capture: "next_page_token"}
    return step


def search_get(expect: int = 200, **query: Any) -> Step:
    return get("experiments/search", query, expect=expect, unordered=LISTS)


def three() -> list[Step]:
    """Experiments ${uid}-a (tag team=x), ${uid}-B (tag team=y), ${uid}-c (no tags)."""
    return [
        create_experiment("a", name="${uid}-a", tags=[{"key": "team", "value": "x"}]),
        create_experiment("b", name="${uid}-B", tags=[{"key": "team", "value": "y"}]),
        create_experiment("c", name="${uid}-c"),
    ]


def _found(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, three(), *steps, doc=doc)


_FILTERS: list[Case] = [
    _found("experiments-search/name-like", search()),
    _found("experiments-search/name-equals", search("name = '${uid}-a'")),
    _found("experiments-search/name-not-equals", search(f"{MINE} AND name != '${{uid}}-a'")),
    _found("experiments-search/name-like-is-case-sensitive", search("name LIKE '${uid}-b'")),
    _found("experiments-search/name-ilike", search("name ILIKE '${uid}-b'")),
    _found("experiments-search/name-underscore-wildcard", search("name LIKE '${uid}-_'")),
    _found("experiments-search/attribute-prefix", search("attribute.name LIKE '${uid}%'")),
    _found("experiments-search/tag-equals", search(f"{MINE} AND tags.team = 'x'")),
    _found("experiments-search/tag-singular-prefix", search(f"{MINE} AND tag.team != 'x'")),
    _found("experiments-search/tag-like", search(f"{MINE} AND tags.team LIKE '%'")),
    _found("experiments-search/tag-is-null", search(f"{MINE} AND tags.team IS NULL")),
    _found("experiments-search/tag-is-not-null", search(f"{MINE} AND tags.team IS NOT NULL")),
    _found(
        "experiments-search/ui-gateway-filter",
        search(f"{MINE} AND tags.`mlflow.experiment.isGateway` IS NULL"),
        doc="the UI's experiment list sends this filter on every load",
    ),
    _found(
        "experiments-search/experiment-id-in",
        search(f"{MINE} AND experiment_id IN ('${{a}}', '${{c}}')"),
    ),
    _found("experiments-search/experiment-id-equals", search("experiment_id = '${b}'")),
    _found("experiments-search/creation-time-positive", search(f"{MINE} AND creation_time > 0")),
    _found("experiments-search/last-update-time", search(f"{MINE} AND last_update_time >= 1")),
    _found("experiments-search/and-is-case-insensitive", search(f"{MINE} and tags.team = 'y'")),
    case("experiments-search/no-match", search("name = '${uid}-none'")),
]

_ORDER: list[Case] = [
    _found("experiments-search/order-name-desc", search(order_by=["name DESC"])),
    _found("experiments-search/order-experiment-id", search(order_by=["experiment_id DESC"])),
    _found("experiments-search/order-lowercase-direction", search(order_by=["name desc"])),
    _found("experiments-search/order-attribute-prefix", search(order_by=["attribute.name ASC"])),
    _found("experiments-search/order-duplicate-field", search(order_by=["name ASC", "name DESC"])),
]

_PAGING: list[Case] = [
    _found(
        "experiments-search/page-through",
        search(max_results=2, capture="p2"),
        search(max_results=2, page_token="${p2}"),
    ),
    _found("experiments-search/max-results-exact", search(max_results=3)),
]

_VIEWS: list[Case] = [
    _found(
        f"experiments-search/view-{view.lower()}",
        post("experiments/delete", {"experiment_id": "${b}"}),
        search(view_type=view),
    )
    for view in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
] + [
    _found(
        "experiments-search/view-unknown-ignored",
        post("experiments/delete", {"experiment_id": "${b}"}),
        search(view_type="EVERYTHING"),
        doc="an unparsable view_type is ignored (ACTIVE_ONLY), not rejected",
    )
]

_ERRORS: list[Case] = [
    case(
        "experiments-search/missing-max-results",
        post("experiments/search", {"filter": MINE}, expect=400),
    ),
    case("experiments-search/max-results-zero", search(max_results=0, expect=400)),
    case("experiments-search/max-results-50001", search(max_results=50001, expect=400)),
    case("experiments-search/whitespace-filter", search("   ", expect=400)),
    case("experiments-search/or-filter", search(f"{MINE} OR name = 'x'", expect=400)),
    case("experiments-search/unknown-attribute", search("owner = 'me'", expect=400)),
    case("experiments-search/unknown-entity", search("params.x = 'y'", expect=400)),
    case("experiments-search/experiment-id-unquoted", search("experiment_id = 4", expect=400)),
    case("experiments-search/creation-time-quoted", search("creation_time > '0'", expect=400)),
    case("experiments-search/name-unquoted", search("name = abc", expect=400)),
    case("experiments-search/name-in-list", search("name IN ('a', 'b')", expect=400)),
    case("experiments-search/order-by-tag", search(order_by=["tags.team ASC"], expect=400)),
    case("experiments-search/order-by-unknown", search(order_by=["owner"], expect=400)),
    case("experiments-search/order-bad-direction", search(order_by=["name UP"], expect=400)),
    case("experiments-search/bad-page-token", search(page_token="not-a-token", expect=400)),
]

_GET: list[Case] = [
    _found(
        "experiments-search/get-as-ui",
        search_get(max_results=25, order_by="name ASC", filter=MINE),
    ),
    _found(
        "experiments-search/get-on-ajax",
        on_ajax(search_get(max_results=25, order_by="name DESC", filter=MINE)),
    ),
    _found(
        "experiments-search/get-repeated-order-by",
        search_get(max_results=25, order_by=["name DESC", "experiment_id ASC"], filter=MINE),
    ),
    case("experiments-search/get-missing-max-results", search_get(expect=400, filter=MINE)),
    _found(
        "experiments-search/set-tag-then-search",
        post(
            "experiments/set-experiment-tag", {"experiment_id": "${c}", "key": "team", "value": "z"}
        ),
        search(f"{MINE} AND tags.team = 'z'"),
    ),
]

CASES = _FILTERS + _ORDER + _PAGING + _VIEWS + _ERRORS + _GET
