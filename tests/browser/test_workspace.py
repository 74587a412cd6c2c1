"""The advisor's workspace in a real browser, at desktop width and on a 390 px phone."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.conversations.models import Task
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.repair_orders.models import RepairOrder
from tests.app.web.conftest import World, add_repair_order
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_web_app import log_in

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("PITWALL_SHOTS", str(SCREENSHOTS)))
PHONE = {"width": 390, "height": 844}


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def _busy_day(world: World, database: Database) -> dict[str, int]:
    ros = {"reply": world.ro["bayview-toyota"]}
    for name, number, stage in (
        ("late", "R2002", "in_repair"),
        ("approval", "R2001", "awaiting_approval"),
        ("closed", "R2004", "closed"),
    ):
        ros[name], _ = add_repair_order(
            database, rooftop_id=world.toyota_id, ro_number=number, first_name=name, stage=stage
        )
    with database.transaction() as session:
        session.get_one(RepairOrder, ros["late"]).promised_at = utcnow() - timedelta(minutes=40)
        session.get_one(RepairOrder, ros["closed"]).closed_at = utcnow()
        rooftop = session.get_one(Rooftop, world.toyota_id)
        rooftop.config = {**rooftop.config, "quiet_hours": "off"}
    return ros


def test_the_board_orders_by_attention_filters_and_fits_a_phone(
    world: World, page: Any, database: Database
) -> None:
    ros = _busy_day(world, database)
    log_in(page, "toyota.advisor@bayview.example")
    rows = page.locator("#board-rows tr")
    rows.first.wait_for()
    ids = [rows.nth(i).get_attribute("id") for i in range(rows.count())]
    assert ids == [f"ro-{ros['reply']}", f"ro-{ros['approval']}", f"ro-{ros['late']}"]
    inbox_count = page.locator("[data-live='inbox']")
    inbox_count.wait_for()  # filled from /live.json
    assert inbox_count.inner_text() == "1"
    shot(page, "board-desktop")
    # A customer of the late RO writes in: the nav count and the board's counts follow, live.
    with database.transaction() as session:
        late = session.get_one(RepairOrder, ros["late"])
        session.add(
            Task(
                rooftop_id=world.toyota_id,
                customer_id=late.customer_id,
                repair_order_id=late.id,
                kind="needs_reply",
                summary="late Lee: is it done?",
            )
        )
    expect(inbox_count).to_have_text("2", timeout=15_000)
    expect(page.locator("[data-live-attention='needs reply']")).to_have_text("2", timeout=15_000)
    # Now it waits on a reply too, and was promised earliest: it goes to the top.
    expect(rows.first).to_have_id(f"ro-{ros['late']}", timeout=15_000)
    expect(rows.nth(1)).to_have_id(f"ro-{ros['reply']}")

    with database.transaction() as session:
        for task in session.query(Task).filter_by(repair_order_id=ros["late"]):
            task.state = "done"
    page.get_by_label("Late").check()
    page.wait_for_url("**late=1**")
    expect(page.locator("#board-rows tr")).to_have_count(1)
    assert page.locator(f"#ro-{ros['late']}").is_visible()
    shot(page, "board-late-filter")

    page.get_by_label("Late").uncheck()
    expect(page.locator("#board-rows tr")).to_have_count(3)
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    flags = page.locator(f"#ro-{ros['reply']} td.flags")
    box = flags.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    assert "needs reply" in flags.inner_text()
    shot(page, "board-390")

    page.get_by_label("Search name, phone, RO or VIN").fill("R2002")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?q=R2002")
    page.get_by_role("link", name="RO R2002").wait_for()
    no_sideways_scroll(page)
    shot(page, "search-390")


def test_text_a_customer_from_the_ro_page_with_a_quick_reply(
    world: World, page: Any, database: Database
) -> None:
    ros = _busy_day(world, database)
    log_in(page, "toyota.advisor@bayview.example")
    page.goto(f"/repair-orders/{ros['late']}")
    box = page.get_by_label("Your text to late Lee")
    page.get_by_role("button", name="Still working on it").click()
    assert box.input_value().startswith("We're still working on your 2021 Toyota RAV4")
    shot(page, "ro-compose-desktop")
    page.get_by_role("button", name="Send text").click()
    page.get_by_role("status").filter(has_text="Text queued").wait_for()
    entry = page.locator("ol.timeline li").first
    assert "Toyota Advisor" in entry.inner_text()
    assert "We're still working on your 2021 Toyota RAV4" in entry.inner_text()
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    shot(page, "ro-390")


def test_customer_page_and_inbox_on_a_phone(world: World, page: Any, database: Database) -> None:
    _busy_day(world, database)
    log_in(page, "toyota.advisor@bayview.example")
    page.set_viewport_size(PHONE)
    page.goto(f"/customers/{world.customer['bayview-toyota']}")
    page.get_by_role("heading", name="Conversation").wait_for()
    no_sideways_scroll(page)
    shot(page, "customer-390")
    page.get_by_role("link", name="Inbox").first.click()
    card = page.locator(f"#task-{world.task['bayview-toyota']}")
    card.wait_for()
    no_sideways_scroll(page)
    card.get_by_role("button", name="Please call me").click()
    reply = card.get_by_label("Reply to Sam0 Lee")
    assert reply.input_value() == (
        "Could you give me a call at +14155550199 when you have a minute? Thanks, Toyota Advisor."
    )
    shot(page, "inbox-390")
    card.get_by_role("button", name="Take").click()
    page.get_by_role("status").filter(has_text="Taken: the card is yours.").wait_for()
    assert "taken by Toyota Advisor" in card.inner_text()
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, "inbox-desktop")
