"""Headless Chromium for the UI tests and the bench's UI phase: Debian's ``chromium``
(``scripts/browser.sh``) driven by Playwright, and a page watcher that fails a page on any
same-origin answer >= 400 or any uncaught page error."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from playwright.sync_api import Browser, Page, Request, Response, sync_playwright

CHROMIUM: Final = "/usr/bin/chromium"
ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
VIEWPORT: Final = {"width": 1400, "height": 900}
_API_KINDS: Final = frozenset({"fetch", "xhr"})


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(ARGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watcher:
    """What went wrong on a page: same-origin answers >= 400 and uncaught errors.
    ``allowed`` are paths whose 404 is MLflow's own answer (e.g. users/current without
    access control: the route does not exist, which is how the UI learns auth is off)."""

    origin: str
    allowed: frozenset[str] = frozenset()
    failures: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    # The page's API requests (fetch/XHR) sent and not yet answered or failed: the page has
    # settled when this stays empty for a moment (tests/ui/pages.py). Other kinds are left out:
    # the bundle's telemetry worker script never reports its request finished.
    in_flight: set[Request] = field(default_factory=set)

    def on_response(self, response: Response) -> None:
        url = urllib.parse.urlsplit(response.url)
        if f"{url.scheme}://{url.netloc}" != self.origin:
            return
        self.seen.append(f"{response.request.method} {url.path}?{url.query}")
        if response.status >= 400 and url.path not in self.allowed:
            self.failures.append(f"{response.status} {response.request.method} {response.url}")

    def on_request(self, request: Request) -> None:
        if request.resource_type in _API_KINDS:
            self.in_flight.add(request)

    def on_request_done(self, request: Request) -> None:
        self.in_flight.discard(request)

    def on_error(self, error: Exception) -> None:
        self.failures.append(f"page error: {error}")

    def attach(self, page: Page) -> None:
        page.on("response", self.on_response)
        page.on("pageerror", self.on_error)
        page.on("request", self.on_request)
        page.on("requestfinished", self.on_request_done)
        page.on("requestfailed", self.on_request_done)

    def take(self) -> list[str]:
        failures, self.failures = self.failures, []
        return failures


@contextmanager
def new_page(
    browser: Browser, base_url: str, watcher: Watcher, credentials: tuple[str, str] | None = None
) -> Iterator[Page]:
    """A page in a fresh context (no shared storage); ``credentials`` answer the basic-auth
    challenge as a user typing them into the browser's prompt would."""
    context = browser.new_context(
        base_url=base_url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        http_credentials=(
            {"username": credentials[0], "password": credentials[1]} if credentials else None
        ),
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    watcher.attach(page)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path
