"""Acceptance 2 of issue 12: edits made in the UI (rename a run, add a tag, transition a
stage, set an alias) are stored and visible through the MLflow client."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient
from playwright.sync_api import Page

from tests.ui import edits
from tests.ui.browser import Watcher
from tests.ui.pages import check, visible
from tests.ui.seed import Seeded, seed

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def own(sluice_url: str, seeded: Seeded) -> Seeded:
    """Data of this module alone: the page tests expect the seeded names unchanged."""
    return seed(sluice_url)


def eventually(read: Callable[[], object], want: object, deadline_s: float = 15.0) -> None:
    """The client sees the edit once the UI's request was answered (the dialog closes first)."""
    stop = time.monotonic() + deadline_s
    while (got := read()) != want and time.monotonic() < stop:
        time.sleep(0.2)
    assert got == want


def test_rename_run_and_add_tag(
    page: Page, watcher: Watcher, own: Seeded, sluice_url: str, screenshots: Path
) -> None:
    seeded = own
    client = MlflowClient(sluice_url)
    run_id = seeded.run_ids[0]
    edits.rename_run(page, seeded, "renamed-in-ui")
    visible(page, "renamed-in-ui")
    eventually(lambda: client.get_run(run_id).info.run_name, "renamed-in-ui")
    edits.add_run_tag(page, seeded, "reviewed", "yes")
    visible(page, "reviewed")
    eventually(lambda: client.get_run(run_id).data.tags.get("reviewed"), "yes")
    check(page, watcher, screenshots, "11-edited-run")


def test_transition_stage_and_set_alias(
    page: Page, watcher: Watcher, own: Seeded, sluice_url: str, screenshots: Path
) -> None:
    seeded = own
    client = MlflowClient(sluice_url)
    name = seeded.model_name
    # The alias first: the stage menu needs the classic page, which this context then keeps.
    edits.set_alias(page, seeded, "picked")
    visible(page, "picked")
    eventually(lambda: sorted(client.get_model_version(name, "1").aliases), ["champion", "picked"])
    edits.transition_stage(page, seeded, "Staging")
    visible(page, "Staging")
    eventually(lambda: client.get_model_version(name, "1").current_stage, "Staging")
    check(page, watcher, screenshots, "12-edited-version")
