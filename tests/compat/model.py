"""What a case is, where cases come from, and which of them the gate lets run.

A case is a list of steps sent in order to both servers. Each case file (a module in
`tests/compat/cases/`) exports `ENDPOINTS`, the endpoints its cases use, and `CASES`. A case
runs only when every endpoint its steps touch is listed in `implemented.txt`; the others are
not collected at all (never skipped), so the suite grows with Sluice one line at a time.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Required, TypedDict

# Pseudo-endpoint for steps that call a path no server implements (404 expected).
UNKNOWN_ENDPOINT = "unknown-endpoints"
CASES_PACKAGE = "tests.compat.cases"
GATE_FILE = Path(__file__).with_name("implemented.txt")
ARTIFACT_TAIL = "/mlflow-artifacts/artifacts/"


class StepOptions(TypedDict, total=False):
    """Everything about a step but its method and path."""

    query: Mapping[str, str | Sequence[str]]  # lists become repeated keys, as the client sends
    json: Any  # JSON body; POST/PUT/PATCH/DELETE bodies carry Content-Type: application/json
    data: str  # raw body text instead of `json` (malformed or double-encoded JSON)
    headers: Mapping[str, str]  # replaces the default headers (e.g. to drop Content-Type)
    capture: Mapping[str, str]  # variable -> path in the response body, e.g. "run.info.run_id"
    expect: int  # status the *reference* must answer: checks that the case tests what it says
    message_prefix: str  # compare error messages only up to this prefix (must match both)
    message_regex: str  # compare error messages by this regex (must match both) instead
    unordered: Sequence[str]  # paths of lists compared as multisets ("runs[*].data.tags")
    ignore: Sequence[str]  # paths removed from both bodies before comparing
    unknown_endpoint: bool  # the path is deliberately not an endpoint of either server
    body_bytes: str  # raw body sent as UTF-8 with the step's own `headers` (artifact uploads)
    compare_headers: Sequence[str]  # response headers compared exactly (absent = None)
    raw_query: str  # the query string verbatim (after `?`), instead of `query`


class Step(StepOptions):
    """One request, sent to both servers, and how to compare the two answers.

    `${var}` in path, query and body is replaced by the value captured earlier *on the same
    server*; `${uid}` is a name unique to the case and session, the same on both servers.
    """

    method: Required[str]
    path: Required[str]


class Case(TypedDict, total=False):
    id: Required[str]
    steps: Required[Sequence[Step]]
    doc: str  # what the case shows, when the id is not enough


@dataclass(frozen=True, slots=True)
class LoadedCase:
    """A case together with the file it came from and the endpoints its steps touch."""

    id: str
    module: str
    steps: tuple[Step, ...]
    endpoints: frozenset[str]
    doc: str


class CaseDefinitionError(Exception):
    """A case file is inconsistent; collection fails rather than silently losing cases."""


def step_endpoint(step: Step) -> str:
    """The endpoint a step exercises: its path without the query, or the unknown pseudo-path."""
    if step.get("unknown_endpoint"):
        return UNKNOWN_ENDPOINT
    path = step["path"].split("?", 1)[0]
    head, artifacts, _tail = path.partition(ARTIFACT_TAIL)
    if artifacts:
        return head + artifacts + "{}"  # the artifact path is the route's `{artifact_path}`
    # A path parameter filled from a variable (`logged-models/${model}`) names the route
    # template: the gate lists `logged-models/{}`.
    return "/".join("{}" if "${" in part else part for part in path.split("/"))


def _load_module(name: str) -> list[LoadedCase]:
    module = importlib.import_module(f"{CASES_PACKAGE}.{name}")
    declared: frozenset[str] = frozenset(getattr(module, "ENDPOINTS", ()))
    cases: Sequence[Case] = getattr(module, "CASES", ())
    if not declared or not cases:
        raise CaseDefinitionError(f"cases/{name}.py must define ENDPOINTS and CASES")
    loaded = [
        LoadedCase(
            id=case["id"],
            module=name,
            steps=tuple(case["steps"]),
            endpoints=frozenset(step_endpoint(step) for step in case["steps"]),
            doc=case.get("doc", ""),
        )
        for case in cases
    ]
    used = frozenset().union(*(case.endpoints for case in loaded))
    if used != declared:
        raise CaseDefinitionError(
            f"cases/{name}.py: ENDPOINTS must list exactly the endpoints its cases use; "
            f"undeclared {sorted(used - declared)}, unused {sorted(declared - used)}"
        )
    return loaded


def load_cases() -> list[LoadedCase]:
    """Every case of every file in `cases/`, in file then definition order; ids are unique."""
    package = importlib.import_module(CASES_PACKAGE)
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )
    cases = [case for name in names for case in _load_module(name)]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseDefinitionError(f"duplicate case id {case.id!r}")
        seen.add(case.id)
    return cases


def read_gate(path: Path = GATE_FILE) -> frozenset[str]:
    """The endpoints listed in implemented.txt (blank lines and `#` comments ignored)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line)


def gated(cases: Iterable[LoadedCase], implemented: frozenset[str]) -> list[LoadedCase]:
    """The cases whose endpoints are all implemented."""
    return [case for case in cases if case.endpoints <= implemented]
