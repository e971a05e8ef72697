"""Pure comparison of one step's two answers, after normalisation.

Compared: the status code, the error code as the MLflow client would see it, and the JSON
bodies. A non-JSON error page (MLflow answers unknown routes with Flask's HTML 404) is
equivalent to a JSON error carrying the code the client derives from the status, because that
is all the client can tell apart (`mlflow/exceptions.py` HTTP_STATUS_TO_ERROR_CODE).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.compat import paths

# What the MLflow client calls a non-JSON error response, by status (others: INTERNAL_ERROR).
CLIENT_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MAX_REPORTED = 8
# MLflow's answer to bad input is a crash, not a contract, when an uncaught exception reaches
# Flask (a 500 with its HTML page, no MLflow JSON): Sluice answers 400 INVALID_PARAMETER_VALUE
# instead (house rule: bad input never gets a 500). A 500 carrying MLflow's JSON is an
# MlflowException MLflow raises on purpose (duplicate order_by fields) and is compared as is.
CRASH_STATUSES = frozenset({500, 502})


@dataclass(frozen=True, slots=True)
class Answer:
    """One server's response to one step; `body` is the parsed JSON or None."""

    status: int
    body: Any
    text: str
    headers: dict[str, str] | None = None  # only the headers a step compares, names lowercased

    @property
    def is_json(self) -> bool:
        return self.body is not None

    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error_code"), str):
            return str(self.body["error_code"])
        if self.status < 400:
            return None
        return CLIENT_CODE_BY_STATUS.get(self.status, "INTERNAL_ERROR")


@dataclass(frozen=True, slots=True)
class MessageRule:
    """How error messages are compared: exactly (both None), by prefix, or by regex."""

    prefix: str | None = None
    regex: str | None = None

    def label(self) -> str:
        return f"<prefix {self.prefix!r}>" if self.prefix is not None else f"<regex {self.regex!r}>"

    def matches(self, message: str) -> bool:
        if self.prefix is not None:
            return message.startswith(self.prefix)
        return self.regex is not None and re.search(self.regex, message) is not None

    @property
    def exact(self) -> bool:
        return self.prefix is None and self.regex is None


def apply_message_rule(body: Any, rule: MessageRule) -> Any:
    """Replace a matching error message by the rule's label; a non-matching one stays visible."""
    if rule.exact or not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return body
    if rule.matches(body["message"]):
        return {**body, "message": rule.label()}
    return body


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def shape(body: Any, unordered: list[str], ignore: list[str]) -> Any:
    """Sort the `unordered` lists and drop the `ignore` paths (in place; returns the body)."""
    for path in ignore:
        paths.remove(body, path)
    for path in unordered:
        paths.update(body, path, lambda v: sorted(v, key=_sort_key) if isinstance(v, list) else v)
    return body


# MLflow passes some database errors on as a 400 whose message is the driver's text (a list
# value bound to `=`), or as a 500 INTERNAL_ERROR (sqlite3's own overflow text for an integer
# beyond 64 bits), and answers some uncaught Python exceptions as a JSON 500 INTERNAL_ERROR
# with the exception's own text (a logged-model filter naming a column its table lacks, a
# number that is not one, a v2 StartTrace without an experiment id, a v2 EndTrace whose
# status is unset): a crash as well, whatever its status says.
_DATABASE_ERROR = re.compile(
    r"^\((sqlite3|psycopg2|sqlalchemy)\.|^Python int too large to convert to SQLite INTEGER$"
    r"|^type object 'Sql\w+' has no attribute '|^could not convert string to float: "
    r"|^invalid literal for int\(\) with base 10: |^<TraceStatus\.\w+: '\w+'> is not a valid"
)


def crashed(reference: Answer, target: Answer) -> bool:
    """MLflow answered with a crash (an uncaught exception, or a database error passed on) that
    the target does not reproduce. A target mimicking the database error (status and code, the
    message compared by the step's rule) is compared as usual."""
    if reference.status in CRASH_STATUSES and not (
        isinstance(reference.body, dict) and "error_code" in reference.body
    ):
        return True
    message = reference.body.get("message") if isinstance(reference.body, dict) else None
    if not (isinstance(message, str) and _DATABASE_ERROR.match(message)):
        return False
    return (target.status, target.error_code()) != (reference.status, reference.error_code())


def differences(reference: Answer, target: Answer, ref_body: Any, tgt_body: Any) -> list[str]:
    """Human-readable differences between two answers whose bodies are already normalised."""
    if crashed(reference, target):
        if target.status == 400 and target.error_code() == "INVALID_PARAMETER_VALUE":
            return []
        return [
            f"reference crashed ({reference.status}); target must answer 400 "
            f"INVALID_PARAMETER_VALUE, answered {target.status} {target.text[:200]!r}"
        ]
    found: list[str] = []
    ref_headers, tgt_headers = reference.headers or {}, target.headers or {}
    for name in sorted(ref_headers.keys() | tgt_headers.keys()):
        value, other = ref_headers.get(name), tgt_headers.get(name)
        if other != value:
            found.append(f"header {name}: reference {value!r}, target {other!r}")
    if reference.status != target.status:
        found.append(f"status: reference {reference.status}, target {target.status}")
    if reference.error_code() != target.error_code():
        found.append(
            f"error_code: reference {reference.error_code()}, target {target.error_code()}"
        )
    if reference.is_json and target.is_json:
        _diff(ref_body, tgt_body, "", found)
    elif reference.is_json != target.is_json and reference.status < 400:
        kind = {True: "JSON", False: "non-JSON"}
        found.append(
            f"body: reference {kind[reference.is_json]}, target {kind[target.is_json]} "
            f"({target.text[:200]!r})"
        )
    return found[:MAX_REPORTED] + (["..."] if len(found) > MAX_REPORTED else [])


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 300 else text[:300] + "..."


def _diff(ref: Any, tgt: Any, where: str, found: list[str]) -> None:
    here = where or "<body>"
    if isinstance(ref, dict) and isinstance(tgt, dict):
        for key in ref.keys() | tgt.keys():
            child = f"{where}.{key}" if where else key
            if key not in tgt:
                found.append(f"{child}: missing in target (reference {_show(ref[key])})")
            elif key not in ref:
                found.append(f"{child}: not in reference (target {_show(tgt[key])})")
            else:
                _diff(ref[key], tgt[key], child, found)
    elif isinstance(ref, list) and isinstance(tgt, list) and len(ref) == len(tgt):
        for i, (a, b) in enumerate(zip(ref, tgt, strict=True)):
            _diff(a, b, f"{where}[{i}]", found)
    elif isinstance(ref, list) and isinstance(tgt, list):
        found.append(
            f"{here}: reference {len(ref)} items {_show(ref)}, target {len(tgt)} items {_show(tgt)}"
        )
    elif not _same_scalar(ref, tgt):
        found.append(f"{here}: reference {_show(ref)}, target {_show(tgt)}")


def _same_scalar(ref: Any, tgt: Any) -> bool:
    """Equal values of the same JSON type; 1 and 1.0 are the same JSON number, True is not 1."""
    numbers = (int, float)
    if isinstance(ref, bool) or isinstance(tgt, bool):
        return type(ref) is type(tgt) and ref == tgt
    if isinstance(ref, numbers) and isinstance(tgt, numbers):
        return ref == tgt
    return type(ref) is type(tgt) and ref == tgt
