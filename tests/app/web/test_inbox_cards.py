"""An inbox card says who, which car, what was said both ways, and confirms a reply."""

from __future__ import annotations

from datetime import timedelta

from app.conversations.models import InboundMessage, Task
from app.db import utcnow
from app.deps import Database
from tests.app.web.conftest import World, csrf_of, logged_in
from tests.support import ServedApp


def test_a_card_shows_the_vehicle_the_ro_and_the_conversation_both_ways(
    world: World, served: ServedApp, database: Database
) -> None:
    task_id = world.task["bayview-toyota"]
    with database.transaction() as session:
        task = session.get_one(Task, task_id)
        first = session.get_one(InboundMessage, task.inbound_message_id)
        first.reply_body = "Your 2021 Toyota RAV4 is being repaired."
        first.handled_at = first.received_at
        session.add(
            InboundMessage(
                provider_sid="SM" + "9" * 32,
                group_id=first.group_id,
                rooftop_id=first.rooftop_id,
                customer_id=first.customer_id,
                channel="sms",
                from_address=first.from_address,
                to_address=first.to_address,
                body="ok but can I get a loaner?",
                received_at=utcnow() - timedelta(minutes=1),
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
        card = inbox[inbox.index(f'id="task-{task_id}"') :]
        card = card[: card.index("</article>")]
        assert f'href="/repair-orders/{world.ro["bayview-toyota"]}">RO R1001</a>' in card
        assert "Toyota" in card  # the vehicle
        assert "Pitwall</span>" in card and "is being repaired." in card
        assert "ok but can I get a loaner?" in card
        form = {
            "csrf_token": csrf_of(inbox),
            "body": "Yes, a loaner is ready for you.",
            "request_id": "0123456789abcdef-9",
        }
        sent = client.post(f"/inbox/tasks/{task_id}/reply", data=form, follow_redirects=True)
        assert "Reply queued: it goes out within a minute" in sent.text


def test_an_unknown_caller_is_shown_by_number_and_the_name_their_phone_gave(
    world: World, served: ServedApp, database: Database
) -> None:
    task_id = world.task["bayview-toyota"]
    with database.transaction() as session:
        task = session.get_one(Task, task_id)
        message = session.get_one(InboundMessage, task.inbound_message_id)
        task.customer_id = None
        message.from_address = "whatsapp:+14155550177"
        message.raw = {"ProfileName": "Jo Park", "From": "whatsapp:+14155550177"}
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        inbox = client.get("/inbox").text
    assert "Jo Park (+14155550177)" in inbox and "Customer 51" not in inbox
