"""Browser tests: Playwright drives Debian's Chromium against the app served over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.deps import Database
from app.main import create_app
from app.messaging.dispatcher import DispatchResult, dispatch_due
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.web.conftest import cheap_password_hashing, world  # noqa: F401 - shared fixtures
from tests.support import ServedApp, free_port

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install -y chromium; CI does)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    port = free_port()
    return settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})


@pytest.fixture
def web(web_settings: Settings, database: Database) -> Iterator[ServedApp]:
    port = int(web_settings.public_url.rsplit(":", 1)[1])
    with ServedApp(create_app(web_settings, database=database), port=port) as served:
        yield served


@pytest.fixture
def sandbox(web_settings: Settings, web: ServedApp) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        account_sid=web_settings.twilio_account_sid,
        auth_token=web_settings.twilio_auth_token,
        pitwall_public_url=web_settings.public_url,
        callback_delay_s=0.05,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def dispatch(
    database: Database, web_settings: Settings, sandbox: SandboxServer
) -> Iterator[Callable[[], DispatchResult]]:
    """Run the dispatcher once, as `pitwall worker --once` would, against the sandbox."""
    gateway = TwilioGateway(
        web_settings.twilio_account_sid,
        web_settings.twilio_auth_token,
        api_url=sandbox.url,
        timeout=5,
    )
    yield lambda: dispatch_due(
        database, gateway=gateway, public_url=web_settings.public_url, worker_id="browser-test"
    )
    gateway.close()


@pytest.fixture
def page(browser: Any, web: ServedApp) -> Iterator[Any]:
    context = browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Any, name: str) -> None:
    """Save what the page looks like now (artifacts/ is kept by CI, ignored by git)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
