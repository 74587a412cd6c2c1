"""The sandbox's phone view in a real browser: STOP and START answered, a keypad on calls,
each conversation open at its newest message, and a favicon on both servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.dealers.service import forget_cached_rooftops
from app.demo import demo_holidays
from app.deps import Database
from app.messaging.dispatcher import dispatch_due
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.conversations.conftest import customer_on, repair_order, rooftop
from tests.support import ServedApp, load_sample_dealer

pytestmark = pytest.mark.browser

SAM = "+14155550142"
SHOTS = Path("/tmp/shots31c")


@pytest.fixture
def phones(web_settings: Settings, web: ServedApp, database: Database) -> Iterator[SandboxServer]:
    """The sample dealer (Toyota open around the clock, as in the demo) and its sandbox."""
    load_sample_dealer(database)
    with database.transaction() as session:
        toyota = rooftop(session)
        toyota.config = {**toyota.config, "store_hours": "Mon-Sun 0:00-24:00"}
        ford = rooftop(session, "bayview-ford")  # closed for holidays, as in the demo
        holidays = [d.isoformat() for d in demo_holidays(ford.timezone, datetime.now(UTC))]
        ford.config = {**ford.config, "holidays": holidays}
        sam = customer_on(session, SAM, first="Sam", last="Lee")
        repair_order(session, sam, ro_number="R77", stage="in_repair")
    forget_cached_rooftops()
    config = SandboxConfig(
        account_sid=web_settings.twilio_account_sid,
        auth_token=web_settings.twilio_auth_token,
        pitwall_public_url=web_settings.public_url,
        phone_numbers=("+14155550100", "+14155550200"),
        callback_delay_s=0.05,
    )
    with SandboxServer(config) as server:
        yield server
    forget_cached_rooftops()


def _card(page: Any) -> Any:
    return page.locator("#t-14155550142")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_stop_and_start_are_confirmed_on_the_phone(
    browser: Any, phones: SandboxServer, width: int
) -> None:
    context = browser.new_context(base_url=phones.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=from]", SAM)
    page.fill("form.new input[name=body]", "STOP")
    page.click("form.new button")
    card = _card(page)
    card.get_by_text("You have successfully been unsubscribed").wait_for()
    card.locator("input[name=body]").fill("START")
    card.get_by_role("button", name="Send").click()
    _card(page).get_by_text("You have successfully been re-subscribed").wait_for()
    _shot(page, f"phone-stop-start-{width}")
    context.close()


def test_the_keypad_presses_1_during_a_call_and_reaches_the_desk(
    browser: Any, phones: SandboxServer, database: Database, web_settings: Settings
) -> None:
    # Enough texts to overflow the card: it must still open at the newest.
    for n in range(8):
        httpx.post(
            f"{phones.url}/_sandbox/inbound",
            json={"from": SAM, "body": f"is my car ready yet? ({n})"},
            timeout=15,
        ).raise_for_status()
    context = browser.new_context(base_url=phones.url, viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.goto("/")
    card = _card(page)
    card.get_by_role("button", name="Call the store").click()
    card = _card(page)
    card.get_by_text("is being repaired").first.wait_for()  # the status, read out
    keypad = card.locator("form.keypad")
    assert keypad.locator("button").count() == 12
    at_bottom = card.locator(".thread").evaluate(
        "t => t.scrollHeight > t.clientHeight && t.scrollTop + t.clientHeight >= t.scrollHeight - 2"
    )
    assert at_bottom, "the card opens scrolled to its newest message"
    _shot(page, "phone-keypad-390")
    keypad.get_by_role("button", name="Press 1").click()
    card = _card(page)
    card.get_by_text("Pressed 1").wait_for()
    not_answered = card.get_by_role("button", name="Not answered")
    not_answered.wait_for()  # 1 put the call through to the service desk
    assert card.locator("form.keypad").count() == 0  # the menu has its answer
    not_answered.click()
    _card(page).get_by_text("Store line: no-answer").wait_for()
    _card(page).get_by_text("no one could take your call").wait_for()  # Pitwall has answered
    gateway = TwilioGateway(
        web_settings.twilio_account_sid, web_settings.twilio_auth_token, api_url=phones.url
    )
    try:
        dispatch_due(
            database, gateway=gateway, public_url=web_settings.public_url, worker_id="phone-test"
        )
    finally:
        gateway.close()
    page.reload()
    _card(page).get_by_text("Sorry we missed your call to Bayview Toyota").wait_for()
    _shot(page, "phone-missed-call-390")
    context.close()


def test_the_favicon_answers_on_the_web_app_and_the_phone_view(
    browser: Any, phones: SandboxServer, web: ServedApp
) -> None:
    for base in (web.url, phones.url):
        response = httpx.get(f"{base}/favicon.ico", timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/x-icon"
        assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    context = browser.new_context(base_url=web.url)
    page = context.new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto("/login")
    page.goto(phones.url + "/")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.ico"
    assert missing == []
    context.close()


def test_a_visitor_texts_and_calls_the_closed_store_and_hears_when_it_opens(
    browser: Any, phones: SandboxServer
) -> None:
    context = browser.new_context(base_url=phones.url, viewport={"width": 390, "height": 900})
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=from]", "+14155550888")
    page.fill("form.new input[name=body]", "Can someone call me about my truck?")
    page.select_option("select[name=to]", "+14155550200")
    page.click("form.new button")
    card = page.locator("#t-14155550888")
    card.get_by_text("we're closed now; an advisor will reply when we open").wait_for()
    card.get_by_role("button", name="Call the store").click()
    said = page.locator("#t-14155550888").get_by_text("closed today for a holiday")
    said.wait_for()
    assert "when we open, " in said.inner_text()
    assert page.locator("#t-14155550888 form.keypad").count() == 0  # no menu when closed
    _shot(page, "phone-closed-store-390")
    context.close()
