"""One seeded dataset per session and one browser per module; every page test gets a fresh
browser context whose watcher fails it on a same-origin answer >= 400 or an uncaught page error.

Playwright's sync API runs its event loop in this thread while the browser is open, so no
``asyncio.run`` (stack set-up, user creation) may happen meanwhile: the browser fixture is
module-scoped and depends on the seeded stack, and modules create their users before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.stack import REPO, SCRIPTS
from tests.ui.browser import Watcher, chromium, new_page
from tests.ui.seed import Seeded, seed

SCREENSHOTS = REPO / ".state" / "ui-screenshots"
# Without access control MLflow has no users/current route; its 404 tells the UI auth is off.
NO_AUTH_404 = frozenset({"/ajax-api/2.0/mlflow/users/current"})


@pytest.fixture(scope="session")
def ui_tools() -> None:
    """The UI bundle and the browser, installed by the repo's scripts when missing."""
    for script in ("ui-bundle.sh", "browser.sh"):
        subprocess.run([str(SCRIPTS / script), "install"], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def seeded(ui_tools: None, sluice_url: str) -> Seeded:
    return seed(sluice_url)


@pytest.fixture(scope="module")
def browser(seeded: Seeded) -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def watcher(sluice_url: str) -> Watcher:
    return Watcher(sluice_url, NO_AUTH_404)


@pytest.fixture
def page(browser: Browser, sluice_url: str, watcher: Watcher) -> Iterator[Page]:
    with new_page(browser, sluice_url, watcher) as p:
        yield p


@pytest.fixture(scope="session")
def screenshots() -> Path:
    return SCREENSHOTS
