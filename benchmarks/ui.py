"""The web UI phase: how long headless Chromium takes to draw what a user waits for, on both
systems over the same data (issue 12, acceptance 4).

Data, loaded straight into each system's tables like the read workloads (``benchmarks/store``),
those tables then vacuumed: one run with ``ui_metrics`` metrics of ``ui_points`` points each,
and an experiment of ``ui_table_runs`` runs. Once every system has its data, each page is opened
``ui_repeats`` times per system, the systems taking turns (after ``ui_warmups`` untimed loads
of each), every time in a fresh browser context (nothing cached: the bundle is fetched again,
from each system itself), and timed from navigation start until:

- *run charts*: the run's model-metrics tab shows ``CHARTS`` charts with their lines drawn;
- *runs table*: the experiment's runs table shows ``TABLE_ROWS`` rows.

Each load is also taken apart (``breakdown``), so that a ratio can be read against what the
server could change at all: when the page sent its first API request (everything before is
the bundle's download and start-up), how long API requests were in flight (the union of their
intervals, from the page's Resource Timing), and how long the page's main thread was busy
(Chrome's ``TaskDuration``: script, style, layout, paint). Busy time is the browser's own cost
for the same bundle and the same answers, the floor below which no server gets the page.

Debian's chromium through Playwright (``scripts/browser.sh``), as the UI tests use.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from playwright.async_api import Browser, async_playwright

from benchmarks import report, store
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
# Each finished request of the page: [path, start ms, end ms] from navigation start.
_RESOURCES = (
    "performance.getEntriesByType('resource')"
    ".map(e => [new URL(e.name).pathname, e.startTime, e.responseEnd])"
)
_STATIC = ("/static-files/",)


async def _load_once(
    browser: Browser, base: str, url: str, condition: str, timeout_s: float
) -> dict[str, float]:
    """One page load in a fresh browser context (nothing cached), taken apart."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        started = time.perf_counter()
        await page.goto(base + url)
        await page.wait_for_function(condition, timeout=timeout_s * 1000, polling=50)
        seconds = time.perf_counter() - started
        metrics = await cdp.send("Performance.getMetrics")
        resources = await page.evaluate(_RESOURCES)
        return breakdown(seconds, metrics["metrics"], resources)
    finally:
        await context.close()


def breakdown(
    seconds: float, metrics: list[dict[str, Any]], resources: list[list[Any]]
) -> dict[str, float]:
    """One load taken apart (pure): total, first API request, API time in flight, busy."""
    by_name = {m["name"]: float(m["value"]) for m in metrics}
    api = [(float(r[1]), float(r[2])) for r in resources if not _is_static(str(r[0]))]
    return {
        "total_s": round(seconds, 3),
        "first_api_s": round(min((s for s, _ in api), default=0.0) / 1000, 3),
        "api_in_flight_s": round(union_ms(api) / 1000, 3),
        "api_requests": len(api),
        "busy_s": round(by_name.get("TaskDuration", 0.0), 3),
        "script_s": round(by_name.get("ScriptDuration", 0.0), 3),
    }


def _is_static(path: str) -> bool:
    return path == "/" or path.startswith(_STATIC)


def union_ms(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals (pure): time with a request in flight."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def summary(loads: list[dict[str, float]]) -> Result:
    """The median total (the figure) and the median of each part, plus every load."""
    medians = {k: round(statistics.median(load[k] for load in loads), 3) for k in loads[0]}
    return {
        "median_s": medians["total_s"],
        "all_s": [load["total_s"] for load in loads],
        "breakdown_median": medians,
        "loads": loads,
        "load_average_after": report.load_average(),
    }


async def ui(ctx: Context, target: Target) -> Result:
    """Load this system's UI data; the pages are timed by ``measure`` once every system has
    its data, taking turns between systems."""
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
    out: Result = {"load_s": round(time.perf_counter() - loaded, 1)}
    out["vacuum_s"] = await store.vacuum(target.name, target.dsn)
    ctx.log(f"  {target.name} ui data loaded in {out['load_s']} s, vacuumed in {out['vacuum_s']} s")
    out["pages"] = {
        "run_charts": [
            f"/#/experiments/{run_exp}/runs/{run_id}/model-metrics",
            f"{_LINES} >= {min(CHARTS, p.ui_metrics)}",
        ],
        "runs_table": [
            f"/#/experiments/{table_exp}/runs",
            f"{_ROWS} >= {min(TABLE_ROWS, p.ui_table_runs)}",
        ],
    }
    return out


async def measure(ctx: Context, targets: list[Target], results: dict[str, Result]) -> None:
    """Time every page on every system, the systems taking turns load by load (the order
    flipping each round), so that a shared machine's load swings hit both alike. Untimed
    loads of each page first on each system: the first read after a bulk load pays for
    PostgreSQL's hint bits and cold buffers, which a real server would not."""
    p = ctx.profile
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name in ("run_charts", "runs_table"):
                loads: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
                for round_ in range(-p.ui_warmups, p.ui_repeats):
                    turn = targets if round_ % 2 == 0 else targets[::-1]
                    for target in turn:
                        url, condition = results[target.name]["pages"][name]
                        one = await _load_once(
                            browser, target.read_url, url, condition, p.request_timeout_s
                        )
                        if round_ >= 0:
                            loads[target.name].append(one)
                for target in targets:
                    results[target.name][name] = summary(loads[target.name])
        finally:
            await browser.close()
    for target in targets:
        out = results[target.name]
        ctx.log(
            f"  {target.name} ui: charts {out['run_charts']['median_s']} s,"
            f" table {out['runs_table']['median_s']} s"
        )


__all__ = ["experiment", "measure", "ui"]
