"""One test per collected case: run it against the reference and the target, compare."""

from __future__ import annotations

import os
import time

import pytest

from tests.compat.deviations import active_deviations
from tests.compat.model import LoadedCase
from tests.compat.normalise import Window
from tests.compat.report import Tally
from tests.compat.runner import Server, run_case, summarise

# The target is a running Sluice stack: these tests need the real services.
pytestmark = pytest.mark.services

# "Now" as seen by either server: from a week before the session (the target's database, and
# its Default experiment, may be older than the session) to a day ahead (clock skew). Times a
# case sets itself lie far outside (2020, or small numbers) and are compared exactly.
BEFORE_SESSION_MS = 7 * 86_400_000
AFTER_NOW_MS = 86_400_000


def test_case(
    compat_case: LoadedCase,
    reference_server: Server,
    target_server: Server,
    compat_tally: Tally,
    session_token: str,
    session_start_ms: int,
) -> None:
    uid = f"c{session_token}x{compat_tally.defined.index(compat_case):04d}"
    window = Window(
        session_start_ms - BEFORE_SESSION_MS, time.time_ns() // 1_000_000 + AFTER_NOW_MS
    )
    outcome = run_case(compat_case, reference_server, target_server, uid, window)
    if compat_case.id in active_deviations(os.environ):
        compat_tally.deviations_seen[compat_case.id] = not outcome.passed
        compat_tally.passed.append(compat_case.id)
        return
    if outcome.passed:
        compat_tally.passed.append(compat_case.id)
        return
    compat_tally.failed[compat_case.id] = outcome.problems[0]
    pytest.fail(summarise(outcome), pytrace=False)
