"""Acceptance 3 of issue 12: with access control on, the UI works for a READ user (the
browser answers the basic-auth challenge, as with MLflow's auth app), whose edits are refused,
while an EDIT user's edits are stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from playwright.sync_api import Browser

from sluice.commands import users
from sluice.config import PgConfig
from tests.stack import Ports, Stack
from tests.ui import edits
from tests.ui.browser import Watcher, chromium, new_page
from tests.ui.pages import check, compare_url, open_page, visible
from tests.ui.seed import Seeded
from tests.ui.test_edits import eventually

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class Secured:
    url: str
    reader: tuple[str, str]
    editor: tuple[str, str]


@pytest.fixture(scope="module")
def secured(stack: Stack, seeded: Seeded) -> Iterator[Secured]:
    """An api, ingest and front with access control on, over the session's data; the reader
    is granted READ and the editor EDIT on the seeded experiment and model."""
    tag = uuid.uuid4().hex[:6]
    reader, editor = (f"reader-{tag}", "r-pw"), (f"editor-{tag}", "e-pw")
    pg = PgConfig(dsn=stack.dsn)
    for (name, password), level in ((reader, "READ"), (editor, "EDIT")):
        asyncio.run(users.add_user(pg, name, password, False))
        asyncio.run(users.grant(pg, name, "experiment", seeded.experiment_id, level))
        asyncio.run(users.grant(pg, name, "model", seeded.model_name, level))
    ports = Ports.free()
    env = {
        "SLUICE_AUTH_ENABLED": "true",
        "SLUICE_API_PORT": str(ports.api),
        "SLUICE_INGEST_PORT": str(ports.ingest),
        "SLUICE_PORT": str(ports.front),
    }
    names = (f"api-ui-auth-{tag}", f"ingest-ui-auth-{tag}", f"front-ui-auth-{tag}")
    stack.start("api", names[0], ports.api, **env)
    stack.start("ingest", names[1], ports.ingest, **env)
    stack.start("front", names[2], ports.front, **env)
    try:
        yield Secured(f"http://127.0.0.1:{ports.front}", reader, editor)
    finally:
        for name in names:
            stack.kill(name)


@pytest.fixture(scope="module")
def browser(secured: Secured) -> Iterator[Browser]:
    """Opened after the users exist: user creation runs its own event loop."""
    with chromium() as b:
        yield b


def test_the_page_asks_for_credentials(secured: Secured) -> None:
    answer = requests.get(secured.url + "/", timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    static = requests.get(secured.url + "/static-files/favicon.ico", timeout=30)
    assert static.status_code == 200  # the bundle is public, as with MLflow's auth app


def test_a_reader_sees_every_page(
    browser: Browser, secured: Secured, seeded: Seeded, screenshots: Path
) -> None:
    watcher = Watcher(secured.url)  # users/current exists now: no 404 is expected anywhere
    exp = seeded.experiment_id
    pages = (
        ("21-auth-experiments", "/#/experiments", (seeded.experiment_name,)),
        ("22-auth-runs", f"/#/experiments/{exp}/runs", seeded.run_names),
        ("23-auth-run", edits.run_url(seeded), (seeded.run_names[0], "optimizer")),
        ("24-auth-compare", compare_url(seeded), seeded.run_names),
        ("25-auth-models", "/#/models", (seeded.model_name,)),
        ("26-auth-version", edits.version_url(seeded), ("Version 1", "Inputs (1)")),
    )
    with new_page(browser, secured.url, watcher, secured.reader) as page:
        for name, url, texts in pages:
            open_page(page, watcher, screenshots, name, url, *texts)
        assert any("users/current" in s for s in watcher.seen)


def test_a_reader_cannot_edit_an_editor_can(
    browser: Browser, secured: Secured, seeded: Seeded, screenshots: Path
) -> None:
    run_id = seeded.run_ids[1]
    as_editor = MlflowClient(secured.url)
    watcher = Watcher(secured.url)
    with new_page(browser, secured.url, watcher, secured.reader) as page:
        edits.add_run_tag(page, _second_run(seeded), "by-reader", "no")
        deadline = time.monotonic() + 30  # until the refused set-tag was answered
        while not any("set-tag" in f for f in watcher.failures) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        refused = watcher.take()
        assert refused and all(" 403 " in f or f.startswith("403 ") for f in refused), refused
        assert any("set-tag" in f for f in refused)
    with new_page(browser, secured.url, watcher, secured.editor) as page:
        edits.add_run_tag(page, _second_run(seeded), "by-editor", "yes")
        visible(page, "by-editor")
        check(page, watcher, screenshots, "27-auth-editor-tag")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_USERNAME", secured.editor[0])
        env.setenv("MLFLOW_TRACKING_PASSWORD", secured.editor[1])
        eventually(lambda: as_editor.get_run(run_id).data.tags.get("by-editor"), "yes")
        assert "by-reader" not in as_editor.get_run(run_id).data.tags


def _second_run(s: Seeded) -> Seeded:
    """The seeded data with its second run first (edits target run_ids[0])."""
    return Seeded(
        s.experiment_id,
        s.experiment_name,
        (s.run_ids[1], s.run_ids[0]),
        (s.run_names[1], s.run_names[0]),
        s.model_name,
        s.model_id,
    )
