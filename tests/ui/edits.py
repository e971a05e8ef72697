"""The UI's edit dialogs, driven as a user clicks them (shared by the edit and access tests)."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.ui.pages import visible
from tests.ui.seed import Seeded


def run_url(s: Seeded) -> str:
    return f"/#/experiments/{s.experiment_id}/runs/{s.run_ids[0]}"


def version_url(s: Seeded) -> str:
    return f"/#/models/{s.model_name}/versions/1"


def rename_run(page: Page, s: Seeded, new_name: str) -> None:
    page.goto(run_url(s))
    visible(page, s.run_names[0])
    page.get_by_test_id("overflow-menu-trigger").click()
    page.get_by_role("menuitem", name="Rename").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").first.fill(new_name)
    dialog.get_by_role("button", name="Save").click()


def add_run_tag(page: Page, s: Seeded, key: str, value: str) -> None:
    page.goto(run_url(s))
    page.get_by_role("button", name="Edit tags").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").first.click()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    dialog.get_by_label("Value").fill(value)
    dialog.get_by_role("button", name="Add tag").click()
    dialog.get_by_role("button", name="Save tags").click()


def transition_stage(page: Page, s: Seeded, stage: str) -> None:
    """Through the classic version page (the new registry UI has no stage menu)."""
    page.goto(version_url(s))
    visible(page, "Version 1")
    page.get_by_role("switch").first.click()  # "New model registry UI" off
    page.get_by_role("button", name="Disable").click()
    page.get_by_text("None", exact=True).first.click()
    page.get_by_role("menuitem").filter(has_text=stage).first.click()
    page.get_by_role("dialog").get_by_role("button", name="OK").click()


def set_alias(page: Page, s: Seeded, alias: str) -> None:
    page.goto(version_url(s))
    visible(page, "champion")
    page.get_by_title("Edit aliases").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.click()
    page.keyboard.type(alias)
    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Save aliases").click()
