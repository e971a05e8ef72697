"""The session's compatibility report: how many cases exist, how many the gate let run, how many
passed, and the accepted deviations. Written to `<state>/compat-report.md` at session end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.compat.model import LoadedCase


@dataclass
class Tally:
    """Everything the report needs, filled in while the session runs."""

    defined: list[LoadedCase]
    collected: list[LoadedCase]
    implemented: frozenset[str]
    gate_bypassed: bool
    reference_url: str = ""
    target_url: str = ""
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # case id -> first problem
    deviations_seen: dict[str, bool] = field(default_factory=dict)  # id -> still differs?
    started: float = field(default_factory=time.monotonic)

    def summary_line(self) -> str:
        run = len(self.passed) + len(self.failed)
        gate = "gate bypassed (SLUICE_COMPAT_ALL)" if self.gate_bypassed else "implemented.txt"
        return (
            f"compat: {len(self.defined)} cases defined, {len(self.collected)} collected "
            f"({gate}), {run} run, {len(self.passed)} passed, {len(self.failed)} failed"
        )


def _missing_endpoints(tally: Tally) -> Counter[str]:
    """For the cases left out by the gate: how many each missing endpoint holds back."""
    counts: Counter[str] = Counter()
    collected = {case.id for case in tally.collected}
    for case in tally.defined:
        if case.id not in collected:
            counts.update(case.endpoints - tally.implemented)
    return counts


def render(
    tally: Tally,
    deviations: Mapping[str, str],
    fields: Mapping[str, str] | None = None,
    pending: Mapping[str, str] | None = None,
) -> str:
    """The report as Markdown."""
    lines = [
        "# Sluice compatibility report (tests/compat)",
        "",
        f"- {tally.summary_line()}",
        f"- reference: {tally.reference_url or '-'}; target: {tally.target_url or '-'}",
        f"- duration: {time.monotonic() - tally.started:.1f} s",
        "",
        "## Failed cases",
        "",
        *(f"- `{case_id}`: {problem}" for case_id, problem in sorted(tally.failed.items())),
        *([] if tally.failed else ["none"]),
        "",
        "## Accepted deviations (tests/compat/deviations.py)",
        "",
    ]
    for case_id, reason in sorted(deviations.items()):
        seen = tally.deviations_seen.get(case_id)
        state = {None: "not run", True: "still differs", False: "NO LONGER DIFFERS: remove it"}
        lines.append(f"- `{case_id}` ({state[seen]}): {reason}")
    if not deviations:
        lines.append("none")
    lines += ["", "## Fields left out of the comparison (deviations.FIELD_DEVIATIONS)", ""]
    lines += [f"- `{path}`: {reason}" for path, reason in sorted((fields or {}).items())]
    pending = pending or {}
    lines += [
        "",
        f"## Pending: {len(pending)} generated cases with a known, unfixed divergence"
        " (tests/compat/pending.py)",
        "",
    ]
    lines += [f"- `{case_id}`: {problem}" for case_id, problem in sorted(pending.items())]
    lines += ["", "## Not collected: cases per missing endpoint", ""]
    missing = _missing_endpoints(tally)
    lines += [f"- {endpoint}: {count}" for endpoint, count in sorted(missing.items())]
    if not missing:
        lines.append("none")
    return "\n".join(lines) + "\n"
