"""Times on the rooftop's clock with the zone named; RO history with old and new values;
a text that did not go out says why on the board; one inbox card closes as one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.conversations.models import Task
from app.customers.models import Consent, CustomerPhone
from app.db import utcnow
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RoEvent
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.support import ServedApp


def test_ro_history_shows_the_old_and_the_new_promised_time_on_the_rooftops_clock(
    world: World, served: ServedApp, database: Database
) -> None:
    ro_id = world.ro["bayview-toyota"]
    with database.transaction() as session:
        session.add_all(
            [
                RoEvent(
                    repair_order_id=ro_id,
                    kind="promised",
                    from_stage="awaiting_parts",
                    to_stage="awaiting_parts",
                    # 23:00 and 01:30 UTC: 3:00 PM and 5:30 PM in Los Angeles (PST)
                    detail={"from": "2026-11-24T23:00:00+00:00", "to": "2026-11-25T01:30:00+00:00"},
                    at=datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
                ),
                RoEvent(
                    repair_order_id=ro_id,
                    kind="stage",
                    from_stage="in_repair",
                    to_stage="awaiting_parts",
                    detail={"raw_status": "PARTS"},
                    at=datetime(2026, 11, 24, 19, 0, tzinfo=UTC),
                ),
            ]
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/repair-orders/{ro_id}").text
    assert "<strong>Promised time:</strong> 3:00 PM → 5:30 PM" in page
    assert "awaiting parts → awaiting parts" not in page
    assert "<strong>Stage:</strong> in repair → awaiting parts" in page
    assert "Nov 24, 12:00 PM</time>" in page  # 20:00 UTC on the rooftop's clock
    assert "Times are America/Los_Angeles." in page


def test_a_consent_row_is_on_the_rooftops_clock_with_its_zone_named(
    world: World, served: ServedApp, database: Database
) -> None:
    customer_id = world.customer["bayview-toyota"]
    with database.transaction() as session:
        link = session.scalar(select(CustomerPhone).where(CustomerPhone.customer_id == customer_id))
        assert link is not None
        session.add(
            Consent(
                group_id=1,
                phone_id=link.phone_id,
                customer_id=customer_id,
                channel="sms",
                purpose="status",
                action="granted",
                source="dms:bayview-toyota",
                at=datetime(2026, 11, 24, 17, 5, tzinfo=UTC),
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/customers/{customer_id}").text
    entry = page[page.index("Customer opted in to status texts") - 300 :]
    assert "Nov 24, 9:05 AM PST</time>" in entry  # not 5:05 PM UTC


def test_the_board_says_why_the_last_text_did_not_go_out(
    world: World, served: ServedApp, database: Database
) -> None:
    ro_id = world.ro["bayview-toyota"]
    with database.transaction() as session:
        session.add(
            OutboundMessage(
                rooftop_id=world.toyota_id,
                customer_id=world.customer["bayview-toyota"],
                repair_order_id=ro_id,
                kind="status",
                purpose="status",
                stage="awaiting_parts",
                dedupe_key="test:expired",
                channel="sms",
                body="Sam, your RAV4 is waiting on parts.",
                state="expired",
                suppressed_reason=(
                    "daily cap 3 reached for 2026-11-24; stale before 2026-11-25 16:00Z"
                ),
                created_at=utcnow(),
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        rows = client.get("/board/rows?rooftop=bayview-toyota").text
    assert "Why: daily cap 3 reached for 2026-11-24; stale before" in rows


def test_mark_done_closes_every_task_on_the_card_and_says_so(
    world: World, served: ServedApp, database: Database
) -> None:
    with database.transaction() as session:
        callback = Task(
            rooftop_id=world.toyota_id,
            customer_id=world.customer["bayview-toyota"],
            kind="callback",
            summary="Sam0 called",
        )
        session.add(callback)
        session.flush()
        callback_id = callback.id
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
        taken = client.post(
            f"/inbox/tasks/{world.task['bayview-toyota']}/take",
            data={"csrf_token": csrf_of(inbox)},
            follow_redirects=True,
        )
        assert "Taken: the card is yours." in taken.text
        assert "taken by Toyota Advisor" in taken.text  # a name, not an email
        done = client.post(
            f"/inbox/tasks/{world.task['bayview-toyota']}/done",
            data={"csrf_token": csrf_of(inbox)},
            follow_redirects=True,
        )
        assert "Done: the card is closed." in done.text and "Nothing waiting" in done.text
    with database.sessions() as session:
        assert session.get_one(Task, callback_id).state == "done"
