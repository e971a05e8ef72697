"""The hostile-request table of the bad-input test (issue 6): bodies, headers and the answer
MLflow gives (checked against a reference `mlflow server` 3.17 when the table was written), or
Sluice's documented answer where MLflow has no equivalent (body-size bounds, gzip bodies).

``RUN`` in a body is replaced by an active run's id. ``expect`` is (status, error_code); an
error_code of None means "200 with MLflow's empty answer" (a documented acceptance).
"""

from __future__ import annotations

import dataclasses
import io
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RUN = "__RUN__"
BAD = (400, "INVALID_PARAMETER_VALUE")
MISSING = (400, "INVALID_PARAMETER_VALUE")
OK = (200, None)
NOT_FOUND = (404, "RESOURCE_DOES_NOT_EXIST")

Body = bytes | Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Hostile:
    name: str
    path: str  # ingest or api path under /api/2.0/mlflow/
    body: Body
    expect: tuple[int, str | None]
    service: str = "ingest"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _j(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def _metric(**overrides: Any) -> dict[str, Any]:
    return {"key": "m", "value": 1.0, "timestamp": 1_700_000_000_000, "step": 0, **overrides}


def batch(**metric_overrides: Any) -> bytes:
    return _j({"run_id": RUN, "metrics": [_metric(**metric_overrides)]})


def raw_value(literal: str) -> bytes:
    """A log-batch whose metric value is the JSON text ``literal`` verbatim (NaN, 1e999...)."""
    return (
        '{"run_id": "' + RUN + '", "metrics": [{"key": "m", "value": ' + literal + ","
        ' "timestamp": 1700000000000, "step": 0}]}'
    ).encode()


def _chunked(total: int) -> Callable[[], AsyncIterator[bytes]]:
    async def gen() -> AsyncIterator[bytes]:
        yield b'{"run_id": "' + RUN.encode() + b'", "pad": "'
        sent = 0
        while sent < total:
            yield b"x" * 65536
            sent += 65536
        yield b'"}'

    return gen


def _gzip_bomb(size: int) -> bytes:
    """``size`` bytes of JSON-ish padding, gzip-compressed (1 GB -> ~1 MB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(b'{"run_id": "x", "pad": "')]
    block = b"0" * (1 << 20)
    for _ in range(size >> 20):
        out.append(comp.compress(block))
    out.append(comp.compress(b'"}'))
    out.append(comp.flush())
    return b"".join(out)


def _gzip(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


LB = "runs/log-batch"
FIVE_MB = 5 * 1024 * 1024

NAMES = {
    "dotdot-slash": "../x",
    "abs-path": "/abs",
    "double-slash": "a//b",
    "dot-segment": "a/./b",
    "dotdot-inside": "a/../b",
    "just-dotdot": "..",
    "empty": "",
    "251-chars": "k" * 251,
    "nul": "a\u0000b",
    "emoji": "loss\U0001f600",
    "sql": "a;drop table runs",
    "backslash": "a\\b",
    "tab": "a\tb",
    "newline": "a\nb",
}

# Expected answers of the name cases (MLflow's _validate_metric_name).
NAME_EXPECT = {name: BAD for name in NAMES}

VALUES = {
    "nan-literal": "NaN",
    "inf-literal": "Infinity",
    "neg-inf-literal": "-Infinity",
    "nan-string": '"NaN"',
    "nan-lower-string": '"nan"',
    "inf-string": '"Infinity"',
    "inf-short-string": '"inf"',
    "neg-inf-string": '"-Infinity"',
    "neg-inf-short-string": '"-inf"',
    "plus-inf-string": '"+Infinity"',
    "neg-zero": "-0.0",
    "neg-zero-string": '"-0.0"',
    "overflow-1e999": "1e999",
    "neg-overflow": "-1e999",
    "max-double": "1.7976931348623157e308",
    "denormal": "5e-324",
    "numeric-string": '"1.5"',
    "word-string": '"abc"',
    "true": "true",
    "null": "null",
    "list": "[1]",
    "object": '{"a": 1}',
    "hex-string": '"0x10"',
}

# Where MLflow's log-batch answers 200 but stores the malformed field as 0. For the integer
# fields (step and timestamp: 1.5, 2^63, "abc", true) Sluice now does what MLflow does -- issue
# 14's class 1: refusing made every later read of the run differ from MLflow's -- and the
# generated compat cases compare those reads. A metric value that is not a number is still
# refused: storing 0.0 for "abc" is not a documented acceptance.
MLFLOW_STORES_ZEROS = frozenset(
    {
        "value-word-string",
        "value-list",
        "value-object",
        "value-hex-string",
    }
)

# MLflow 3.17 stores all of these (NaN as is_nan, ±Inf as ±DOUBLE_MAX, numeric strings parsed)
# except a null value.
VALUE_EXPECT: dict[str, tuple[int, str | None]] = {**dict.fromkeys(VALUES, OK), "null": BAD}

STEPS_AND_TIMES: dict[str, bytes] = {
    "step-float": batch(step=1.5),
    "step-2^63": batch(step=2**63),
    "step-minus-2^63-1": batch(step=-(2**63) - 1),
    "step-int64-max": batch(step=2**63 - 1),
    "step-string-int": batch(step="7"),
    "step-string-word": batch(step="seven"),
    "step-bool": batch(step=True),
    "timestamp-negative": batch(timestamp=-1),
    "timestamp-float": batch(timestamp=1.5),
    "timestamp-2^63": batch(timestamp=2**63),
    "timestamp-string-word": batch(timestamp="now"),
    "timestamp-missing": _j({"run_id": RUN, "metrics": [{"key": "m", "value": 1.0, "step": 0}]}),
    "value-missing": _j({"run_id": RUN, "metrics": [{"key": "m", "timestamp": 1, "step": 0}]}),
    "key-missing": _j({"run_id": RUN, "metrics": [{"value": 1.0, "timestamp": 1, "step": 0}]}),
}

# MLflow 3.17 (the reference server) accepts these step/timestamp spellings and rejects a
# negative timestamp and missing fields.
STEP_EXPECT: dict[str, tuple[int, str | None]] = {
    **dict.fromkeys(STEPS_AND_TIMES, OK),
    "timestamp-negative": BAD,
    "timestamp-missing": BAD,
    "value-missing": BAD,
    "key-missing": BAD,
}

SHAPES: dict[str, tuple[bytes, dict[str, str] | None]] = {
    "not-json": (b"{nope", None),
    "truncated-json": (b'{"run_id": "', None),
    "empty-body": (b"", None),
    "top-level-list": (b"[]", None),
    "top-level-number": (b"123", None),
    "top-level-null": (b"null", None),
    "invalid-utf8": (b'{"run_id": "\xff\xfe"}', None),
    "deep-nesting": (b'{"run_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    "missing-run-id": (_j({"metrics": [_metric()]}), None),
    "run-id-number": (_j({"run_id": 5, "metrics": [_metric()]}), None),
    "run-id-traversal": (_j({"run_id": "../../etc/passwd", "metrics": [_metric()]}), None),
    "run-id-unknown": (_j({"run_id": "f" * 32, "metrics": [_metric()]}), None),
    "metrics-not-list": (_j({"run_id": RUN, "metrics": {"key": "m"}}), None),
    "metric-not-object": (_j({"run_id": RUN, "metrics": [5]}), None),
    "1001-metrics": (_j({"run_id": RUN, "metrics": [_metric(step=i) for i in range(1001)]}), None),
    "101-params": (
        _j({"run_id": RUN, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}),
        None,
    ),
    "dup-params": (
        _j({"run_id": RUN, "params": [{"key": "p", "value": "a"}, {"key": "p", "value": "b"}]}),
        None,
    ),
    "unknown-field": (_j({"run_id": RUN, "metrics": [_metric()], "bogus": 1}), None),
    "content-type-text": (batch(), {"Content-Type": "text/plain"}),
    "content-type-form": (batch(), {"Content-Type": "application/x-www-form-urlencoded"}),
    "content-type-missing": (batch(), {}),
    "content-type-multipart": (batch(), {"Content-Type": "multipart/form-data; boundary=x"}),
    "gzip-small-body": (
        _gzip(batch()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ),
    # Bodies that do not decode as their Content-Encoding says (aiohttp fails mid-read).
    "gzip-malformed": (
        b"not gzip at all",
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ),
    "deflate-malformed": (
        b"\xff" * 64,
        {"Content-Type": "application/json", "Content-Encoding": "deflate"},
    ),
}

# MLflow answers an HTML 500 for bodies that are not a JSON object, a metric that is not an
# object and a gzip body (it does not decode Content-Encoding); Sluice answers 400 there.
SHAPE_EXPECT: dict[str, tuple[int, str | None]] = {
    "not-json": BAD,
    "truncated-json": BAD,
    "empty-body": BAD,
    "top-level-list": BAD,
    "top-level-number": BAD,
    "top-level-null": BAD,
    "invalid-utf8": BAD,
    "deep-nesting": BAD,
    "missing-run-id": BAD,
    "run-id-number": BAD,
    "run-id-traversal": BAD,
    "run-id-unknown": NOT_FOUND,
    "metrics-not-list": BAD,
    "metric-not-object": BAD,
    "1001-metrics": BAD,
    "101-params": BAD,
    "dup-params": BAD,
    "unknown-field": OK,
    "content-type-text": BAD,
    "content-type-form": BAD,
    "content-type-missing": BAD,
    "content-type-multipart": BAD,
    "gzip-small-body": BAD,
    "gzip-malformed": BAD,
    "deflate-malformed": BAD,
}


def table() -> list[Hostile]:
    rows = _rows()
    return [
        dataclasses.replace(row, expect=BAD) if row.name in MLFLOW_STORES_ZEROS else row
        for row in rows
    ]


def _rows() -> list[Hostile]:
    rows: list[Hostile] = []
    for name, key in NAMES.items():
        rows.append(Hostile(f"name-{name}", LB, batch(key=key), NAME_EXPECT[name]))
    for name, literal in VALUES.items():
        rows.append(Hostile(f"value-{name}", LB, raw_value(literal), VALUE_EXPECT[name]))
    for name, body in STEPS_AND_TIMES.items():
        rows.append(Hostile(name, LB, body, STEP_EXPECT[name]))
    for name, (body, headers) in SHAPES.items():
        h = {"Content-Type": "application/json"} if headers is None else headers
        rows.append(Hostile(name, LB, body, SHAPE_EXPECT[name], headers=h))
    rows += [
        Hostile(
            "oversized-declared-5MB",
            LB,
            b'{"run_id": "' + RUN.encode() + b'", "pad": "' + b"x" * FIVE_MB + b'"}',
            BAD,
        ),
        Hostile("oversized-chunked-5MB", LB, _chunked(FIVE_MB), BAD),
        Hostile(
            "gzip-bomb-1GB",
            LB,
            _gzip_bomb(1 << 30),
            BAD,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        Hostile(
            "log-metric-string-value",
            "runs/log-metric",
            _j({"run_id": RUN, **_metric(value="x")}),
            BAD,
        ),
        Hostile(
            "log-metric-251-key",
            "runs/log-metric",
            _j({"run_id": RUN, **_metric(key="k" * 251)}),
            BAD,
        ),
        Hostile(
            "log-param-dotdot",
            "runs/log-parameter",
            _j({"run_id": RUN, "key": "../x", "value": "v"}),
            BAD,
        ),
        Hostile(
            "set-tag-nul-key",
            "runs/set-tag",
            _j({"run_id": RUN, "key": "a\u0000", "value": "v"}),
            BAD,
        ),
        # The api: reads with hostile parameters.
        Hostile(
            "api-history-dotdot-key",
            "metrics/get-history?run_id=" + RUN + "&metric_key=../x",
            b"",
            OK,
            service="api",
            method="GET",
        ),
        Hostile(
            "api-get-run-traversal",
            "runs/get?run_id=../../etc/passwd",
            b"",
            NOT_FOUND,
            service="api",
            method="GET",
        ),
        Hostile(
            "api-history-max-results-huge",
            "metrics/get-history?run_id=" + RUN + "&metric_key=m&max_results=99999999999999999999",
            b"",
            OK,
            service="api",
            method="GET",
        ),
        Hostile(
            "api-experiment-id-word",
            "experiments/get?experiment_id=abc",
            b"",
            BAD,
            service="api",
            method="GET",
        ),
        Hostile(
            "api-search-runs-sql",
            "runs/search",
            _j({"experiment_ids": ["0"], "filter": "metrics.m > 1; DROP TABLE runs"}),
            BAD,
            service="api",
        ),
    ]
    return rows


async def send(
    session: aiohttp.ClientSession, base: str, case: Hostile, run_id: str
) -> tuple[int, str | None]:
    """(status, error_code) of ``case`` sent to ``base``; error_code None for a 200."""
    url = f"{base}/api/2.0/mlflow/{case.path.replace(RUN, run_id)}"
    data: Any = (
        case.body()
        if callable(case.body)
        else io.BytesIO(case.body.replace(RUN.encode(), run_id.encode()))
    )
    skip = [] if "Content-Type" in case.headers else ["Content-Type"]
    try:
        async with session.request(
            case.method,
            url,
            data=data if case.method == "POST" else None,
            headers=case.headers if case.method == "POST" else None,
            skip_auto_headers=skip,
        ) as response:
            text = await response.read()
            status = response.status
    except aiohttp.ClientConnectionError:
        return 0, "connection closed"
    if status == 200:
        return 200, None
    try:
        return status, json.loads(text).get("error_code")
    except (ValueError, AttributeError):
        return status, f"non-JSON: {text[:60]!r}"
