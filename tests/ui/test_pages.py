"""Acceptance 1 of issue 12: every page people use renders with its content, with no
same-origin request answered >= 400 and no uncaught page error (Debian chromium through
Playwright, data seeded with the real client). Screenshots: .state/ui-screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.ui.browser import Watcher
from tests.ui.pages import check, compare_url, open_page, visible
from tests.ui.seed import Seeded

pytestmark = pytest.mark.services


def test_experiment_list(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    open_page(
        page, watcher, screenshots, "01-experiments", "/#/experiments", seeded.experiment_name
    )


def test_runs_table(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    url = f"/#/experiments/{seeded.experiment_id}/runs"
    open_page(page, watcher, screenshots, "02-runs-table", url, *seeded.run_names)


def test_run_overview(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    url = f"/#/experiments/{seeded.experiment_id}/runs/{seeded.run_ids[0]}"
    page.goto(url)
    visible(page, seeded.run_names[0], "team", "trial-0", seeded.model_name, "Metrics (2)")
    visible(page, "loss", "accuracy", "Parameters (3)", "optimizer", "adam")
    link = page.get_by_role("link", name=seeded.model_name)
    assert link.first.get_attribute("href", timeout=5_000)
    check(page, watcher, screenshots, "03-run-overview")


def test_run_artifacts_preview_text_and_image(
    page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path
) -> None:
    url = f"/#/experiments/{seeded.experiment_id}/runs/{seeded.run_ids[0]}/artifacts"
    page.goto(url)
    visible(page, "config.yaml", "notes.txt", "plot.png", "report.html")
    page.get_by_text("notes.txt").first.click()
    visible(page, "hello from the sluice ui test")
    check(page, watcher, screenshots, "04-artifacts-text")
    page.get_by_text("plot.png").first.click()
    # The preview fetches /get-artifact and shows the bytes as a blob: URL.
    image = page.locator("img[src^='blob:']").first
    image.wait_for(state="visible")
    assert image.evaluate("img => img.naturalWidth") == 64  # decoded, not a broken image
    assert any("/get-artifact" in s and "plot.png" in s for s in watcher.seen)
    check(page, watcher, screenshots, "05-artifacts-image")


def test_model_metrics_charts(
    page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path
) -> None:
    url = f"/#/experiments/{seeded.experiment_id}/runs/{seeded.run_ids[0]}/model-metrics"
    page.goto(url)
    visible(page, "loss", "accuracy")
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    assert any("get-history-bulk-interval" in s for s in watcher.seen)
    check(page, watcher, screenshots, "06-model-metrics")


def test_compare_two_runs(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    open_page(page, watcher, screenshots, "07-compare", compare_url(seeded), *seeded.run_names)


def test_model_list(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    open_page(page, watcher, screenshots, "08-models", "/#/models", seeded.model_name)


def test_model_version_with_its_mlmodel(
    page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path
) -> None:
    url = f"/#/models/{seeded.model_name}/versions/1"
    page.goto(url)
    visible(page, "Version 1", "champion", seeded.run_names[0])
    visible(page, "Inputs (1)", "Outputs (1)")  # the signature, read from its MLmodel
    assert any("/model-versions/get-artifact" in s and "MLmodel" in s for s in watcher.seen)
    check(page, watcher, screenshots, "09-model-version")


def test_traces_tab(page: Page, watcher: Watcher, seeded: Seeded, screenshots: Path) -> None:
    url = f"/#/experiments/{seeded.experiment_id}/traces"
    open_page(page, watcher, screenshots, "10-traces", url, *seeded.trace_questions)
    assert any("/traces/metrics" in s for s in watcher.seen)
    assert any("/datasets/search" in s for s in watcher.seen)
    # The search box sends `trace.text ILIKE '%...%'`: a search over every span's text.
    first, *others = seeded.trace_questions
    box = page.get_by_placeholder("Search traces by id, input, or output")
    box.fill(first)
    box.press("Enter")
    for question in others:
        page.get_by_text(question).first.wait_for(state="detached")
    visible(page, first)
    check(page, watcher, screenshots, "10-traces-search")


@pytest.mark.parametrize(
    ("tab", "texts"),
    [
        ("usage", ("Traces", "Latency", "Tokens")),
        ("quality", ("Quality Summary", "helpful")),
        ("tool-calls", ("Total Tool Calls", "search_wiki")),
    ],
)
def test_experiment_overview(
    page: Page,
    watcher: Watcher,
    seeded: Seeded,
    screenshots: Path,
    tab: str,
    texts: tuple[str, ...],
) -> None:
    """The Overview charts: each is a traces/metrics query over the seeded traces."""
    url = f"/#/experiments/{seeded.experiment_id}/overview/{tab}"
    page.goto(url)
    visible(page, *texts)
    check(page, watcher, screenshots, f"13-overview-{tab}")
    assert any("/traces/metrics" in s for s in watcher.seen)
