"""The web UI phase: how long headless Chromium takes to draw what a user waits for, on both
systems over the same data (issue 12, acceptance 4).

Data, loaded straight into each system's tables like the read workloads (``benchmarks/store``),
those tables then vacuumed: one run with ``ui_metrics`` metrics of ``ui_points`` points each,
and an experiment of ``ui_table_runs`` runs. Once every system has its data, each page is timed
from navigation start until:

- *run charts*: the run's model-metrics tab shows ``CHARTS`` charts with their lines drawn;
- *runs table*: the experiment's runs table shows ``TABLE_ROWS`` rows.

Besides the systems, each page is timed on a **floor** per system: a replay server
(``benchmarks/replay``) answering every request from a recording of that system's own answers
(recorded through a proxy in untimed loads), a server that costs nothing. A floor's time is the
lowest any server could reach for that page with this bundle in this browser; MLflow's time over
the floor of Sluice's answers bounds the ratio any server could show.

Each system (and floor) is visited ``ui_repeats`` times, the systems taking turns (after
``ui_warmups`` untimed visits of each): a visit is a new user's first load in a fresh browser
context (nothing cached: the bundle is fetched from that system), then ``ui_return_visits``
loads by the same user in new tabs (bundle cached, as the system's cache headers allow); the
first load and the last return visit are the figures ("cold" and "warm").

Each load is also taken apart (``breakdown``): when the page sent its first API request
(everything before is the bundle's download and start-up), how long API requests were in flight
(the union of their intervals, from the page's Resource Timing), how long the page's main
thread was busy (Chrome's ``TaskDuration``: script, style, layout, paint), and what it fetched.

Debian's chromium through Playwright (``scripts/browser.sh``), as the UI tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from benchmarks import replay, report, store
from benchmarks.phases import Context, Result, experiment, experiment_named
from benchmarks.profiles import Profile
from benchmarks.services import Target, free_ports

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
# Each finished request of the page: [path, start ms, end ms] from navigation start, bytes
# over the wire (0 when the HTTP cache answered), body bytes as sent (gzipped when it was).
_RESOURCES = (
    "performance.getEntriesByType('resource').map(e => [new URL(e.name).pathname,"
    " e.startTime, e.responseEnd, e.transferSize, e.encodedBodySize])"
)
READY_S = 30.0  # for a replay server to answer
FLOOR = "floor"  # the replay of Sluice's answers; of another system's: floor_<name>
_STATIC = ("/static-files/",)


async def _visit(
    context: BrowserContext, base: str, url: str, condition: str, timeout_s: float, settle_s: float
) -> dict[str, float]:
    """One page load in a new tab of ``context``, taken apart. ``settle_s`` > 0: afterwards,
    wait up to that long until the page stops sending requests, so that a recording has them
    all (a page that polls never stops: the whole bound is spent)."""
    page = await context.new_page()
    try:
        cdp = await context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        started = time.perf_counter()
        await page.goto(base + url)
        await page.wait_for_function(condition, timeout=timeout_s * 1000, polling=50)
        seconds = time.perf_counter() - started
        metrics = await cdp.send("Performance.getMetrics")
        resources = await page.evaluate(_RESOURCES)
        if settle_s > 0:
            with contextlib.suppress(PlaywrightTimeoutError):
                await page.wait_for_load_state("networkidle", timeout=settle_s * 1000)
        return breakdown(seconds, metrics["metrics"], resources)
    finally:
        await page.close()


async def _visits(
    browser: Browser,
    base: str,
    url: str,
    condition: str,
    timeout_s: float,
    visits: int,
    settle_s: float = 0.0,
) -> list[dict[str, float]]:
    """A new user's first load of the page (a fresh browser context: nothing cached), then the
    same user's return visits, each in a new tab of the same context (the bundle in its HTTP
    cache, ``index.html`` revalidated; from the third visit on V8 also has the scripts'
    compiled code cached)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        return [
            await _visit(context, base, url, condition, timeout_s, settle_s) for _ in range(visits)
        ]
    finally:
        await context.close()


def breakdown(
    seconds: float, metrics: list[dict[str, Any]], resources: list[list[Any]]
) -> dict[str, float]:
    """One load taken apart (pure): total, first API request, API time in flight, busy, and
    what the page fetched (requests, KB over the wire, API answers' KB as sent)."""
    by_name = {m["name"]: float(m["value"]) for m in metrics}
    api = [r for r in resources if not _is_static(str(r[0]))]
    spans = [(float(r[1]), float(r[2])) for r in api]
    return {
        "total_s": round(seconds, 3),
        "first_api_s": round(min((s for s, _ in spans), default=0.0) / 1000, 3),
        "api_in_flight_s": round(union_ms(spans) / 1000, 3),
        "api_requests": len(api),
        "busy_s": round(by_name.get("TaskDuration", 0.0), 3),
        "script_s": round(by_name.get("ScriptDuration", 0.0), 3),
        "requests": len(resources),
        "transfer_kb": round(sum(_size(r, 3) for r in resources) / 1024, 1),
        "api_kb": round(sum(_size(r, 4) for r in api) / 1024, 1),
    }


def _size(resource: list[Any], index: int) -> float:
    return float(resource[index]) if len(resource) > index else 0.0


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
    """Record each system's answers, start a replay server for each recording (the floors),
    then time every page on every system and floor, taking turns load by load (the order
    rotating each round), so that a shared machine's load swings hit all alike. Untimed loads
    of each page first: the first read after a bulk load pays for PostgreSQL's hint bits and
    cold buffers, which a real server would not (the recording loads count among them)."""
    systems = list(targets)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as folder:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                async with contextlib.AsyncExitStack() as floors:
                    for target in targets:
                        floor = await _start_floor(ctx, browser, target, results, Path(folder))
                        systems.append(await floors.enter_async_context(floor))
                    await _take_turns(ctx, browser, systems, results)
                    for floor_target in systems[len(targets) :]:
                        replayed = await _replay_counts(floor_target.read_url)
                        results[floor_target.name]["replay"] = replayed
            finally:
                await browser.close()
    for system in systems:
        out = results[system.name]
        ctx.log(
            f"  {system.name} ui: charts {out['run_charts']['median_s']} s,"
            f" table {out['runs_table']['median_s']} s (first visit)"
        )


def floor_name(system: str) -> str:
    return FLOOR if system == "sluice" else f"{FLOOR}_{system}"


async def _start_floor(
    ctx: Context, browser: Browser, target: Target, results: dict[str, Result], folder: Path
) -> contextlib.AbstractAsyncContextManager[Target]:
    """Record ``target``'s answers to every page (untimed), and return the replay server of
    them to enter (a Target whose reads go to the replay)."""
    pages = results[target.name]["pages"]
    recording = await _record(browser, target, pages, ctx.profile)
    path = folder / f"{target.name}.jsonl"
    replay.dump(recording, path)
    name = floor_name(target.name)
    results[name] = {"replays": target.name, "pages": pages, "recorded": replay.describe(recording)}
    ctx.log(f"  recorded {len(recording)} answers of {target.name} for {name}")
    return _floor(name, path, target.read_url)


async def _record(
    browser: Browser, target: Target, pages: dict[str, list[str]], p: Profile
) -> replay.Recording:
    """Every page's first and return visits through a recording proxy in front of ``target``."""
    recording: replay.Recording = {}
    async with replay.client_session() as session:
        runner = web.AppRunner(replay.recorder(target.read_url, recording, session))
        await runner.setup()
        (port,) = free_ports(1)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            for url, condition in pages.values():
                await _visits(
                    browser,
                    f"http://127.0.0.1:{port}",
                    url,
                    condition,
                    p.request_timeout_s,
                    1 + p.ui_return_visits,
                    settle_s=p.ui_settle_s,
                )
        finally:
            await runner.cleanup()
    return recording


@contextlib.asynccontextmanager
async def _floor(name: str, recording: Path, upstream: str) -> AsyncIterator[Target]:
    """A replay server of ``recording`` in a process of its own, as a Target."""
    (port,) = free_ports(1)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.replay",
        f"--recording={recording}",
        f"--upstream={upstream}",
        f"--port={port}",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await _until_ready(process, base + replay.MISSES_PATH)
        yield Target(name, "", base, "")
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _until_ready(process: asyncio.subprocess.Process, url: str) -> None:
    deadline = time.monotonic() + READY_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"replay server exited ({process.returncode})")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"replay server not ready within {READY_S} s")


async def _replay_counts(base: str) -> Result:
    """How many requests the replay answered, and which it had to forward (not recorded)."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(base + replay.MISSES_PATH) as response,
    ):
        counts: Result = await response.json()
        return counts


async def _take_turns(
    ctx: Context, browser: Browser, systems: list[Target], results: dict[str, Result]
) -> None:
    """Each page, round by round, every system once a round (a first visit and the return
    visits); the order rotates by one each round."""
    p = ctx.profile
    visits = 1 + p.ui_return_visits
    for name in ("run_charts", "runs_table"):
        loads: dict[str, list[list[dict[str, float]]]] = {
            s.name: [[] for _ in range(visits)] for s in systems
        }
        for round_ in range(-p.ui_warmups, p.ui_repeats):
            k = round_ % len(systems)
            for system in systems[k:] + systems[:k]:
                url, condition = results[system.name]["pages"][name]
                got = await _visits(
                    browser, system.read_url, url, condition, p.request_timeout_s, visits
                )
                if round_ >= 0:
                    for i, one in enumerate(got):
                        loads[system.name][i].append(one)
        for system in systems:
            out = results[system.name]
            out[name] = summary(loads[system.name][0])
            if visits > 1:
                out[f"{name}_warm"] = summary(loads[system.name][-1])
            if visits > 2:
                out[f"{name}_second"] = summary(loads[system.name][1])


__all__ = ["experiment", "floor_name", "measure", "ui"]
