"""Runs a case: each step is sent to the reference and to the target, with each server's own
captured variables, and the two answers are compared after normalisation.

A case stops at its first differing step, because later steps usually build on it. A step whose
*reference* answer contradicts the case's own `expect` is reported as a broken case, not as a
Sluice failure: the case no longer tests what it claims.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.compat import paths
from tests.compat.compare import (
    Answer,
    MessageRule,
    apply_message_rule,
    crashed,
    differences,
    shape,
)
from tests.compat.model import LoadedCase, Step
from tests.compat.normalise import IdMap, Window, normalise

REQUEST_TIMEOUT_S = 10.0
JSON_HEADERS = {"Content-Type": "application/json"}
_VARIABLE = re.compile(r"\$\{(\w+)\}")


class _Stop(Exception):
    """The case ends at this step: these are its problems (none: it passed)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("stop")
        self.problems = problems


class CaseError(Exception):
    """The case itself is wrong (unknown variable, reference contradicts `expect`)."""


@dataclass
class Server:
    """One side of the comparison: a base URL and a keep-alive HTTP session."""

    name: str
    base_url: str
    http: requests.Session = field(default_factory=requests.Session)


@dataclass
class Side:
    """One server's state while a case runs: its captured variables and its id placeholders."""

    server: Server
    variables: dict[str, Any]
    ids: IdMap = field(default_factory=IdMap)


@dataclass
class Outcome:
    """What a case run found: no problems means the servers agreed on every step."""

    problems: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- requests


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace `${var}` in every string of `value`; a string that is exactly `${var}` takes the
    variable's value with its JSON type (so a captured number stays a number)."""
    if isinstance(value, str):
        whole = _VARIABLE.fullmatch(value)
        if whole:
            return _lookup(whole[1], variables)
        return _VARIABLE.sub(lambda m: str(_lookup(m[1], variables)), value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise CaseError(f"unknown variable ${{{name}}} (captured so far: {sorted(variables)})")
    return variables[name]


def send(side: Side, step: Step) -> Answer:
    """Send one step to one server and parse its answer."""
    variables = side.variables
    body: str | None = None
    headers: Mapping[str, str] = {}
    if "json" in step:
        body = json.dumps(substitute(step["json"], variables))
        headers = JSON_HEADERS
    elif "data" in step:
        body = substitute(step["data"], variables)
        headers = JSON_HEADERS
    elif "body_bytes" in step:
        body = substitute(step["body_bytes"], variables)
    if "headers" in step:
        headers = substitute(dict(step["headers"]), variables)
    url = side.server.base_url + substitute(step["path"], variables)
    if "raw_query" in step:
        url += "?" + substitute(step["raw_query"], variables)
    response = side.server.http.request(
        step["method"],
        url,
        params=substitute(dict(step.get("query", {})), variables),
        data=body.encode() if body is not None else None,
        headers=headers,
        timeout=REQUEST_TIMEOUT_S,
        allow_redirects=False,
    )
    compared = {
        name.lower(): response.headers.get(name) for name in step.get("compare_headers", ())
    }
    return Answer(
        status=response.status_code,
        body=_json_or_none(response),
        text=response.text,
        headers={k: v for k, v in compared.items() if v is not None} if compared else None,
    )


def _json_or_none(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


# ---------------------------------------------------------------- one step


def _check_expectation(step: Step, answer: Answer) -> None:
    wanted = step.get("expect", 200 if "capture" in step else None)
    if wanted is not None and answer.status != wanted:
        raise CaseError(
            f"reference answered {answer.status} where the case expects {wanted}: "
            f"{answer.text[:400]}"
        )


def _capture(side: Side, step: Step, answer: Answer) -> str | None:
    """Store the step's captures on this side; returns a problem when one is missing."""
    for variable, path in step.get("capture", {}).items():
        try:
            value = paths.extract(answer.body, path)
        except (KeyError, IndexError, TypeError):
            return f"{side.server.name} answer has no {path!r} to capture as ${{{variable}}}"
        side.variables[variable] = value
        if isinstance(value, str):
            side.ids.bind(value, variable)
    return None


def _comparable(side: Side, step: Step, answer: Answer, window: Window) -> Any:
    if not answer.is_json:
        return None
    rule = MessageRule(
        prefix=_common_text(step.get("message_prefix"), side),
        regex=_common_text(step.get("message_regex"), side),
    )
    body = normalise(copy.deepcopy(answer.body), side.ids, window)
    body = apply_message_rule(body, rule)
    return shape(body, list(step.get("unordered", ())), list(step.get("ignore", ())))


def _common_text(text: str | None, side: Side) -> str | None:
    """Prefixes and regexes may use only variables equal on both servers (such as ${uid})."""
    return None if text is None else str(substitute(text, side.variables))


def _describe(step: Step, index: int) -> str:
    return f"step {index + 1}: {step['method']} {step['path']}"


def run_step(
    step: Step, reference: Side, target: Side, window: Window, pool: ThreadPoolExecutor
) -> list[str]:
    """Send one step to both sides at once; the differences found (empty when they agree)."""
    pending = pool.submit(send, target, step)
    ref_answer = send(reference, step)
    try:
        tgt_answer = pending.result()
    except requests.RequestException as error:
        return [f"target request failed: {error}"]
    _check_expectation(step, ref_answer)
    ref_problem = _capture(reference, step, ref_answer)
    if ref_problem:
        raise CaseError(ref_problem)
    if crashed(ref_answer, tgt_answer):
        # Nothing after MLflow's crash is comparable: its state may be half-written.
        problems = differences(ref_answer, tgt_answer, None, None)
        raise _Stop(problems)
    tgt_problem = _capture(target, step, tgt_answer)
    found = differences(
        ref_answer,
        tgt_answer,
        _comparable(reference, step, ref_answer, window),
        _comparable(target, step, tgt_answer, window),
    )
    return [*found, tgt_problem] if tgt_problem else found


# ---------------------------------------------------------------- one case


def run_case(
    case: LoadedCase, reference: Server, target: Server, uid: str, window: Window
) -> Outcome:
    """Run every step of `case` against both servers, stopping at the first difference."""
    outcome = Outcome()
    sides = [Side(server, {"uid": uid}) for server in (reference, target)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compat-target") as pool:
        for index, step in enumerate(case.steps):
            if not _run_logged(step, index, sides, window, pool, outcome):
                break
    return outcome


def _run_logged(
    step: Step,
    index: int,
    sides: list[Side],
    window: Window,
    pool: ThreadPoolExecutor,
    outcome: Outcome,
) -> bool:
    """Run one step and record it in `outcome`; False when the case must stop here."""
    try:
        found = run_step(step, sides[0], sides[1], window, pool)
    except CaseError as error:
        outcome.problems.append(f"{_describe(step, index)}: CASE ERROR: {error}")
        return False
    except _Stop as stop:
        outcome.transcript.append(_describe(step, index) + " reference crashed: case ends")
        outcome.problems.extend(f"{_describe(step, index)}: {line}" for line in stop.problems)
        return False
    outcome.transcript.append(_describe(step, index) + (" differs" if found else " ok"))
    outcome.problems.extend(f"{_describe(step, index)}: {line}" for line in found)
    return not found


def summarise(outcome: Outcome) -> str:
    """The failure text pytest shows for a case."""
    return "\n".join([*outcome.problems, "", "transcript:", *outcome.transcript])
