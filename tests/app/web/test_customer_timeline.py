"""The customer's timeline shows the whole conversation: what Pitwall answered by itself, how
it read each text, and why a text that never went out did not."""

from __future__ import annotations

from app.conversations.models import InboundMessage, Task
from app.db import utcnow
from app.deps import Database
from app.messaging.models import OutboundMessage
from tests.app.web.conftest import World, logged_in
from tests.support import ServedApp


def test_the_timeline_shows_pitwalls_answers_its_reading_and_why_a_text_was_held(
    world: World, served: ServedApp, database: Database
) -> None:
    customer_id = world.customer["bayview-toyota"]
    with database.transaction() as session:
        task = session.get_one(Task, world.task["bayview-toyota"])
        message = session.get_one(InboundMessage, task.inbound_message_id)
        message.intent, message.intent_label, message.intent_confidence = (
            "status_question",
            "status_question",
            0.97,
        )
        message.reply_body = "Your 2021 Toyota RAV4 is being repaired; promised for 4:00 PM today."
        message.handled_at = message.received_at
        session.add(
            OutboundMessage(
                rooftop_id=world.toyota_id,
                customer_id=customer_id,
                kind="status",
                purpose="status",
                stage="awaiting_parts",
                dedupe_key="test:held",
                channel="sms",
                body="Sam, your RAV4 is waiting on parts.",
                state="suppressed",
                suppressed_reason="daily cap: 3 texts to this customer today",
                created_at=utcnow(),
            )
        )
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        page = client.get(f"/customers/{customer_id}").text
    assert "Pitwall answered automatically (SMS)" in page
    assert "is being repaired; promised for 4:00 PM today." in page
    assert "read as status question (97%)" in page
    assert (
        "Not sent: Pitwall&#39;s text (SMS, status text)" in page
        and "daily cap: 3 texts to this customer today" in page
    )
