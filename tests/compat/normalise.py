"""Pure normalisation of response bodies, so that two correct servers produce equal bodies.

What legitimately differs between two servers and is therefore replaced:
- ids: experiment and run ids become placeholders, named after the case variable that captured
  them (`<exp>`, `<run>`) or numbered by first appearance (`<id1>`); the mapping is per case and
  per server, so a body that mixes up two ids still differs after normalisation;
- "now" timestamps in `*_time` / `*_timestamp` fields (values a case sets explicitly are kept);
- the root of `artifact_location` / `artifact_uri` (`mlflow-artifacts:` vs `s3://bucket/x`);
- random run names (`adjective-noun-123`) and opaque page tokens;
- the order of a Python set of quoted strings printed into a message (`'{'b', 'a'}'`): MLflow's
  iteration order depends on the process's string hash seed, so it differs between two starts
  of the same server; the items are sorted.
Everything else, including error messages, is compared as sent. GraphQL answers name the
same fields in camelCase (``runUuid``, ``startTime`` as a string): they are classified by
their snake_case spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ID_FIELDS = frozenset(
    {"experiment_id", "experiment_ids", "run_id", "run_uuid", "run_ids", "source_run_id"}
)
# mlflow.artifactLocation: a trace's tag, below its experiment's artifact location
# (keys are compared in their snake_case spelling, hence "mlflow.artifact_location").
ARTIFACT_FIELDS = frozenset(
    {"artifact_location", "artifact_uri", "root_uri", "mlflow.artifact_location"}
)
TOKEN_FIELDS = frozenset({"next_page_token", "page_token"})
RUN_NAME_TAG = "mlflow.runName"
ARTIFACT_TAG = "mlflow.artifactLocation"
NOW = "<now>"
ROOT = "<root>"
TOKEN = "<token>"
RANDOM_RUN_NAME = "<random-run-name>"

_TIME_FIELD = re.compile(r"(^|_)(time|timestamp)(_ms)?$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_RANDOM_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,4}$")
# Run ids are uuid4 hex; canonical uuids for anything else a server may generate.
_HEX_ID = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?![0-9a-fA-F])"
)
# Numeric experiment ids inside messages, only where MLflow's texts put them
# ("id=5", "experiment 5 must", "experiment with id 5", "ID '5'"): a bare number elsewhere
# ("Got 101 params") is data, not an id.
_MESSAGE_NUMERIC_ID = re.compile(r"(id=|id |experiment |Experiment |ID ')(\d+)(?!\d)")


@dataclass
class IdMap:
    """Raw id -> placeholder, for one case on one server."""

    names: dict[str, str] = field(default_factory=dict)
    unnamed: int = 0

    def bind(self, raw: str, variable: str) -> None:
        """Name an id after the variable that captured it (the first name wins)."""
        self.names.setdefault(raw, f"<{variable}>")

    def placeholder(self, raw: str) -> str:
        if raw not in self.names:
            self.unnamed += 1
            self.names[raw] = f"<id{self.unnamed}>"
        return self.names[raw]

    def known(self, raw: str) -> str | None:
        return self.names.get(raw)


@dataclass(frozen=True, slots=True)
class Window:
    """Epoch-millisecond range of "now": the test session plus generous slack."""

    low_ms: int
    high_ms: int

    def is_now(self, value: int) -> bool:
        return self.low_ms <= value <= self.high_ms


def normalise(body: Any, ids: IdMap, window: Window) -> Any:
    """A normalised deep copy of a response body (see the module docstring)."""
    return _value(body, None, ids, window)


def _snake(key: str | None) -> str | None:
    return None if key is None else _CAMEL.sub("_", key).lower()


def _value(value: Any, key: str | None, ids: IdMap, window: Window) -> Any:
    key = _snake(key)
    if isinstance(value, str) and key and _TIME_FIELD.search(key) and value.isdigit():
        return NOW if window.is_now(int(value)) else value  # GraphQL's 64-bit integers
    if isinstance(value, dict):
        return _object(value, ids, window)
    if isinstance(value, list):
        return [_value(item, key, ids, window) for item in value]
    if isinstance(value, str):
        return _string(value, key, ids)
    if isinstance(value, int) and not isinstance(value, bool) and key and _TIME_FIELD.search(key):
        return NOW if window.is_now(value) else value
    return value


def _object(obj: dict[str, Any], ids: IdMap, window: Window) -> dict[str, Any]:
    # Id fields first: an artifact_uri in the same object can then be expressed in terms of them,
    # whatever order the server emitted the keys in.
    order = sorted(obj, key=lambda k: _snake(k) not in ID_FIELDS)
    out = {key: _value(obj[key], key, ids, window) for key in order}
    if out.get("key") == RUN_NAME_TAG and isinstance(out.get("value"), str):
        out["value"] = _run_name(out["value"])
    if out.get("key") == ARTIFACT_TAG and isinstance(obj.get("value"), str):  # v2 tag lists
        out["value"] = _artifact_uri(obj["value"], ids)
    return {key: out[key] for key in obj}


def _string(value: str, key: str | None, ids: IdMap) -> str:
    if key in ID_FIELDS:
        return ids.placeholder(value)
    if key in ARTIFACT_FIELDS:
        return _artifact_uri(value, ids)
    if key in TOKEN_FIELDS:
        return TOKEN
    if key in ("run_name", "name"):  # logged models get random names too, under "name"
        return _run_name(value)
    if key == "message":
        value = _MESSAGE_NUMERIC_ID.sub(lambda m: m[1] + (ids.known(m[2]) or m[2]), value)
        value = _PRINTED_SET.sub(_sorted_set, value)
    return _HEX_ID.sub(lambda m: ids.placeholder(m[0]), value)


_PRINTED_SET = re.compile(r"\{('[^'{}]*'(?:, '[^'{}]*')+)\}")
_SET_ITEM = re.compile(r"'[^'{}]*'")


def _sorted_set(match: re.Match[str]) -> str:
    return "{" + ", ".join(sorted(_SET_ITEM.findall(match[1]))) + "}"


def _artifact_uri(value: str, ids: IdMap) -> str:
    """`mlflow-artifacts:/3/<hex>/artifacts` -> `<root>/<exp>/<run>/artifacts`.

    Only segments that are ids already seen in this case are replaced; everything before the
    first of them is the server's storage root. A location without a known id (one the case
    chose explicitly) is left as it is.
    """
    segments = value.split("/")
    replaced = [ids.known(segment) or segment for segment in segments]
    first = next(
        (i for i, (a, b) in enumerate(zip(segments, replaced, strict=True)) if a != b), None
    )
    if first is None:
        return _HEX_ID.sub(lambda m: ids.placeholder(m[0]), value)
    # Later segments may hold ids the server made (a trace's `tr-<hex>`): numbered like any other.
    return _HEX_ID.sub(lambda m: ids.placeholder(m[0]), "/".join([ROOT, *replaced[first:]]))


def _run_name(value: str) -> str:
    return RANDOM_RUN_NAME if _RANDOM_NAME.match(value) else value
