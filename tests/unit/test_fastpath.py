"""The fast path may only ever agree with the general validator: for every body it accepts,
the general path returns the same points; anything unusual is handed back (None)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import fastpath, validate
from schemas.mlflow_errors import MlflowError
from schemas.protojson import parse_json_body

CT = "application/json"
RUN = "0123456789abcdef0123456789abcdef"


def _general_batch(raw: bytes) -> tuple[str, list[Any]] | None:
    try:
        batch = validate.validate_log_batch(parse_json_body(raw, CT, "POST"))
    except MlflowError:
        return None
    return batch.run_id, batch.metrics


def _body(**doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_common_batch_takes_the_fast_path_with_identical_result() -> None:
    raw = _body(
        run_id=RUN,
        metrics=[
            {"key": f"k{i % 3}", "value": i * 0.5, "timestamp": 10, "step": i} for i in range(50)
        ]
        + [{"key": "int", "value": 7, "timestamp": 0}]
        + [{"key": "big", "value": 2**60 + 1, "timestamp": 0, "step": -(2**63)}],
    )
    fast = fastpath.log_batch(raw, CT)
    assert fast is not None
    assert fast == _general_batch(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _body(run_id=RUN, metrics=[{"key": "k", "value": "NaN", "timestamp": 1}]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": True, "timestamp": 1}]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": 1.0, "timestamp": -1}]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": 1.0, "timestamp": 1, "step": 1.5}]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": 1.0, "timestamp": 1, "step": 2**63}]),
        _body(run_id=RUN, metrics=[{"key": "../x", "value": 1.0, "timestamp": 1}]),
        _body(run_id=RUN, metrics=[{"key": "k" * 251, "value": 1.0, "timestamp": 1}]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": 1.0, "timestamp": 1, "model_id": "m"}]),
        _body(run_id=RUN, metrics=[], params=[{"key": "p", "value": "v"}]),
        _body(run_uuid=RUN, metrics=[]),
        _body(run_id="../bad", metrics=[]),
        _body(run_id=RUN, metrics=[{"key": "k", "value": 1.0, "timestamp": 1}] * 1001),
        b'"{\\"run_id\\": \\"x\\"}"',
        b'{"run_id": "\xff\xfe", "metrics": []}',  # invalid UTF-8 (msgspec: UnicodeDecodeError)
        b"not json",
    ],
)
def test_unusual_bodies_go_to_the_general_validator(raw: bytes) -> None:
    assert fastpath.log_batch(raw, CT) is None


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/jsonx"])
def test_other_content_types_go_to_the_general_validator(content_type: str | None) -> None:
    assert fastpath.log_batch(_body(run_id=RUN, metrics=[]), content_type) is None


def test_single_metric_fast_path_matches_general_validator() -> None:
    doc = {"run_id": RUN, "run_uuid": RUN, "key": "acc", "value": 0.25, "timestamp": 5, "step": -3}
    raw = orjson.dumps(doc)
    general = validate.validate_log_metric(parse_json_body(raw, CT, "POST"))
    assert fastpath.log_metric(raw, CT) == (general.run_id, general.point)
    assert fastpath.log_metric(orjson.dumps({**doc, "run_uuid": "other"}), CT) is None


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    st.text(max_size=5),
)
_metric = st.fixed_dictionaries(
    {"key": st.text(max_size=8), "value": _numbers, "timestamp": _numbers},
    optional={"step": _numbers, "model_id": st.text(max_size=3)},
)


@settings(max_examples=5000, deadline=None)
@given(st.lists(_metric, max_size=6), st.sampled_from([RUN, "", "x y", "a" * 300]))
def test_fast_path_never_disagrees(metrics: list[dict[str, Any]], run_id: str) -> None:
    try:
        raw = json.dumps({"run_id": run_id, "metrics": metrics}).encode()
    except ValueError:
        return
    fast = fastpath.log_batch(raw, CT)
    if fast is not None:
        assert fast == _general_batch(raw)
