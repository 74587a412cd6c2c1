"""Booking declined work from the page, and the director's numbers about the page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from app.conversations.models import InboundMessage, Task
from app.customer_page.models import Booking
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.repair_orders.models import RepairOrder, RoLine
from tests.app.customer_page.conftest import Shop, new_link
from tests.app.customer_page.test_approvals import csrf
from tests.app.customer_page.test_texts import poll, record

SLOT = re.compile(r'<option value="([^"]+)">([^<]+)</option>')


def close_with_declined_work(database: Database, shop: Shop, per_hour: int = 2) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, shop.ro_id)
        ro.stage, ro.raw_status, ro.closed_at = "closed", "CLOSED", utcnow()
        session.get_one(RoLine, shop.lines["B"]).status = "declined"
        session.get_one(RoLine, shop.lines["C"]).status = "completed"
        rooftop = session.get_one(Rooftop, shop.rooftop_id)
        rooftop.config = {**rooftop.config, "booking": {"per_hour": per_hour, "days_ahead": 7}}


def test_declined_work_is_booked_into_an_open_slot_and_the_advisor_is_told(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    close_with_declined_work(database, shop, per_hour=1)
    page = page_client.get(f"/c/{shop.token}")
    assert (
        "Work you declined" in page.text
        and "Wiper blades" not in page.text.split("Work you declined")[1]
    )
    slot, label = SLOT.findall(page.text)[0]
    form = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "slot": slot}
    booked = page_client.post(f"/c/{shop.token}/book", data=form)
    assert booked.status_code == 303
    assert f"Booked: {label}" in page_client.get(f"/c/{shop.token}").text
    with database.transaction() as session:
        booking = session.scalars(select(Booking)).one()
        assert booking.kind == "appointment" and booking.total_cents == 41200
        assert [line["description"] for line in booking.lines] == ["Front brake pads"]
        task = session.get_one(Task, booking.task_id)
        assert task.kind == "booking" and "Front brake pads $412.00" in task.summary
    # The hour had one seat: another customer cannot have it.
    other_ro = shop.world.ro["bayview-toyota"]
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, other_ro)
        ro.stage, ro.closed_at = "closed", utcnow()
        session.add(
            RoLine(
                repair_order_id=other_ro,
                line_code="Z",
                op_code="TIRE",
                description="Tires",
                amount_cents=60000,
                status="declined",
            )
        )
    other = new_link(database, other_ro)
    other_page = page_client.get(f"/c/{other}")
    assert slot not in [value for value, _ in SLOT.findall(other_page.text)]
    taken = page_client.post(
        f"/c/{other}/book",
        data={"csrf_token": csrf(other_page.text), "line": str(shop.lines["B"]), "slot": slot},
    )
    assert taken.status_code == 422  # not this customer's line, and not a free slot


def test_a_call_back_request_is_a_booking_and_a_task(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    close_with_declined_work(database, shop)
    page = page_client.get(f"/c/{shop.token}")
    form = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "callback": "1"}
    assert page_client.post(f"/c/{shop.token}/book", data=form).status_code == 303
    assert "call you back" in page_client.get(f"/c/{shop.token}").text
    with database.transaction() as session:
        booking = session.scalars(select(Booking)).one()
        assert booking.kind == "callback" and booking.slot_start is None
        assert session.get_one(Task, booking.task_id).kind == "callback"


def test_one_link_books_once_and_only_once_the_ro_has_closed(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    """A resubmit, a second tab or a forwarded link gets the booking already made."""
    page = page_client.get(f"/c/{shop.token}")  # the RO is still open
    early = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "callback": "1"}
    assert page_client.post(f"/c/{shop.token}/book", data=early).status_code == 303
    close_with_declined_work(database, shop, per_hour=2)
    with database.transaction() as session:
        assert session.scalars(select(Booking)).all() == []
    page = page_client.get(f"/c/{shop.token}")
    slot, _label = SLOT.findall(page.text)[0]
    form = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "slot": slot}
    for _ in range(3):
        assert page_client.post(f"/c/{shop.token}/book", data=form).status_code == 303
    callback = {**form, "callback": "1"}
    assert page_client.post(f"/c/{shop.token}/book", data=callback).status_code == 303
    with database.transaction() as session:
        [booking] = session.scalars(select(Booking)).all()
        assert booking.kind == "appointment"
        kinds = ("booking", "callback")
        assert session.scalar(select(func.count()).where(Task.kind.in_(kinds))) == 1


def test_a_slot_that_was_never_offered_is_refused(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    close_with_declined_work(database, shop)
    page = page_client.get(f"/c/{shop.token}")
    for slot in ("2020-01-01T09:00:00+00:00", "tomorrow", "2099-01-01T03:17:00+00:00"):
        form = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "slot": slot}
        response = page_client.post(f"/c/{shop.token}/book", data=form)
        assert response.status_code == 422, slot
    with database.transaction() as session:
        assert session.scalars(select(Booking)).all() == []


def test_the_recovery_report_counts_booked_beside_recovered(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    close_with_declined_work(database, shop)
    page = page_client.get(f"/c/{shop.token}")
    slot = SLOT.findall(page.text)[0][0]
    form = {"csrf_token": csrf(page.text), "line": str(shop.lines["B"]), "slot": slot}
    page_client.post(f"/c/{shop.token}/book", data=form)
    report = page_client.get(
        "/api/v1/reports/declined-recovery",
        headers={"Authorization": f"Bearer {shop.world.admin_token}"},
    ).json()
    assert report["booked_cents"] == 41200 and report["booked_lines"] == 1
    assert report["recovered_cents"] == 0


def test_the_measures_count_opens_status_seen_without_a_call_and_answers(
    world: object, database: Database, page_client: httpx.Client
) -> None:
    from tests.app.customer_page.test_texts import LINK, bodies

    poll(database, world, record("OPEN", language="en"))  # type: ignore[arg-type]
    token = LINK.search(bodies(database)[0]).group(1)  # type: ignore[union-attr]
    headers = {"Authorization": f"Bearer {world.admin_token}"}  # type: ignore[attr-defined]
    before = page_client.get("/api/v1/reports/customer-page", headers=headers).json()
    assert before["links_sent"] == 1 and before["links_opened"] == 0
    page_client.get(f"/c/{token}")
    page_client.get(f"/c/{token}")
    after = page_client.get(
        "/api/v1/reports/customer-page?rooftop=bayview-toyota", headers=headers
    ).json()
    assert after["links_opened"] == 1  # the first open of the message, however often
    assert after["status_seen_on_page"] == 1 and after["status_seen_without_contact"] == 1
    with database.transaction() as session:
        ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == "R5001")).one()
        session.add(
            InboundMessage(
                provider_sid="SM" + "7" * 32,
                rooftop_id=ro.rooftop_id,
                channel="sms",
                from_address="+14155550177",
                to_address="+14155550100",
                body="is it ready?",
                customer_id=ro.customer_id,
                received_at=utcnow(),
            )
        )
    texted = page_client.get("/api/v1/reports/customer-page", headers=headers).json()
    assert texted["status_seen_without_contact"] == 0  # they texted that day too
    assert page_client.get("/api/v1/reports/customer-page").status_code == 401
    assert (
        page_client.get(
            "/api/v1/reports/customer-page?rooftop=harbor-honda", headers=headers
        ).status_code
        == 404
    )


def test_page_answers_and_text_approvals_are_counted_apart(
    shop: Shop, page_client: httpx.Client
) -> None:
    page = page_client.get(f"/c/{shop.token}")
    form = {
        "csrf_token": csrf(page.text),
        f"line-{shop.lines['B']}": "approve",
        f"line-{shop.lines['C']}": "decline",
    }
    assert page_client.post(f"/c/{shop.token}/answer", data=form).status_code == 303
    headers = {"Authorization": f"Bearer {shop.world.admin_token}"}
    measures = page_client.get("/api/v1/reports/customer-page", headers=headers).json()
    assert measures["approved_lines_page"] == 1 and measures["declined_lines_page"] == 1
    assert measures["approved_lines_text"] == 0
    toyota = next(r for r in measures["by_rooftop"] if r["rooftop"] == "bayview-toyota")
    assert 29 <= toyota["median_answer_minutes_page"] <= 31  # asked 30 minutes before


def test_a_status_seen_on_the_page_counts_as_a_status_contact_answered(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    from datetime import timedelta

    from app.reports.contacts import status_contacts_by_day

    page_client.get(f"/c/{shop.token}")
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, shop.rooftop_id)
        now = utcnow()
        days = status_contacts_by_day(
            session, rooftops=[rooftop], since=now - timedelta(days=1), now=now
        )
    assert sum(day.page_views for day in days) == 1
    assert sum(day.answered for day in days) >= 1


def test_the_reports_page_section_is_for_directors(shop: Shop, served: object) -> None:
    from tests.app.web.conftest import logged_in

    with logged_in(served, "director@bayview.example") as director:  # type: ignore[arg-type]
        section = director.get("/reports/customer-page?rooftop=bayview-toyota&days=30")
        assert section.status_code == 200 and 'id="kpi-links-sent"' in section.text
        assert director.get("/reports/customer-page?rooftop=harbor-honda").status_code == 404
        assert 'hx-get="/reports/customer-page?' in director.get("/reports").text
    with logged_in(served, "toyota.advisor@bayview.example") as advisor:  # type: ignore[arg-type]
        assert advisor.get("/reports/customer-page").status_code == 404
