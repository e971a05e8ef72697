"""Opening a UI page the way a user does and checking it: the expected texts become visible,
the requests settle, a screenshot is written, and nothing failed on the way."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from tests.ui.browser import Watcher, screenshot
from tests.ui.seed import Seeded

SETTLE_MS = 3_000  # pages poll (runs, metrics): "network idle" is a bound, not a promise


def settle(page: Page) -> None:
    # A polling page never idles; what it loaded so far is checked anyway.
    with contextlib.suppress(PlaywrightError):
        page.wait_for_load_state("networkidle", timeout=SETTLE_MS)


def visible(page: Page, *texts: str) -> None:
    for text in texts:
        page.get_by_text(text, exact=False).first.wait_for(state="visible")


def check(page: Page, watcher: Watcher, folder: Path, name: str) -> None:
    settle(page)
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
