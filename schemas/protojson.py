"""Decoding MLflow's proto-JSON requests the way the MLflow server does (pure; no I/O).

MLflow 3.17 (``mlflow/server/handlers.py``: ``_get_request_message``,
``_get_normalized_request_json``, ``_validate_param_against_schema``) turns a request into a
protobuf message in three steps:

1. the body is read with Flask's ``get_json(force=True, silent=True)`` after a Content-Type check
   (POST/PUT only), or the query string is used for a GET that has one;
2. ``ParseDict`` fills the message; a ``ParseError`` is *swallowed*;
3. a per-handler schema checks presence (``_assert_required``) and, only if step 2 failed, the
   JSON type of top-level fields (``_assert_string``, ``_assert_intlike``...).

When step 2 fails on a field the schema does not check (a nested field, ``step: 1.5``,
``step: 2**63``), MLflow silently stores the protobuf default (0 or ""). Sluice reproduces that
for integer fields (issue 14, class 1: a client's ``step: 1.5`` is accepted by MLflow, and every
later read depends on it); other getters accept exactly what ``ParseDict`` accepts and reject the
rest with a 400, using MLflow's own message where MLflow has one (``wrong_type``) and the same
``Invalid value ... for parameter '...' supplied`` template otherwise.

This module reads bodies and query strings into that document and holds the messages both
stages share; the typed field getters are ``schemas/fields.py`` and ``schemas/int_fields.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from schemas.mlflow_errors import API_DOCS_HINT, MlflowError, invalid_parameter

# A list, not a tuple: MLflow prints it into its message as "['application/json']".
JSON_CONTENT_TYPES: Final = ["application/json"]

_CONTENT_TYPE_CHECKED: Final = frozenset({"POST", "PUT"})
_UNPARSABLE: Final = object()

Doc = Mapping[str, Any]


# -- messages ---------------------------------------------------------------------------------


def invalid_value(path: str, value: Any, detail: str | None = None) -> MlflowError:
    """MLflow's ``invalid_value`` message (``mlflow/utils/validation.py``); no docs hint."""
    shown = _json_repr(value)
    if detail:
        return invalid_parameter(f"Invalid value {shown} for parameter '{path}' supplied: {detail}")
    return invalid_parameter(f"Invalid value {shown} for parameter '{path}' supplied.")


def wrong_type(path: str, value: Any) -> MlflowError:
    """The schema error MLflow raises when a field has the wrong JSON type, text for text.

    The double space after "supplied:" is MLflow's ("supplied: " + " Hint: ...").
    """
    return schema_error(path, value, f" Hint: Value was of type '{type(value).__name__}'.")


def schema_error(path: str, value: Any, detail: str) -> MlflowError:
    # Schema-stage errors end with the API docs hint; store-stage errors (names, limits) do not.
    return invalid_parameter(f"{invalid_value(path, value, detail).message} {API_DOCS_HINT}")


def _json_repr(value: Any) -> str:
    # The same rendering as MLflow: sorted keys, compact separators, ASCII escapes, NaN as NaN.
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # ints over 4300 digits; nesting near the stack limit
        return f"<{type(value).__name__}>"


# -- bodies and query strings -------------------------------------------------------------------


def parse_json_body(raw: bytes, content_type: str | None, method: str) -> dict[str, Any]:
    """The request document of a body, as MLflow's ``_get_normalized_request_json`` builds it.

    ``content_type`` is the raw ``Content-Type`` header (None when absent; not aiohttp's parsed
    ``request.content_type``, which defaults to application/octet-stream). POST and PUT must send
    ``application/json`` exactly (parameters after ``;`` ignored, no case folding, no trimming).
    Unparsable JSON, an empty body and ``null`` give ``{}``, so handlers answer "Missing value for
    required parameter". A JSON string is decoded once more (legacy double-encoding clients).
    Raises MlflowError (400) for a bad Content-Type or a top level that is not an object.
    """
    if method in _CONTENT_TYPE_CHECKED:
        check_content_type(content_type)
    doc = _loads(raw)
    if isinstance(doc, str):
        doc = _loads(doc)  # inner text that is not JSON is a 500 in MLflow; here a 400 below
        if doc is _UNPARSABLE:
            _not_an_object()
    if doc is None or doc is _UNPARSABLE:
        return {}
    if not isinstance(doc, dict):
        _not_an_object()
    return doc


def check_content_type(content_type: str | None) -> None:
    """MLflow's ``_validate_content_type`` for POST/PUT; raises MlflowError (400)."""
    if content_type is None:
        raise invalid_parameter("Bad Request. Content-Type header is missing.")
    # MLflow splits on ";" and compares the rest verbatim: "application/json ; x" is rejected.
    if content_type.split(";")[0] not in JSON_CONTENT_TYPES:
        raise invalid_parameter(f"Bad Request. Content-Type must be one of {JSON_CONTENT_TYPES}.")


def _loads(data: bytes | str) -> Any:
    """``json.loads`` as Flask calls it, or _UNPARSABLE where Flask's ``silent=True`` gives None.

    The standard library, not orjson: orjson turns integers beyond 64 bits into floats
    (-2**63-1 would become -2**63 and pass the int64 check), and rejects the NaN/Infinity
    literals and byte-order marks Flask accepts.
    """
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: a 500 in MLflow, "unparsable" here
        return _UNPARSABLE


def _not_an_object() -> NoReturn:
    # MLflow answers a 500 (its schema check calls .get on a list, number or bool).
    raise invalid_parameter("Bad Request. The request body must be a JSON object.")


def query_to_dict(pairs: list[tuple[str, str]], repeated: frozenset[str]) -> dict[str, Any]:
    """A GET query string as the request document (MLflow's ``_get_request_message``).

    Fields in ``repeated`` become lists of all their values; any other field keeps its *first*
    value (werkzeug ``MultiDict.get``; checked against MLflow 3.17.2: ``?key=a&key=b`` logs "a").
    MLflow uses the query string only when it is non-empty; a GET without one reads the body via
    ``parse_json_body``. Values stay strings: the getters parse them as ``ParseDict`` would.
    """
    doc: dict[str, Any] = {}
    for name, value in pairs:
        if name in repeated:
            doc.setdefault(name, []).append(value)
        elif name not in doc:
            doc[name] = value
    return doc
