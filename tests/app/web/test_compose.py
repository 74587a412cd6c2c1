"""The message box on the customer and RO pages: text anyone, with the rules still applied."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.customers.models import Consent, CustomerPhone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from tests.app.web.conftest import World, add_repair_order, csrf_of, logged_in
from tests.support import ServedApp


def _form(page: str) -> dict[str, str]:
    request_id = re.search(r'name="request_id" value="([0-9a-f]+)"', page)
    assert request_id, "the page has no message box"
    return {"csrf_token": csrf_of(page), "request_id": request_id.group(1)}


def quiet_hours(database: Database, rooftop_id: int, window: str) -> None:
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, rooftop_id)
        rooftop.config = {**rooftop.config, "quiet_hours": window}


def _outbox(database: Database) -> list[OutboundMessage]:
    with database.sessions() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def test_an_advisor_texts_a_customer_who_never_wrote_from_the_ro_page(
    world: World, served: ServedApp, database: Database
) -> None:
    ro_id, customer_id = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R3001", first_name="Ines"
    )
    quiet_hours(database, world.toyota_id, "off")  # whatever the time of day the test runs
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/repair-orders/{ro_id}").text
        assert "Text Ines Lee" in page
        assert 'data-quick-reply="Ines, our technicians are now working' in page  # the status
        assert "Still working on it" in page
        form = {**_form(page), "body": "Your loaner is at the front desk."}
        sent = client.post(f"/repair-orders/{ro_id}/texts", data=form)
        assert sent.status_code == 303
        again = client.post(f"/repair-orders/{ro_id}/texts", data=form)  # a resubmitted form
        assert again.headers["location"] == sent.headers["location"]
        shown = client.get(sent.headers["location"]).text
    assert "Text queued: it goes out within a minute" in shown
    (message,) = [m for m in _outbox(database) if m.customer_id == customer_id]
    assert (message.kind, message.purpose, message.repair_order_id) == (
        "reply",
        "conversational",
        ro_id,
    )
    assert message.body == "Your loaner is at the front desk." and message.created_by_user_id
    assert "Sending: Toyota Advisor&#39;s text (SMS, text)" in shown  # on the conversation


def test_a_customer_who_said_stop_is_not_texted_and_the_page_says_why(
    world: World, served: ServedApp, database: Database
) -> None:
    customer_id = world.customer["bayview-toyota"]
    with database.transaction() as session:
        link = session.scalar(select(CustomerPhone).where(CustomerPhone.customer_id == customer_id))
        assert link is not None
        session.add(
            Consent(
                group_id=session.get_one(Rooftop, world.toyota_id).group_id,
                phone_id=link.phone_id,
                customer_id=customer_id,
                channel="sms",
                purpose="status",
                action="revoked",
                source="keyword",
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/customers/{customer_id}").text
        form = {**_form(page), "body": "Are you coming today?"}
        shown = client.post(f"/customers/{customer_id}/texts", data=form, follow_redirects=True)
    assert "Not sent: consent: status on sms revoked (keyword)" in shown.text
    assert "Customer opted out of status texts (SMS)" in shown.text
    assert [m.state for m in _outbox(database)] == ["suppressed"]


def test_quiet_hours_hold_a_text_to_a_customer_who_is_not_mid_conversation(
    world: World, served: ServedApp, database: Database
) -> None:
    ro_id, _ = add_repair_order(
        database, rooftop_id=world.toyota_id, ro_number="R3002", first_name="Omar"
    )
    local = utcnow().astimezone(ZoneInfo("America/Los_Angeles"))  # the rooftop's and the phone's
    window = f"{(local - timedelta(hours=2)):%H:%M}-{(local + timedelta(hours=2)):%H:%M}"
    quiet_hours(database, world.toyota_id, window)
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/repair-orders/{ro_id}").text
        form = {**_form(page), "body": "Call me when you can."}
        shown = client.post(f"/repair-orders/{ro_id}/texts", data=form, follow_redirects=True)
    assert f"Held: quiet hours {window}" in shown.text and "held until" in shown.text
    (message,) = _outbox(database)
    assert message.state == "pending" and message.not_before > utcnow()


def test_an_empty_text_or_another_rooftops_customer_is_refused(
    world: World, served: ServedApp
) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/customers/{world.customer['bayview-toyota']}").text
        empty = client.post(
            f"/customers/{world.customer['bayview-toyota']}/texts",
            data={**_form(page), "body": " "},
        )
        assert empty.status_code == 422 and "write a text before sending" in empty.text
        ford = client.post(
            f"/customers/{world.customer['bayview-ford']}/texts", data={**_form(page), "body": "hi"}
        )
        assert ford.status_code == 404
