"""Debian's Chromium driven by Playwright for the web app's browser tests: launched
headless with a fresh profile, every page checked by axe-core (no serious or critical
accessibility violation) and by the browser's own console (no CSP violation), and the
main pages photographed into docs/img/ for docs/APP.md by `make screenshots`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_JS = Path(os.environ.get("MEDCHAIN_AXE_JS", ROOT / "node_modules" / "axe-core" / "axe.min.js"))
"""axe-core's script, installed by `make install` (npm, package.json)."""
SCREENSHOTS = (
    Path(os.environ["MEDCHAIN_SCREENSHOTS"]) if "MEDCHAIN_SCREENSHOTS" in os.environ else None
)
"""Where the main pages are photographed: docs/img/ under `make screenshots`; a plain
test run takes none, so that it leaves the checkout as it found it."""
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = ("serious", "critical")


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh user-data dir in `profile`."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=DESKTOP,  # type: ignore[arg-type]
        )
        try:
            yield context
        finally:
            context.close()


def watched(page: Page) -> list[str]:
    """The console errors `page` will report (a script the CSP blocked, a 404...)."""
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return errors


def accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE_JS.exists():
        raise RuntimeError(f"axe-core is not installed at {AXE_JS}: run `make install`")
    page.evaluate(AXE_JS.read_text())
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [
        f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]


def check_page(page: Page, errors: list[str], screenshot: str | None = None) -> None:
    """No serious accessibility violation and no console error; a screenshot if named."""
    assert accessibility_problems(page) == []
    assert errors == []
    if screenshot is not None and SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
