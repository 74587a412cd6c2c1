"""The customer's page in Chromium at 390 px: from the text in the phone view to the board."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.customer_page import views as customer_page_views
from app.customer_page.models import Booking, CustomerLink, PageAnswer
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.followups.jobs import run_followups
from app.messaging.dispatcher import DispatchResult
from app.repair_orders.models import RepairOrder
from app.repair_orders.service import apply_record
from app.wiring import change_hooks
from integrations.dms.base import DmsCustomer, DmsLine, DmsPhone, DmsVehicle, RepairOrderRecord
from integrations.twilio.sandbox import SandboxServer
from tests.app.web.conftest import PASSWORD, World

SHOTS = Path("/tmp/shots28")
PHONE = {"width": 390, "height": 844}
CUSTOMER_PHONE = "(415) 555-0188"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(autouse=True)
def quick_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(customer_page_views, "POLL_SECONDS", 1)
    yield


def texting_all_day(database: Database, world: World, **changes: Any) -> None:
    """The sample Toyota store with quiet hours off (the test may run at any hour)."""
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, world.toyota_id)
        rooftop.config = {**rooftop.config, "quiet_hours": "off", **changes}


OPENED = utcnow().replace(microsecond=0) - timedelta(hours=1)


def record(
    status: str, lines: tuple[DmsLine, ...], closed_at: datetime | None = None
) -> RepairOrderRecord:
    opened = OPENED
    return RepairOrderRecord(
        ro_number="R9001",
        raw_status=status,
        opened_at=opened,
        updated_at=utcnow(),
        promised_at=opened + timedelta(hours=6),
        closed_at=closed_at,
        advisor_id="A7",
        advisor_name="Dana Ruiz",
        customer=DmsCustomer(
            external_id="C-9001",
            first_name="Priya",
            last_name="Shah",
            phones=(DmsPhone(CUSTOMER_PHONE, "mobile"),),
            email="priya@example.com",
            language="en",
            sms_consent=True,
            marketing_consent=True,
        ),
        vehicle=DmsVehicle(vin="JTMW1RFV5MD012345", year=2021, make="Toyota", model="RAV4"),
        lines=lines,
    )


OIL = DmsLine("A", "OILCHG", "Oil and filter", 8995, "approved")
BRAKES = DmsLine("B", "BRKPAD", "Front brake pads", 41200, "pending")
WIPERS = DmsLine("C", "WIPER", "Wiper blades", 3995, "pending")


def poll(database: Database, world: World, rec: RepairOrderRecord) -> None:
    """What the DMS poller does with one changed RO (the real hooks: texts, follow-ups)."""
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, world.toyota_id)
        apply_record(session, rooftop=rooftop, record=rec, hooks=change_hooks(), at=utcnow())


def phone_view(browser: Any, sandbox: SandboxServer) -> Any:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(sandbox.url + "/")
    return page


def open_latest_link(phone: Any, name: str) -> Any:
    """Tap the newest link in the phone view; the customer's page opens in a new tab."""
    phone.reload()
    links = phone.locator('a[href*="/c/"]')
    links.last.wait_for()
    shot(phone, name)
    with phone.context.expect_page() as opened:
        links.last.click()
    page = opened.value
    page.wait_for_load_state()
    return page


@pytest.mark.browser
def test_from_the_text_to_an_approval_the_advisor_sees(
    world: World,
    browser: Any,
    database: Database,
    sandbox: SandboxServer,
    dispatch: Callable[[], DispatchResult],
    web: Any,
) -> None:
    texting_all_day(database, world)
    poll(database, world, record("OPEN", (OIL,)))
    dispatch()
    phone = phone_view(browser, sandbox)
    page = open_latest_link(phone, "01-phone-view-checked-in-text")
    page.locator('#status [data-stage="checked_in"]').wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing off screen
    shot(page, "02-page-checked-in")
    page.evaluate("window.__sameDocument = true")

    # The shop starts the work: the page shows it without a reload.
    poll(database, world, record("WIP", (OIL,)))
    page.locator('#status [data-stage="in_repair"]').wait_for(timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "03-page-in-repair-live")

    # The technician finds work: the page (lines changed) reloads itself with the approvals.
    poll(database, world, record("WAITAPPR", (OIL, BRAKES, WIPERS)))
    page.locator("#approval-form").wait_for(timeout=10_000)
    shot(page, "04-page-approvals")
    page.locator("fieldset", has_text="Front brake pads").get_by_label("Approve").check()
    page.locator("fieldset", has_text="Wiper blades").get_by_label("Decline").check()
    page.get_by_role("button", name="Review my choices").click()
    page.get_by_text("Total approved").wait_for()
    assert "$412.00" in page.locator(".total").inner_text()
    shot(page, "05-confirm")
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Dana has your answer").wait_for()
    shot(page, "06-thanks")
    with database.transaction() as session:
        answer = session.scalars(select(PageAnswer)).one()
        assert [r["choice"] for r in answer.lines] == ["approve", "decline"]
        assert "HeadlessChrome" in (answer.user_agent or "") or "Mobile" in (
            answer.user_agent or ""
        )

    # The advisor's board shows the answer.
    context = browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 900})
    board = context.new_page()
    board.goto("/login")
    board.get_by_label("Email").fill("toyota.advisor@bayview.example")
    board.get_by_label("Password").fill(PASSWORD)
    board.get_by_role("button", name="Log in").click()
    board.wait_for_url("**/board*")
    with database.transaction() as session:
        ro_id = session.scalars(
            select(RepairOrder.id).where(RepairOrder.ro_number == "R9001")
        ).one()
    board.locator(f"#ro-{ro_id}").get_by_text("customer answered").wait_for()
    shot(board, "07-board-customer-answered")
    board.goto(f"/repair-orders/{ro_id}")
    board.get_by_text("approved Front brake pads").wait_for()
    shot(board, "08-ro-page-panel")
    context.close()

    # The director's reports count it: opened, page approvals against text approvals.
    context = browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 900})
    reports = context.new_page()
    reports.goto("/login")
    reports.get_by_label("Email").fill("director@bayview.example")
    reports.get_by_label("Password").fill(PASSWORD)
    reports.get_by_role("button", name="Log in").click()
    reports.wait_for_url("**/board*")
    reports.goto("/reports?rooftop=bayview-toyota")
    reports.locator("#kpi-approved").wait_for()
    assert reports.locator("#kpi-approved").inner_text() == "1 / 0"
    assert int(reports.locator("#kpi-links-opened").inner_text()) >= 1
    reports.locator("#customer-page-report").screenshot(path=str(SHOTS / "13-director-report.png"))
    context.close()
    phone.context.close()


@pytest.mark.browser
def test_a_follow_up_link_books_a_slot(
    world: World,
    browser: Any,
    database: Database,
    sandbox: SandboxServer,
    dispatch: Callable[[], DispatchResult],
) -> None:
    texting_all_day(database, world, followup_days=[0], followup_holdout_percent=0)
    declined = DmsLine("B", "BRKPAD", "Front brake pads", 41200, "declined")
    poll(database, world, record("WIP", (OIL, declined)))
    done = DmsLine("A", "OILCHG", "Oil and filter", 8995, "completed")
    poll(database, world, record("CLOSED", (done, declined), closed_at=utcnow()))
    assert run_followups(database, clock=utcnow) == 1
    dispatch()
    phone = phone_view(browser, sandbox)
    page = open_latest_link(phone, "09-phone-view-followup")
    page.get_by_text("Work you declined").wait_for()
    shot(page, "10-page-declined-work")
    options = page.locator("#slot option")
    assert options.count() > 0
    chosen = options.nth(1).inner_text()
    page.locator("#slot").select_option(index=1)
    page.get_by_role("button", name="Book this").click()
    page.get_by_text(f"Booked: {chosen}").wait_for()
    assert page.get_by_role("button", name="Book this").count() == 0  # booked once
    shot(page, "11-booked")
    with database.transaction() as session:
        booking = session.scalars(select(Booking)).one()
        assert booking.kind == "appointment" and booking.total_cents == 41200
        link = session.get_one(CustomerLink, booking.link_id)
        assert link.purpose == "followup"
    phone.context.close()


@pytest.mark.browser
def test_an_expired_link_and_someone_elses_ids_show_nothing_private(
    world: World, browser: Any, database: Database, web: Any
) -> None:
    from app.customer_page.links import mint_link
    from app.customers.models import Customer

    with database.transaction() as session:
        ro = session.get_one(RepairOrder, world.ro["bayview-toyota"])
        customer = session.get_one(Customer, ro.customer_id)
        _link, url = mint_link(
            session, ro=ro, customer=customer, purpose="status", now=utcnow() - timedelta(days=40)
        )
        ro.stage, ro.closed_at = "closed", utcnow() - timedelta(days=39)
        other_ro = world.ro["bayview-ford"]
    context = browser.new_context(base_url=web.url, viewport=PHONE, is_mobile=True)
    page = context.new_page()
    response = page.goto(url)
    assert response.status == 404
    body = page.locator("body").inner_text()
    assert "This link no longer works" in body and "(415) 555-0199" in body  # the store's
    assert "555-1001" not in body  # never the customer's number
    assert "Sam0" not in body and "RAV4" not in body
    shot(page, "12-expired-link")
    # Another customer's RO id in the URL: staff pages want a login, the page has no ids.
    for path in (f"/repair-orders/{other_ro}", f"/repair-orders/{other_ro}/customer-page"):
        page.goto(path)
        assert "/login" in page.url
    response = page.goto(f"{url}?answered=1&booked=1")
    assert response.status == 404 and "Sam" not in page.locator("body").inner_text()
    context.close()
