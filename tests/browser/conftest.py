import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.live import LiveApp, live_app

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'browser.sqlite'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    ) as running:
        yield running


@pytest.fixture
def page(app: LiveApp) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            base_url=app.base_url, viewport={"width": 1280, "height": 860}
        )
        context.set_default_timeout(20_000)
        yield context.new_page()
        context.close()
        browser.close()
