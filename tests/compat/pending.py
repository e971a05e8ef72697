"""Generated cases whose divergence from MLflow is known and not fixed yet (issue 14): case id
-> the first difference the last run found. They are not collected (so the suite stays green
while the work is open) and are listed in the report; `SLUICE_COMPAT_ALL=1` runs them. Unlike
deviations.py this is a to-do list, not an acceptance: an entry leaves when its case passes
(tests/compat/test_harness.py checks every id still names a case).
"""

from __future__ import annotations

PENDING: dict[str, str] = {}
