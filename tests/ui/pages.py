"""Opening a UI page the way a user does and checking it: the expected texts become visible,
the requests settle, a screenshot is written, and nothing failed on the way."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import Page

from tests.ui.browser import Watcher, screenshot
from tests.ui.seed import Seeded

SETTLE_S = 3.0  # at most: a page that always has a request open is checked as it stands
QUIET_S = 0.5  # no request of the page open for this long: what it asked for is answered
_POLL_MS = 50


def settle(page: Page, watcher: Watcher) -> None:
    """Wait until none of the page's requests has been open for ``QUIET_S`` (bounded by
    ``SETTLE_S``), so the answers the page asked for so far are in ``watcher`` when it is
    checked. Playwright's "networkidle" never came on any page (every check waited its whole
    3 s bound, ~25 checks): the telemetry worker's script request never reports finished."""
    deadline = time.monotonic() + SETTLE_S
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if watcher.in_flight:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        page.wait_for_timeout(_POLL_MS)  # lets Playwright deliver the page's events


def visible(page: Page, *texts: str) -> None:
    for text in texts:
        page.get_by_text(text, exact=False).first.wait_for(state="visible")


def check(page: Page, watcher: Watcher, folder: Path, name: str) -> None:
    settle(page, watcher)
    screenshot(page, folder, name)
    failures = watcher.take()
    assert failures == [], f"{name}: failed requests or page errors"


def open_page(page: Page, watcher: Watcher, folder: Path, name: str, url: str, *texts: str) -> None:
    page.goto(url)
    visible(page, *texts)
    check(page, watcher, folder, name)


def compare_url(s: Seeded, run_ids: list[str] | None = None) -> str:
    runs = json.dumps(run_ids or list(s.run_ids), separators=(",", ":"))
    experiments = json.dumps([s.experiment_id], separators=(",", ":"))
    query = urllib.parse.urlencode({"runs": runs, "experiments": experiments}, safe='[]",')
    return f"/#/compare-runs?{query}"
