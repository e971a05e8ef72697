"""runs/create, get, update, delete, restore: shapes, naming rules, lifecycle and errors."""

from __future__ import annotations

from tests.compat.cases._build import (
    RUN_SETS,
    T0,
    ajax_api,
    ajax_case,
    api,
    case,
    create_experiment,
    create_run,
    get,
    get_run,
    post,
    run_setup,
)
from tests.compat.model import Case

ENDPOINTS = api(
    "experiments/create",
    "runs/create",
    "runs/get",
    "runs/update",
    "runs/delete",
    "runs/restore",
    "runs/log-metric",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
    "runs/log-batch",
) | ajax_api(
    "experiments/create", "runs/create", "runs/get", "runs/update", "runs/delete", "runs/restore"
)

SYSTEM_TAGS = [
    {"key": "mlflow.user", "value": "alice"},
    {"key": "mlflow.source.name", "value": "train.py"},
    {"key": "mlflow.source.type", "value": "LOCAL"},
]


_CREATE: list[Case] = [
    case(
        "runs/create-minimal",
        create_experiment(),
        create_run(),
        get_run(),
        doc="no name: a random adjective-noun-NNN name, also as tag mlflow.runName; start_time 0",
    ),
    case(
        "runs/create-full",
        create_experiment(),
        create_run(run_name="train", user_id="alice", start_time=T0, tags=SYSTEM_TAGS),
        get_run(),
    ),
    case(
        "runs/create-run-name-equals-tag",
        create_experiment(),
        create_run(run_name="same", tags=[{"key": "mlflow.runName", "value": "same"}]),
        get_run(),
    ),
    case(
        "runs/create-name-from-tag-only",
        create_experiment(),
        create_run(tags=[{"key": "mlflow.runName", "value": "from-tag"}]),
        get_run(),
    ),
    case(
        "runs/create-empty-run-name",
        create_experiment(),
        create_run(run_name=""),
        get_run(),
    ),
    case(
        "runs/create-start-time-as-string",
        create_experiment(),
        create_run(start_time=str(T0)),
        get_run(),
    ),
    case(
        "runs/create-parent-run-tag",
        create_experiment(),
        create_run("parent", run_name="parent"),
        create_run(
            "child", run_name="child", tags=[{"key": "mlflow.parentRunId", "value": "${parent}"}]
        ),
        get_run("child"),
    ),
    case(
        "runs/create-tag-without-value",
        create_experiment(),
        create_run(run_name="r", tags=[{"key": "k"}]),
        get_run(),
    ),
    case(
        "runs/create-in-default-experiment",
        create_run(exp="0", run_name="${uid}"),
        get_run(),
    ),
    case(
        "runs/create-two-runs-distinct-ids",
        create_experiment(),
        create_run("a", run_name="a"),
        create_run("b", run_name="b"),
        get_run("a"),
        get_run("b"),
    ),
    case(
        "runs/create-conflicting-run-name-and-tag",
        create_experiment(),
        post(
            "runs/create",
            {
                "experiment_id": "${exp}",
                "run_name": "a",
                "tags": [{"key": "mlflow.runName", "value": "b"}],
            },
            expect=400,
        ),
    ),
    case(
        "runs/create-unknown-experiment",
        post("runs/create", {"experiment_id": "987654321"}, expect=404),
    ),
    case(
        "runs/create-non-integer-experiment",
        post("runs/create", {"experiment_id": "abc"}, expect=400),
    ),
    case(
        "runs/create-missing-experiment-id",
        post("runs/create", {"run_name": "x"}, expect=400, message_regex=""),
        doc="MLflow does not default the experiment: 400 BAD_REQUEST with a raw database error",
    ),
    case(
        "runs/create-start-time-not-a-number",
        create_experiment(),
        post("runs/create", {"experiment_id": "${exp}", "start_time": "soon"}, expect=400),
    ),
    case(
        "runs/create-run-name-int",
        create_experiment(),
        post("runs/create", {"experiment_id": "${exp}", "run_name": 7}, expect=400),
    ),
    case(
        "runs/create-experiment-id-int",
        create_experiment(),
        post("runs/create", {"experiment_id": 0, "run_name": "x"}, expect=400),
    ),
]

_GET: list[Case] = [
    case("runs/get-unknown", get("runs/get", {"run_id": "0" * 32}, expect=404)),
    case("runs/get-not-hex", get("runs/get", {"run_id": "no such run"}, expect=404)),
    case("runs/get-missing-id", get("runs/get", {}, expect=400)),
    case(
        "runs/get-legacy-run-uuid",
        run_setup(),
        get("runs/get", {"run_uuid": "${run}"}, unordered=RUN_SETS),
    ),
    case(
        "runs/get-both-ids",
        run_setup(),
        get("runs/get", {"run_id": "${run}", "run_uuid": "${run}"}, unordered=RUN_SETS),
    ),
]

_UPDATE: list[Case] = [
    case(
        "runs/update-finish",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "FINISHED", "end_time": T0 + 5000}),
        get_run(),
    ),
    case(
        "runs/update-legacy-run-uuid",
        run_setup(),
        post("runs/update", {"run_uuid": "${run}", "status": "KILLED"}),
        get_run(),
    ),
    case(
        "runs/update-status-failed",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "FAILED"}),
    ),
    case(
        "runs/update-status-scheduled",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "SCHEDULED"}),
    ),
    case(
        "runs/update-status-by-number",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": 3}),
        doc="enums are accepted by number too (3 = FINISHED)",
    ),
    case(
        "runs/update-invalid-status-ignored",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "BOGUS"}),
        get_run(),
        doc="an unparsable status is silently ignored, not rejected",
    ),
    case(
        "runs/update-lowercase-status-ignored",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "finished"}),
    ),
    case(
        "runs/update-end-time-only",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "end_time": T0 + 1}),
    ),
    case(
        "runs/update-nothing",
        run_setup(),
        post("runs/update", {"run_id": "${run}"}),
    ),
    case(
        "runs/update-run-name",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "run_name": "renamed"}),
        get_run(),
        doc="run_name also rewrites the mlflow.runName tag",
    ),
    case(
        "runs/update-finished-run-again",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "FINISHED", "end_time": T0 + 1}),
        post("runs/update", {"run_id": "${run}", "status": "RUNNING"}),
        get_run(),
    ),
    case(
        "runs/update-unknown-run",
        post("runs/update", {"run_id": "0" * 32, "status": "FINISHED"}, expect=404),
    ),
    case("runs/update-missing-run-id", post("runs/update", {"status": "FINISHED"}, expect=400)),
    case(
        "runs/update-end-time-not-a-number",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "end_time": "later"}, expect=400),
    ),
    case(
        "runs/update-deleted-run",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        post("runs/update", {"run_id": "${run}", "status": "FINISHED"}, expect=400),
    ),
]

_DELETE: list[Case] = [
    case(
        "runs/delete-then-get",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        get_run(),
        doc="deleted runs stay readable with lifecycle_stage deleted",
    ),
    case(
        "runs/delete-twice",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        post("runs/delete", {"run_id": "${run}"}),
    ),
    case("runs/delete-unknown", post("runs/delete", {"run_id": "0" * 32}, expect=404)),
    case("runs/delete-missing-run-id", post("runs/delete", {}, expect=400)),
    case(
        "runs/restore-after-delete",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        post("runs/restore", {"run_id": "${run}"}),
        get_run(),
    ),
    case(
        "runs/restore-active-run",
        run_setup(),
        post("runs/restore", {"run_id": "${run}"}),
        get_run(),
    ),
    case("runs/restore-unknown", post("runs/restore", {"run_id": "0" * 32}, expect=404)),
    case("runs/restore-missing-run-id", post("runs/restore", {}, expect=400)),
    case(
        "runs/restored-run-accepts-writes",
        run_setup(),
        post("runs/delete", {"run_id": "${run}"}),
        post("runs/restore", {"run_id": "${run}"}),
        post("runs/log-metric", {"run_id": "${run}", "key": "m", "value": 1, "timestamp": 5}),
        get_run(),
    ),
    case(
        "runs/finished-run-accepts-writes",
        run_setup(),
        post("runs/update", {"run_id": "${run}", "status": "FINISHED", "end_time": T0 + 1}),
        post("runs/log-metric", {"run_id": "${run}", "key": "m", "value": 1, "timestamp": 5}),
        post("runs/log-parameter", {"run_id": "${run}", "key": "p", "value": "v"}),
        post("runs/set-tag", {"run_id": "${run}", "key": "t", "value": "v"}),
        get_run(),
        doc="status FINISHED is not the lifecycle: writes are still allowed",
    ),
]


def _deleted_run_write(name: str, endpoint: str, body: dict[str, object]) -> Case:
    return case(
        f"runs/deleted-run-rejects-{name}",
        run_setup(),
        post("runs/set-tag", {"run_id": "${run}", "key": "t", "value": "v"}),
        post("runs/delete", {"run_id": "${run}"}),
        post(endpoint, {"run_id": "${run}", **body}, expect=400),
        get_run(),
    )


_DELETED_WRITES: list[Case] = [
    _deleted_run_write("log-metric", "runs/log-metric", {"key": "m", "value": 1, "timestamp": 5}),
    _deleted_run_write("log-parameter", "runs/log-parameter", {"key": "p", "value": "v"}),
    _deleted_run_write("set-tag", "runs/set-tag", {"key": "t2", "value": "v"}),
    _deleted_run_write("delete-tag", "runs/delete-tag", {"key": "t"}),
    _deleted_run_write(
        "log-batch", "runs/log-batch", {"metrics": [{"key": "m", "value": 1, "timestamp": 5}]}
    ),
    _deleted_run_write("empty-log-batch", "runs/log-batch", {}),
]

_AJAX = [
    ajax_case(next(c for c in _CREATE if c["id"] == "runs/create-full")),
    ajax_case(next(c for c in _UPDATE if c["id"] == "runs/update-finish")),
    ajax_case(next(c for c in _DELETE if c["id"] == "runs/restore-after-delete")),
    ajax_case(next(c for c in _GET if c["id"] == "runs/get-unknown")),
]

CASES = _CREATE + _GET + _UPDATE + _DELETE + _DELETED_WRITES + _AJAX
