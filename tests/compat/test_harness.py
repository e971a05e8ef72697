"""The harness's pure parts: a normaliser that hid real differences would make every case pass,
so these tests show that it keeps them visible. No server is involved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat import paths, surface
from tests.compat.compare import Answer, MessageRule, apply_message_rule, differences, shape
from tests.compat.model import UNKNOWN_ENDPOINT, LoadedCase, Step, gated, load_cases, step_endpoint
from tests.compat.normalise import NOW, RANDOM_RUN_NAME, IdMap, Window, normalise
from tests.compat.pending import PENDING
from tests.compat.runner import CaseError, substitute

WINDOW = Window(1_700_000_000_000, 1_900_000_000_000)
RUN_A = "a" * 32
RUN_B = "b" * 32


def _norm(body: Any, **bound: str) -> Any:
    ids = IdMap()
    for variable, raw in bound.items():
        ids.bind(raw, variable)
    return normalise(body, ids, WINDOW)


def _diff(ref: Any, tgt: Any, status: int = 200) -> list[str]:
    return differences(Answer(status, ref, ""), Answer(status, tgt, ""), ref, tgt)


def test_captured_ids_get_the_variable_name() -> None:
    body = {"run": {"info": {"run_id": RUN_A, "experiment_id": "7"}}}
    assert _norm(body, run=RUN_A, exp="7") == {
        "run": {"info": {"run_id": "<run>", "experiment_id": "<exp>"}}
    }


def test_swapped_ids_still_differ() -> None:
    ref = _norm({"a": {"run_id": RUN_A}, "b": {"run_id": RUN_B}}, x=RUN_A, y=RUN_B)
    tgt = _norm({"a": {"run_id": "c" * 32}, "b": {"run_id": "d" * 32}}, x="d" * 32, y="c" * 32)
    assert _diff(ref, tgt)


def test_uncaptured_ids_are_numbered_by_first_appearance() -> None:
    body = {"runs": [{"run_id": RUN_B}, {"run_id": RUN_A}, {"run_id": RUN_B}]}
    assert _norm(body) == {"runs": [{"run_id": "<id1>"}, {"run_id": "<id2>"}, {"run_id": "<id1>"}]}


def test_hex_ids_inside_other_strings_are_replaced() -> None:
    tag = {"key": "mlflow.parentRunId", "value": RUN_A}
    assert _norm(tag, parent=RUN_A) == {"key": "mlflow.parentRunId", "value": "<parent>"}


@pytest.mark.parametrize(
    "field", ["start_time", "creation_time", "timestamp", "last_updated_timestamp"]
)
def test_now_like_times_are_replaced_and_set_times_kept(field: str) -> None:
    assert _norm({field: 1_800_000_000_000}) == {field: NOW}
    assert _norm({field: 1_600_000_000_000}) == {field: 1_600_000_000_000}
    assert _norm({field: 5}) == {field: 5}


def test_numbers_outside_time_fields_are_kept() -> None:
    assert _norm({"value": 1_800_000_000_000, "step": 1_800_000_000_000}) == {
        "value": 1_800_000_000_000,
        "step": 1_800_000_000_000,
    }


def test_artifact_roots_are_normalised_but_ids_kept() -> None:
    ref = {
        "run_id": RUN_A,
        "experiment_id": "3",
        "artifact_uri": f"mlflow-artifacts:/3/{RUN_A}/artifacts",
    }
    tgt = {
        "artifact_uri": f"s3://bucket/x/9/{RUN_B}/artifacts",
        "run_id": RUN_B,
        "experiment_id": "9",
    }
    assert _norm(ref, run=RUN_A, exp="3") == _norm(tgt, run=RUN_B, exp="9")
    assert _norm(ref)["artifact_uri"] == "<root>/<id2>/<id1>/artifacts"


def test_artifact_uri_pointing_at_another_run_differs() -> None:
    ref = _norm({"run_id": RUN_A, "artifact_uri": f"r:/{RUN_A}/artifacts"}, run=RUN_A)
    tgt = _norm({"run_id": RUN_A, "artifact_uri": f"r:/{RUN_B}/artifacts"}, run=RUN_A)
    assert _diff(ref, tgt)


def test_explicit_artifact_location_is_kept() -> None:
    body = {"experiment_id": "3", "artifact_location": "s3://bucket/mine"}
    assert _norm(body)["artifact_location"] == "s3://bucket/mine"


def test_numeric_ids_in_messages_only_where_mlflow_puts_them() -> None:
    message = {"message": "No Experiment with id=5 exists. Got 5 params."}
    assert _norm(message, exp="5") == {
        "message": "No Experiment with id=<exp> exists. Got 5 params."
    }


def test_random_run_names_are_normalised() -> None:
    body = {
        "run_name": "bold-owl-123",
        "tags": [{"key": "mlflow.runName", "value": "bold-owl-123"}],
    }
    assert _norm(body) == {
        "run_name": RANDOM_RUN_NAME,
        "tags": [{"key": "mlflow.runName", "value": RANDOM_RUN_NAME}],
    }
    assert _norm({"run_name": "train"}) == {"run_name": "train"}


def test_html_404_equals_endpoint_not_found_json() -> None:
    html = Answer(404, None, "<html>Not Found</html>")
    json_404 = Answer(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "x"}, "")
    wrong = Answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}, "")
    assert differences(html, json_404, None, json_404.body) == []
    assert differences(html, wrong, None, wrong.body)


def test_status_and_error_code_are_compared() -> None:
    ref = Answer(400, {"error_code": "RESOURCE_ALREADY_EXISTS"}, "")
    tgt = Answer(409, {"error_code": "RESOURCE_ALREADY_EXISTS"}, "")
    assert any(line.startswith("status") for line in differences(ref, tgt, ref.body, tgt.body))


def test_json_numbers_compare_by_value_but_not_with_booleans() -> None:
    assert _diff({"value": 1}, {"value": 1.0}) == []
    assert _diff({"value": 1}, {"value": True})
    assert _diff({"value": 1}, {"value": "1"})


def test_missing_and_extra_keys_are_reported() -> None:
    found = _diff({"a": 1, "b": 2}, {"a": 1, "c": 3})
    assert any("b: missing in target" in line for line in found)
    assert any("c: not in reference" in line for line in found)


def test_lists_are_ordered_unless_declared_unordered() -> None:
    ref = {"run": {"data": {"tags": [{"key": "a"}, {"key": "b"}]}}}
    tgt = {"run": {"data": {"tags": [{"key": "b"}, {"key": "a"}]}}}
    assert _diff(ref, tgt)
    assert _diff(shape(ref, ["run.data.tags"], []), shape(tgt, ["run.data.tags"], [])) == []


def test_message_rules() -> None:
    rule = MessageRule(prefix="Experiment(name=x) already exists.")
    body = {
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": "Experiment(name=x) already exists. Error: db",
    }
    assert apply_message_rule(body, rule)["message"] == rule.label()
    other = {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "duplicate"}
    assert apply_message_rule(other, rule) == other
    assert (
        apply_message_rule(body, MessageRule(regex=""))["message"] == MessageRule(regex="").label()
    )


def test_paths() -> None:
    body: dict[str, Any] = {"runs": [{"data": {"tags": [2, 1]}}, {"data": {}}], "next": "t"}
    assert paths.extract(body, "runs[0].data.tags[1]") == 1
    paths.update(body, "runs[*].data.tags", sorted)
    assert body["runs"][0]["data"]["tags"] == [1, 2]
    paths.remove(body, "next")
    assert "next" not in body


def test_substitution_keeps_json_types() -> None:
    variables = {"n": 5, "run": RUN_A}
    assert substitute({"a": "${n}", "b": "x-${n}", "c": ["${run}"]}, variables) == {
        "a": 5,
        "b": "x-5",
        "c": [RUN_A],
    }
    with pytest.raises(CaseError):
        substitute("${nope}", variables)


def _case(*steps: Step) -> LoadedCase:
    return LoadedCase("c", "m", steps, frozenset(step_endpoint(s) for s in steps), "")


def test_gate_needs_every_endpoint() -> None:
    both = _case({"method": "GET", "path": "/a?x=1"}, {"method": "GET", "path": "/b"})
    unknown = _case({"method": "GET", "path": "/nope", "unknown_endpoint": True})
    assert gated([both, unknown], frozenset({"/a"})) == []
    assert gated([both, unknown], frozenset({"/a", "/b", UNKNOWN_ENDPOINT})) == [both, unknown]


def test_case_files_load_and_declare_their_endpoints() -> None:
    cases = load_cases()
    assert len(cases) >= 250
    assert len({case.id for case in cases}) == len(cases)


def test_reference_crash_needs_a_400_from_the_target() -> None:
    crash = Answer(500, None, "Internal Server Error")
    refused = Answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "x"}, "")
    assert differences(crash, refused, None, None) == []
    accepted = Answer(200, {}, "{}")
    assert differences(crash, accepted, None, None)
    other = Answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}, "")
    assert differences(crash, other, None, None)


def test_compared_headers_differ_when_absent_on_one_side() -> None:
    ref = Answer(200, None, "", {"content-type": "text/plain"})
    assert differences(ref, Answer(200, None, "", {"content-type": "text/plain"}), None, None) == []
    assert differences(ref, Answer(200, None, "", {}), None, None)
    assert differences(Answer(200, None, "", {}), ref, None, None)


def test_path_parameters_and_artifact_paths_map_to_route_templates() -> None:
    model: Step = {"method": "GET", "path": "/api/2.0/mlflow/logged-models/${model}/tags/${k}"}
    assert step_endpoint(model) == "/api/2.0/mlflow/logged-models/{}/tags/{}"
    artifact: Step = {"method": "GET", "path": "/api/2.0/mlflow-artifacts/artifacts/${uid}/a/b"}
    assert step_endpoint(artifact) == "/api/2.0/mlflow-artifacts/artifacts/{}"


def test_generated_endpoints_are_all_mapped_to_mlflow_rpcs() -> None:
    # Every route of the table the generators enumerate has MLflow's rpc behind it, except the
    # ones MLflow registers by hand and Sluice's own part-upload route.
    unmapped = {e.route.path for e in surface.endpoints() if e.rpc is None}  # GenAI: excluded
    assert unmapped <= {
        "/mlflow/metrics/get-history-bulk",
        "/mlflow/server-info",
        "/mlflow-artifacts/mpu/create/{artifact_path:.*}",
        "/mlflow-artifacts/mpu/complete/{artifact_path:.*}",
        "/mlflow-artifacts/mpu/abort/{artifact_path:.*}",
        "/mlflow-artifacts/mpu/part/{upload_id}/{part_number:[0-9]{1,5}}",
    }, unmapped


def test_printed_python_sets_are_compared_as_sets() -> None:
    ids, window = IdMap(), Window(0, 1)
    a = normalise({"message": "not one of '{'=', 'IN', '!='}'"}, ids, window)
    b = normalise({"message": "not one of '{'!=', '=', 'IN'}'"}, ids, window)
    assert a == b
    c = normalise({"message": "not one of '{'!=', '=', 'LIKE'}'"}, ids, window)
    assert a != c


def test_a_database_error_passed_on_by_mlflow_is_a_crash() -> None:
    leaked = Answer(
        400, {"error_code": "BAD_REQUEST", "message": "(sqlite3.ProgrammingError) x"}, ""
    )
    refused = Answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "y"}, "")
    assert differences(leaked, refused, None, None) == []
    # A target that reproduces the database error is compared as usual (message rules).
    mimic = Answer(
        400, {"error_code": "BAD_REQUEST", "message": "(sqlite3.ProgrammingError) x"}, ""
    )
    assert differences(leaked, mimic, leaked.body, mimic.body) == []


def test_a_database_overflow_answered_as_internal_error_is_a_crash() -> None:
    # MLflow wraps sqlite3's OverflowError in a JSON 500: bad input, so the target's 400 passes.
    overflow = Answer(
        500,
        {
            "error_code": "INTERNAL_ERROR",
            "message": "Python int too large to convert to SQLite INTEGER",
        },
        "",
    )
    refused = Answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "y"}, "")
    assert differences(overflow, refused, None, None) == []
    # So is an uncaught Python exception MLflow answers as a JSON 500 with its own text.
    for text in (
        "type object 'SqlLoggedModel' has no attribute 'x'",
        "could not convert string to float: \"'a'\"",
    ):
        python = Answer(500, {"error_code": "INTERNAL_ERROR", "message": text}, "")
        assert differences(python, refused, None, None) == []
    # Any other JSON 500 is an answer MLflow means (duplicate order_by fields): compared.
    meant = Answer(500, {"error_code": "INTERNAL_ERROR", "message": "duplicate fields"}, "")
    assert differences(meant, refused, meant.body, refused.body)


def test_pending_entries_name_existing_cases() -> None:
    known = {case.id for case in load_cases()}
    assert set(PENDING) <= known, sorted(set(PENDING) - known)[:5]
