"""The web UI phase: how long headless Chromium takes to draw what a user waits for, on both
systems over the same data (issue 12, acceptance 4).

Data, loaded straight into each system's tables like the read workloads (``benchmarks/store``):
one run with ``ui_metrics`` metrics of ``ui_points`` points each, and an experiment of
``ui_table_runs`` runs. Measured, ``ui_repeats`` times each in a fresh browser context (the
bundle is fetched again every time, from each system itself), from navigation start until:

- *run charts*: the run's model-metrics tab shows ``CHARTS`` charts with their lines drawn;
- *runs table*: the experiment's runs table shows ``TABLE_ROWS`` rows.

Debian's chromium through Playwright (``scripts/browser.sh``), as the UI tests use.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from playwright.async_api import Browser, async_playwright

from benchmarks import store
from benchmarks.phases import Context, Result, experiment, experiment_named
from benchmarks.services import Target

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHARTS = 4  # line charts drawn (the first screenful of the tab)
TABLE_ROWS = 10
_LINES = "document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line').length"
_ROWS = "document.querySelectorAll('.ag-center-cols-container .ag-row').length"


async def _time_page(
    browser: Browser, base: str, url: str, condition: str, repeats: int, timeout_s: float
) -> Result:
    seconds: list[float] = []
    for _ in range(repeats):
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = await context.new_page()
            started = time.perf_counter()
            await page.goto(base + url)
            await page.wait_for_function(condition, timeout=timeout_s * 1000, polling=50)
            seconds.append(time.perf_counter() - started)
        finally:
            await context.close()
    return {
        "median_s": round(statistics.median(seconds), 3),
        "all_s": [round(s, 3) for s in seconds],
    }


async def ui(ctx: Context, target: Target) -> Result:
    p = ctx.profile
    run_exp = await experiment_named(target, f"bench-ui-charts-{target.name}")
    ctx.experiments[target.name + "-ui"] = run_exp
    (run_id,) = await store.load_search_runs(target.name, target.dsn, run_exp, 1)
    loaded = time.perf_counter()
    for i in range(p.ui_metrics):
        last = i == p.ui_metrics - 1
        key = f"m{i:03d}"
        await store.generate_series(target.name, target.dsn, [run_id], key, p.ui_points, last)
    table_exp = await experiment_named(target, f"bench-ui-table-{target.name}")
    await store.load_search_runs(target.name, target.dsn, table_exp, p.ui_table_runs)
    out: dict[str, Any] = {"load_s": round(time.perf_counter() - loaded, 1)}
    ctx.log(f"  {target.name} ui data loaded in {out['load_s']} s")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            out["run_charts"] = await _time_page(
                browser,
                target.read_url,
                f"/#/experiments/{run_exp}/runs/{run_id}/model-metrics",
                f"{_LINES} >= {min(CHARTS, p.ui_metrics)}",
                p.ui_repeats,
                p.request_timeout_s,
            )
            out["runs_table"] = await _time_page(
                browser,
                target.read_url,
                f"/#/experiments/{table_exp}/runs",
                f"{_ROWS} >= {min(TABLE_ROWS, p.ui_table_runs)}",
                p.ui_repeats,
                p.request_timeout_s,
            )
        finally:
            await browser.close()
    ctx.log(
        f"  {target.name} ui: charts {out['run_charts']['median_s']} s,"
        f" table {out['runs_table']['median_s']} s"
    )
    return out


__all__ = ["experiment", "ui"]
