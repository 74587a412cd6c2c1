"""What customers really write, end to end through signed webhooks: answered, confirmed,
handed to an advisor or honoured as an opt-out, by what the text means and what it answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations import intents, service
from app.conversations.intents import Intent
from app.conversations.models import Approval, InboundMessage, Task
from app.customers.models import Consent, Customer
from app.repair_orders.models import RoLine
from tests.app.conversations.conftest import (
    TOYOTA_WHATSAPP,
    Twilio,
    customer_on,
    repair_order,
    sent_before,
)
from tests.app.conversations.test_messages import count, reply_of

SAM = "+14155550142"
BRAKES = ("BRKPAD", "Front brake pads and rotors", 48990, "pending")


def _waiting_on_approval(session: Session, *, ago: timedelta = timedelta(minutes=20)) -> int:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    order = repair_order(session, sam, ro_number="R40", stage="awaiting_approval", lines=[BRAKES])
    sent_before(session, order, template="awaiting_approval", ago=ago)
    session.commit()
    return order.id


def _approved_lines(session: Session) -> list[RoLine]:
    session.expire_all()
    return [
        line for line in session.scalars(select(RoLine)) if line.customer_approved_at is not None
    ]


@pytest.mark.parametrize(
    "text",
    ["hey just checking on my car", "Any word on the RAV4?", "has the part come in yet"],
)
def test_a_status_question_in_everyday_words_is_answered(
    twilio: Twilio, session: Session, text: str
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R41", stage="awaiting_parts")
    session.commit()
    answer = reply_of(twilio.text(text, from_=SAM))
    assert answer is not None and answer.startswith("Your 2021 Toyota RAV4 is waiting on parts")
    assert count(session, Task) == 0


def test_a_weak_yes_is_confirmed_with_the_items_and_total_and_only_yes_approves(
    twilio: Twilio, session: Session
) -> None:
    _waiting_on_approval(session)
    confirm = reply_of(twilio.text("ok", from_=SAM))
    assert confirm == (
        "To approve Front brake pads and rotors ($489.90) on your 2021 Toyota RAV4, "
        "reply YES. Questions? Just reply and your advisor will answer."
    )
    assert _approved_lines(session) == [] and count(session, Approval) == 0
    session.rollback()
    reply_of(twilio.text("yes", from_=SAM))
    assert len(_approved_lines(session)) == 1
    record = session.scalars(select(Approval)).one()
    assert record.words == "yes" and record.total_cents == 48990
    assert record.lines[0]["description"] == "Front brake pads and rotors"


def test_a_yes_long_after_the_request_is_confirmed_first(twilio: Twilio, session: Session) -> None:
    _waiting_on_approval(session, ago=timedelta(days=4))
    answer = reply_of(twilio.text("YES", from_=SAM))
    assert answer is not None and answer.startswith("To approve Front brake pads and rotors")
    assert _approved_lines(session) == []


@pytest.mark.parametrize(
    "text", ["yes but how much will it cost?", "ok what does it cost", "can you do it cheaper"]
)
def test_a_conditional_or_questioning_yes_goes_to_the_advisor(
    twilio: Twilio, session: Session, text: str
) -> None:
    _waiting_on_approval(session)
    answer = reply_of(twilio.text(text, from_=SAM))
    assert answer is not None and "Dana Ruiz at Bayview Toyota will reply shortly" in answer
    assert _approved_lines(session) == [] and count(session, Approval) == 0
    task = session.scalars(select(Task)).one()
    assert task.kind == "needs_reply" and text in task.summary


def test_declining_the_work_tells_the_advisor_which_lines(twilio: Twilio, session: Session) -> None:
    _waiting_on_approval(session)
    reply_of(twilio.text("no just the oil change thanks", from_=SAM))
    task = session.scalars(select(Task)).one()
    assert "declined by text (RO R40: Front brake pads and rotors)" in task.summary
    assert _approved_lines(session) == []


@pytest.mark.parametrize(
    ("text", "from_", "to", "channel", "reply_start"),
    [
        ("Stop texting me", SAM, "+14155550100", "sms", "You're unsubscribed"),
        ("please remove me from your list", SAM, "+14155550100", "sms", "You're unsubscribed"),
        (
            "no me manden más mensajes",
            f"whatsapp:{SAM}",
            f"whatsapp:{TOYOTA_WHATSAPP}",
            "whatsapp",
            "Se dio de baja",
        ),
    ],
)
def test_an_opt_out_in_ordinary_words_is_honoured_on_its_channel(
    twilio: Twilio, session: Session, text: str, from_: str, to: str, channel: str, reply_start: str
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    answer = reply_of(twilio.text(text, from_=from_, to=to))
    assert answer is not None and answer.startswith(reply_start)
    session.expire_all()
    ledger = list(session.scalars(select(Consent)))
    assert {(row.channel, row.purpose, row.action, row.source) for row in ledger} == {
        (channel, "status", "revoked", "reply"),
        (channel, "marketing", "revoked", "reply"),
    }
    message = session.scalars(select(InboundMessage)).one()
    assert message.intent == "opt_out" and message.intent_confidence is not None


def test_a_customer_who_writes_spanish_twice_is_answered_in_spanish_from_then_on(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee", language="en")
    repair_order(session, sam, ro_number="R42", stage="in_repair")
    session.commit()
    first = reply_of(twilio.text("hola, cuando va a estar lista mi camioneta?", from_=SAM))
    assert first is not None and first.startswith("Su 2021 Toyota RAV4")  # answered in kind
    reply_of(twilio.text("y ya llegaron las piezas? la necesito para trabajar", from_=SAM))
    session.expire_all()
    assert session.get_one(Customer, sam.id).texts_language == "es"
    session.rollback()  # SQLite: end the read before the webhook writes
    again = reply_of(twilio.text("??", from_=SAM))  # says nothing of its own language
    assert again is not None and again.startswith("Gracias")


def test_an_unsure_status_question_is_asked_about_then_answered_by_number(
    twilio: Twilio, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R43", stage="in_repair")
    session.commit()
    real = service.classify

    def unsure_once(text: str, **kwargs: object) -> Intent:
        if text == "hmm so?":
            return Intent(intents.UNSURE, "en", 0.35, intents.STATUS, (("status_question", 0.35),))
        return real(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "classify", unsure_once)
    question = reply_of(twilio.text("hmm so?", from_=SAM))
    assert question == (
        "Do you want the status of your RAV4? Reply 1. To reach your advisor, reply 2."
    )
    answer = reply_of(twilio.text("1", from_=SAM))
    assert answer is not None and answer.startswith("Your 2021 Toyota RAV4 is being repaired")
    reply_of(twilio.text("hmm so?", from_=SAM))
    reply_of(twilio.text("2", from_=SAM))
    task = session.scalars(select(Task)).one()
    assert task.kind == "needs_reply"


@pytest.mark.parametrize(
    "body", ["", "👍👍👍", "https://example.com/x?y=1", "4155550142", "é" * 1600, "车好了吗 ok"]
)
def test_odd_bodies_are_answered_without_error_and_never_acted_on_by_guess(
    twilio: Twilio, session: Session, body: str
) -> None:
    _waiting_on_approval(session)
    response = twilio.text(body, from_=SAM)
    assert response.status_code == 200
    assert _approved_lines(session) == [] and count(session, Consent) == 0
    stored = session.scalars(select(InboundMessage)).one()
    assert stored.body == body


def test_ok_thanks_after_the_ready_text_needs_no_one(twilio: Twilio, session: Session) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    order = repair_order(session, sam, ro_number="R44", stage="ready_for_pickup")
    sent_before(session, order, template="ready_for_pickup")
    session.commit()
    assert reply_of(twilio.text("ok thanks, see you at 5", from_=SAM)) is None
    assert count(session, Task) == 0
    stored = session.scalars(select(InboundMessage)).one()
    assert (stored.intent, stored.reply_to) == ("acknowledge", "ready")


def test_out_of_hours_the_acknowledgement_says_when_the_store_opens(
    twilio: Twilio, session: Session, clock: time_machine.Coordinates
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R45", stage="in_repair")
    session.commit()
    clock.move_to(datetime(2026, 11, 22, 9, 54, tzinfo=UTC))  # Sunday 1:54 AM in Los Angeles
    answer = reply_of(twilio.text("can someone call me about the loaner", from_=SAM))
    assert answer == (
        "Thanks, we got your message. We're closed now; Dana Ruiz at Bayview Toyota "
        "will reply when we open, 7:00 AM tomorrow."
    )
