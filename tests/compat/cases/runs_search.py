"""runs/search: metric/param/tag/attribute filters, ordering (NaN and missing values), view
types, paging and the grammar's error paths, over three runs in the case's own experiment."""

from __future__ import annotations

from typing import Any

from tests.compat.cases._build import (
    RUNS_SETS,
    T0,
    ajax_api,
    api,
    case,
    create_experiment,
    create_run,
    kv,
    metric,
    on_ajax,
    post,
)
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "runs/create",
    "runs/log-batch",
    "runs/update",
    "runs/delete",
    "runs/search",
) | ajax_api("runs/search")


def log(run: str, **fields: Any) -> Step:
    return post("runs/log-batch", {"run_id": f"${{{run}}}", **fields})


def three_runs() -> list[Step]:
    """alpha (acc 0.5, lr 0.1, model cnn, team a), beta (acc 0.9, lr 0.01, team b, FINISHED),
    gamma (acc NaN, model rnn); started at T0+1, T0+2, T0+3."""
    return [
        create_experiment(),
        create_run("r1", run_name="alpha", start_time=T0 + 1, user_id="ann"),
        create_run("r2", run_name="beta", start_time=T0 + 2, user_id="bob"),
        create_run("r3", run_name="gamma", start_time=T0 + 3, user_id="ann"),
        log(
            "r1",
            metrics=[metric("acc", 0.5, step=1), metric("loss", 1.0)],
            params=[kv("lr", "0.1"), kv("model", "cnn")],
            tags=[kv("team", "a")],
        ),
        log("r2", metrics=[metric("acc", 0.9)], params=[kv("lr", "0.01")], tags=[kv("team", "b")]),
        log("r3", metrics=[metric("acc", "NaN")], params=[kv("model", "rnn")]),
        post("runs/update", {"run_id": "${r2}", "status": "FINISHED", "end_time": T0 + 100}),
    ]


def search(
    filter_: str = "",
    order_by: list[str] | None = None,
    expect: int = 200,
    message_prefix: str | None = None,
    **body: Any,
) -> Step:
    request: dict[str, Any] = {
        "experiment_ids": ["${exp}"],
        "filter": filter_,
        "max_results": 100,
        **body,
    }
    if order_by is not None:
        request["order_by"] = order_by
    step = post("runs/search", request, expect=expect, unordered=RUNS_SETS)
    if message_prefix is not None:
        step["message_prefix"] = message_prefix
    return step


def _found(case_id: str, *steps: Step, doc: str = "") -> Case:
    return case(case_id, three_runs(), *steps, doc=doc)


_FILTERS = [
    _found(f"runs-search/filter-{name}", search(expression))
    for name, expression in {
        "metric-greater": "metrics.acc > 0.6",
        "metric-greater-equal-singular-prefix": "metric.acc >= 0.5",
        "metric-not-equal-matches-nan": "metrics.acc != 0.5",
        "metric-equal": "metrics.acc = 0.9",
        "metric-no-spaces": "metrics.acc>0.6",
        "metric-missing-key": "metrics.nope > 0",
        "metric-negative-number": "metrics.loss > -1e3",
        "param-equal": "params.lr = '0.1'",
        "param-not-equal-skips-missing": "param.lr != '0.1'",
        "param-like": "params.model LIKE 'c%'",
        "param-ilike": "params.model ILIKE 'C%'",
        "param-is-null": "params.model IS NULL",
        "param-is-not-null": "params.lr IS NOT NULL",
        "param-double-quoted-value": 'params.model = "rnn"',
        "tag-equal": "tags.team = 'a'",
        "tag-backticked-key": "tags.`mlflow.runName` = 'beta'",
        "tag-is-null": "tags.team IS NULL",
        "run-name-attribute": "attributes.run_name = 'alpha'",
        "run-name-like": "run_name LIKE '%a'",
        "run-name-alias": "attributes.`Run name` = 'gamma'",
        "status-finished": "attributes.status = 'FINISHED'",
        "status-is-case-sensitive": "status = 'running'",
        "start-time": f"attributes.start_time > {T0 + 1}",
        "created-alias": f"created >= {T0 + 3}",
        "end-time": "end_time > 0",
        "user-id": "user_id = 'ann'",
        "artifact-uri-like": "artifact_uri LIKE '%artifacts'",
        "run-id-equal": "run_id = '${r1}'",
        "run-id-in": "attributes.run_id IN ('${r1}', '${r3}')",
        "run-id-not-in": "run_id NOT IN ('${r1}')",
        "compound": "metrics.acc > 0.1 AND params.lr = '0.1' AND tags.team = 'a'",
        "lowercase-and": "metrics.acc > 0.1 and tags.team = 'b'",
    }.items()
]

_ORDER = [
    _found(f"runs-search/order-{name}", search(order_by=order))
    for name, order in {
        "default": [],
        "metric-desc-nan-after-values": ["metrics.acc DESC"],
        "metric-asc": ["metrics.acc ASC"],
        "metric-missing-last": ["metrics.loss DESC"],
        "param": ["params.lr ASC"],
        "param-missing-last-desc": ["params.model DESC"],
        "tag": ["tags.team DESC"],
        "run-name": ["attributes.run_name ASC"],
        "start-time-asc": ["start_time ASC"],
        "end-time-desc": ["attributes.end_time DESC"],
        "status": ["status ASC"],
        "user-then-start": ["user_id ASC", "start_time ASC"],
        "lowercase-direction": ["metrics.acc desc"],
    }.items()
]

_PAGING = [
    _found(
        "runs-search/page-through",
        {**search(max_results=2), "capture": {"p2": "next_page_token"}},
        search(max_results=2, page_token="${p2}"),
    ),
    _found(
        "runs-search/default-max-results",
        post("runs/search", {"experiment_ids": ["${exp}"]}, unordered=RUNS_SETS),
    ),
    # Sluice reads a metric order as segments (real values, then NaN and missing): pages that
    # end at and start past each boundary.
    _found(
        "runs-search/page-metric-order-into-nan",
        {
            **search(order_by=["metrics.acc DESC"], max_results=2),
            "capture": {"p2": "next_page_token"},
        },
        search(order_by=["metrics.acc DESC"], max_results=2, page_token="${p2}"),
    ),
    _found(
        "runs-search/page-metric-order-into-missing",
        {
            **search(order_by=["metrics.loss DESC"], max_results=1),
            "capture": {"p2": "next_page_token"},
        },
        {
            **search(order_by=["metrics.loss DESC"], max_results=1, page_token="${p2}"),
            "capture": {"p3": "next_page_token"},
        },
        search(order_by=["metrics.loss DESC"], max_results=1, page_token="${p3}"),
    ),
    _found(
        "runs-search/page-metric-not-equal-into-nan",
        {
            **search("metrics.acc != 0.5", ["metrics.acc ASC"], max_results=1),
            "capture": {"p2": "next_page_token"},
        },
        search("metrics.acc != 0.5", ["metrics.acc ASC"], max_results=1, page_token="${p2}"),
    ),
]

_VIEWS = [
    _found(
        f"runs-search/view-{view.lower()}",
        post("runs/delete", {"run_id": "${r3}"}),
        search(run_view_type=view),
    )
    for view in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
] + [
    _found(
        "runs-search/view-unknown-ignored",
        post("runs/delete", {"run_id": "${r3}"}),
        search(run_view_type="EVERYTHING"),
        doc="an unparsable run_view_type is ignored (ACTIVE_ONLY), not rejected",
    )
]

_OTHER = [
    case("runs-search/empty-experiment-ids", post("runs/search", {"experiment_ids": []})),
    case(
        "runs-search/two-experiments",
        three_runs(),
        create_experiment("exp2", name="${uid}-2"),
        create_run("r4", exp="${exp2}", run_name="delta", start_time=T0 + 4),
        post(
            "runs/search",
            {"experiment_ids": ["${exp}", "${exp2}"], "filter": "params.lr IS NULL"},
            unordered=RUNS_SETS,
        ),
    ),
    case(
        "runs-search/ui-landing",
        three_runs(),
        on_ajax(
            post(
                "runs/search",
                {
                    "experiment_ids": ["${exp}"],
                    "order_by": ["attributes.start_time DESC"],
                    "run_view_type": "ACTIVE_ONLY",
                    "filter": "",
                    "max_results": 50,
                },
                unordered=RUNS_SETS,
            )
        ),
    ),
    case(
        "runs-search/ui-compare-by-run-ids",
        three_runs(),
        on_ajax(
            post(
                "runs/search",
                {
                    "experiment_ids": ["${exp}"],
                    "filter": "run_id IN ('${r1}','${r2}')",
                    "run_view_type": "ALL",
                    "max_results": 2,
                },
                unordered=RUNS_SETS,
            )
        ),
    ),
]

# Messages that print a Python set ("Valid keys are '{...}'") differ in order from process to
# process, so only the text before the set is compared.
SET_MESSAGE = "Invalid attribute key '{}' specified. Valid keys are "

_REJECTIONS: list[tuple[str, int, dict[str, Any]]] = [
    ("max-results-zero", 400, {"max_results": 0}),
    ("max-results-50001", 400, {"max_results": 50001}),
    ("duplicate-order-by", 500, {"order_by": ["start_time DESC", "start_time ASC"]}),
    (
        "order-by-unknown-attribute",
        400,
        {"order_by": ["attributes.colour"], "message_prefix": SET_MESSAGE.format("colour")},
    ),
    ("order-by-bad-direction", 400, {"order_by": ["metrics.acc UP"]}),
    (
        "order-by-experiment-id",
        400,
        {"order_by": ["experiment_id"], "message_prefix": SET_MESSAGE.format("experiment_id")},
    ),
    ("whitespace-filter", 400, {"filter_": "  "}),
    ("or-filter", 400, {"filter_": "metrics.a > 1 OR metrics.b > 1"}),
    ("param-unquoted-value", 400, {"filter_": "params.lr = 1"}),
    ("metric-quoted-value", 400, {"filter_": "metrics.acc = '0.5'"}),
    (
        "unknown-attribute",
        400,
        {
            "filter_": "attributes.colour = 'red'",
            "message_prefix": SET_MESSAGE.format("colour"),
        },
    ),
    ("unknown-entity", 400, {"filter_": "things.x = 'y'"}),
    ("in-on-param", 400, {"filter_": "params.lr IN ('0.1')"}),
    ("is-null-on-metric", 400, {"filter_": "metrics.acc IS NULL"}),
    (
        "experiment-id-attribute",
        400,
        {
            "filter_": "attributes.experiment_id = '1'",
            "message_prefix": SET_MESSAGE.format("experiment_id"),
        },
    ),
    ("unterminated-string", 400, {"filter_": "params.lr = '0.1"}),
    ("bad-page-token", 400, {"page_token": "not-a-token"}),
]
_ERRORS = [
    case(f"runs-search/rejects-{name}", create_experiment(), search(expect=status, **body))
    for name, status, body in _REJECTIONS
]

_BAD_IDS = [
    case(
        "runs-search/rejects-non-integer-experiment-id",
        post("runs/search", {"experiment_ids": ["abc"]}, expect=400),
    ),
    case(
        "runs-search/unknown-experiment-id", post("runs/search", {"experiment_ids": ["987654321"]})
    ),
]

CASES: list[Case] = _FILTERS + _ORDER + _PAGING + _VIEWS + _OTHER + _ERRORS + _BAD_IDS
