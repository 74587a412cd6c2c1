"""A person at the service drive, in a real browser: log in, watch the board, answer the inbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from app.conversations.models import Call
from app.db import utcnow
from app.deps import Database
from app.messaging.dispatcher import DispatchResult
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine
from integrations.twilio.sandbox import SandboxServer
from tests.app.web.conftest import PASSWORD, World, add_repair_order
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def log_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/board*")


def test_login_page_and_a_wrong_password(world: World, page: Any) -> None:
    page.goto("/board")
    page.wait_for_url("**/login?next=*")
    screenshot(page, "01-login")
    page.get_by_label("Email").fill("director@bayview.example")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Log in").click()
    assert "do not match a login" in page.get_by_role("alert").inner_text()
    screenshot(page, "01-login-error")


def test_board_shows_a_changed_repair_order_without_a_reload(
    world: World, page: Any, database: Database
) -> None:
    log_in(page, "toyota.advisor@bayview.example")
    ro_id = world.ro["bayview-toyota"]
    page.wait_for_selector(f'#ro-{ro_id}[data-stage="in_repair"]')
    page.evaluate("window.__sameDocument = true")
    screenshot(page, "02-board")

    # What the DMS poller does when the shop marks the car ready, and a new RO arrives.
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, ro_id)
        ro.stage, ro.raw_status = "ready_for_pickup", "READY"
    new_ro, _ = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R7001", first_name="Noor"
    )

    page.wait_for_selector(f'#ro-{ro_id}[data-stage="ready_for_pickup"]', timeout=15_000)
    page.wait_for_selector(f"#ro-{new_ro}", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    screenshot(page, "03-board-updated")

    page.set_viewport_size({"width": 768, "height": 1024})
    screenshot(page, "04-board-tablet")
    page.keyboard.press("Tab")  # the skip link comes first and is visible when focused
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_reply_from_the_inbox_reaches_the_customers_phone(
    world: World,
    page: Any,
    database: Database,
    sandbox: SandboxServer,
    dispatch: Callable[[], DispatchResult],
) -> None:
    log_in(page, "toyota.advisor@bayview.example")
    page.get_by_role("link", name="Inbox").click()
    task = page.locator(f"#task-{world.task['bayview-toyota']}")
    task.wait_for()
    assert "When is my car ready?" in task.inner_text()
    screenshot(page, "05-inbox")

    task.get_by_label("Reply to Sam0 Lee").fill("Your RAV4 is ready at 4 pm. See you then!")
    task.get_by_role("button", name="Send reply").click()
    task.wait_for(state="detached")  # answered: off the list, swapped in by htmx

    with database.transaction() as session:
        reply = session.query(OutboundMessage).filter_by(kind="reply").one()
        to = reply.to_address
    dispatch()
    delivered = [m for m in sandbox.state.list_messages(to=to)]
    assert [m.body for m in delivered] == ["Your RAV4 is ready at 4 pm. See you then!"]

    # The board shows the reply as the RO's last message, with its delivery state.
    page.get_by_role("link", name="Board").click()
    row = page.locator(f"#ro-{world.ro['bayview-toyota']}")
    row.get_by_text("Your RAV4 is ready at 4 pm").wait_for()
    row.locator(".state-delivered").wait_for(timeout=15_000)
    screenshot(page, "05b-board-after-reply")


def test_director_page_shows_the_same_numbers_as_the_api(
    world: World, page: Any, database: Database
) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, world.ro["bayview-ford"])
        ro.stage, ro.closed_at = "closed", utcnow() - timedelta(days=3)
        calls = ((9, "missed"), (9, "missed"), (12, "missed"), (10, "status_only"),
                 (11, "status_only"), (15, "answered"))  # fmt: skip
        for n, (hour, outcome) in enumerate(calls):
            started = utcnow().replace(hour=hour + 8, minute=5) - timedelta(days=hour % 3)
            session.add(
                Call(
                    call_sid=f"CA{n:032d}",
                    rooftop_id=world.toyota_id,
                    from_address="+14155550142",
                    to_address="+14155550100",
                    outcome=outcome,
                    status_told=outcome == "status_only",
                    started_at=started,
                )
            )
        session.add(
            RoLine(
                repair_order_id=ro.id,
                line_code="A",
                op_code="BRKPAD",
                description="Front brake pads",
                amount_cents=41200,
                status="declined",
            )
        )
    log_in(page, "director@bayview.example")
    page.get_by_role("link", name="Reports").click()
    page.wait_for_selector("#recovery-kpis")
    since = page.get_attribute("#recovery", "data-since")
    api = page.request.get(f"/api/v1/reports/declined-recovery?since={since}").json()
    for kpi, key in (
        ("declined", "declined_cents"),
        ("followed-up", "followed_up_cents"),
        ("recovered", "recovered_cents"),
        ("recovered-after", "recovered_after_followup_cents"),
    ):
        assert int(page.get_attribute(f"#kpi-{kpi}", "data-cents")) == api[key], kpi
    assert (
        page.locator("#kpi-declined").inner_text()
        == "$412.00"
        == f"${api['declined_cents'] / 100:.2f}"
    )
    screenshot(page, "06-reports")


def test_advisor_cannot_reach_another_rooftops_repair_order(world: World, page: Any) -> None:
    log_in(page, "toyota.advisor@bayview.example")
    own = page.goto(f"/repair-orders/{world.ro['bayview-toyota']}")
    assert own.status == 200
    screenshot(page, "07-repair-order")
    for path in (
        f"/repair-orders/{world.ro['bayview-ford']}",
        f"/repair-orders/{world.ro['harbor-honda']}",
        f"/customers/{world.customer['bayview-ford']}",
        "/board?rooftop=bayview-ford",
    ):
        response = page.goto(path)
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Not found").is_visible()
    screenshot(page, "08-not-found")


def test_customer_timeline_and_admin_pages(world: World, page: Any) -> None:
    log_in(page, "admin@bayview.example")
    page.goto(f"/customers/{world.customer['bayview-toyota']}")
    assert "Customer wrote" in page.locator("ol.timeline").inner_text()
    screenshot(page, "09-customer")
    page.get_by_role("link", name="Admin").click()
    page.wait_for_selector("#tokens")
    screenshot(page, "10-admin")
    page.goto("/admin/templates?rooftop=bayview-toyota&kind=ready_for_pickup")
    page.wait_for_selector(".bubble")
    screenshot(page, "11-template-preview")


def test_log_out_ends_the_session_even_for_a_copied_cookie(
    world: World, page: Any, browser: Any, web: Any
) -> None:
    log_in(page, "director@bayview.example")
    copied = page.context.cookies()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/board")
    page.wait_for_url("**/login?next=*")

    thief = browser.new_context(base_url=web.url)
    try:
        thief.add_cookies(copied)
        other = thief.new_page()
        other.goto("/board")
        other.wait_for_url("**/login?next=*")
    finally:
        thief.close()


def test_error_pages_and_a_locked_login(world: World, page: Any) -> None:
    for _ in range(5):
        page.goto("/login")
        page.get_by_label("Email").fill("admin@bayview.example")
        page.get_by_label("Password").fill("guess guess guess")
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("alert").wait_for()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert "Too many failed attempts" in page.get_by_role("alert").inner_text()
    screenshot(page, "12-login-locked")

    log_in(page, "toyota.advisor@bayview.example")
    for path in ("/no-such-page", "/admin", "/reports/passwd.csv"):
        response = page.goto(path)
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Not found").is_visible()
        assert page.get_by_role("button", name="Log out").is_visible()
    screenshot(page, "13-html-404")


def test_admin_deactivates_a_user_who_is_logged_out_at_once(
    world: World, page: Any, browser: Any, web: Any
) -> None:
    director = browser.new_context(base_url=web.url)
    try:
        tablet = director.new_page()
        log_in(tablet, "director@bayview.example")
        log_in(page, "admin@bayview.example")
        page.goto("/admin#sessions")
        sessions = page.locator("#sessions")
        assert "director@bayview.example" in sessions.inner_text()
        page.get_by_role("button", name="Deactivate director@bayview.example").click()
        page.wait_for_selector("#users")
        assert "director@bayview.example" not in page.locator("#sessions").inner_text()
        screenshot(page, "14-admin-after-deactivate")
        tablet.reload()
        tablet.wait_for_url("**/login?next=*")
    finally:
        director.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_an_advisor_corrects_what_a_text_meant_with_one_click(
    world: World, page: Any, database: Database, width: int
) -> None:
    from app.conversations.models import InboundMessage, Task

    page.set_viewport_size({"width": width, "height": 900})
    task_id = world.task["bayview-toyota"]
    with database.transaction() as session:
        message = session.get_one(InboundMessage, session.get_one(Task, task_id).inbound_message_id)
        message.intent, message.intent_label, message.intent_confidence = "unsure", "question", 0.4
        message.intent_guesses = [["question", 0.4], ["status_question", 0.35], ["other", 0.1]]
    log_in(page, "toyota.advisor@bayview.example")
    page.get_by_role("link", name="Inbox").click()
    task = page.locator(f"#task-{task_id}")
    task.get_by_text("Pitwall read this as question").wait_for()
    screenshot(page, f"05c-inbox-intent-{width}")
    task.get_by_role("button", name="status question 35%").click()
    task.get_by_text("Corrected to status question").wait_for()
    with database.transaction() as session:
        assert session.get_one(InboundMessage, message.id).corrected_intent == "status_question"
    box = task.bounding_box()
    assert box is not None and box["width"] <= width  # nothing pushed off the phone's screen
