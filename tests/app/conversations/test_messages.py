"""Inbound texts through the signed webhook: stored once, matched to one customer, answered."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.conversations.models import Approval, InboundMessage, Task
from app.conversations.service import receive_message
from app.customers.models import Consent, Customer
from app.deps import Database
from app.followups.models import FollowupPlan
from app.repair_orders.models import RoLine
from tests.app.conversations.conftest import (
    FORD_SMS,
    OPEN_HOURS,
    TOYOTA_WHATSAPP,
    Twilio,
    customer_on,
    keyword_handling,
    message_xml,
    new_sid,
    repair_order,
    reply_of,
    sent_before,
)

SAM = "+14155550142"


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_status_question_is_answered_from_current_data(twilio: Twilio, session: Session) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(
        session, sam, ro_number="R1", stage="in_repair", promised_at=OPEN_HOURS + timedelta(hours=6)
    )
    session.commit()
    answer = reply_of(twilio.text("Is my car ready?", from_=SAM))
    assert answer == "Your 2021 Toyota RAV4 is being repaired; promised for 4:00 PM today."


def test_ready_car_in_spanish_over_whatsapp(twilio: Twilio, session: Session) -> None:
    ana = customer_on(session, SAM, first="Ana", last="Ruiz", language="es")
    repair_order(session, ana, ro_number="R2", stage="ready_for_pickup")
    session.commit()
    answer = reply_of(
        twilio.text(
            "¿Ya está listo mi carro?", from_=f"whatsapp:{SAM}", to=f"whatsapp:{TOYOTA_WHATSAPP}"
        )
    )
    assert answer == "Su 2021 Toyota RAV4 ya puede recogerse."


def test_waiting_on_approval_names_the_lines(twilio: Twilio, session: Session) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(
        session,
        sam,
        ro_number="R3",
        stage="awaiting_approval",
        lines=[("BRKPAD", "Front brake pads", 41200, "pending")],
    )
    session.commit()
    answer = reply_of(twilio.text("status?", from_=SAM))
    assert answer is not None
    assert "waiting on your approval" in answer and "Front brake pads ($412.00)" in answer


def test_same_message_sid_twice_gives_one_answer_and_one_row(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R4", stage="ready_for_pickup")
    session.commit()
    sid = new_sid()
    first = twilio.text("is it ready?", from_=SAM, sid=sid)
    second = twilio.text("is it ready?", from_=SAM, sid=sid)
    assert first.text == second.text and reply_of(first)
    assert count(session, InboundMessage) == 1


def test_unsigned_or_forged_requests_are_refused_and_nothing_is_written(
    twilio: Twilio, session: Session
) -> None:
    form = {"MessageSid": new_sid(), "From": SAM, "To": "+14155550100", "Body": "STOP"}
    assert twilio.post("/webhooks/twilio/messages", form, sign=False).status_code == 403
    assert (
        twilio.post("/webhooks/twilio/messages", form, signature="bm90IGEgc2lnbmF0dXJl").status_code
        == 403
    )
    # Signed for the listen address, not the public URL Twilio calls: also refused.
    from integrations.twilio.webhooks import compute_signature

    wrong_url = compute_signature(twilio.token, "http://testserver/webhooks/twilio/messages", form)
    assert twilio.post("/webhooks/twilio/messages", form, signature=wrong_url).status_code == 403
    assert count(session, InboundMessage) == 0
    assert count(session, Consent) == 0


def test_script_and_cdata_end_in_a_body_stay_text(twilio: Twilio, session: Session) -> None:
    evil = customer_on(session, SAM, first="<script>alert(1)</script>", last="]]>&")
    order = repair_order(
        session,
        evil,
        ro_number="R5",
        stage="awaiting_approval",
        model=(2020, "Ford", "<b>F-150]]>"),
        lines=[("X", "<script>x</script> & ]]>", 100, "pending")],
    )
    sent_before(session, order)
    session.commit()
    response = twilio.text("yes", from_=SAM)
    xml = message_xml(response)
    assert "<script>" not in xml and "]]>" not in xml
    assert "&lt;script&gt;" in xml
    assert "<script>x</script> &amp; ]]>" not in xml
    assert reply_of(response) == (
        "Thanks, <script>alert(1)</script>! We've noted your approval of "
        "<script>x</script> & ]]> ($1.00). "
        "Your advisor will confirm shortly."
    )


def test_stop_revokes_both_purposes_on_that_channel_at_once(
    twilio: Twilio, session: Session
) -> None:
    # Twilio's keyword handling is off for this account: Pitwall answers STOP itself.
    keyword_handling(session, "off")
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    answer = reply_of(twilio.text("  Stop ", from_=SAM))
    assert answer is not None and "unsubscribed" in answer
    rows = session.scalars(select(Consent).order_by(Consent.purpose)).all()
    assert [(r.channel, r.purpose, r.action, r.source) for r in rows] == [
        ("sms", "marketing", "revoked", "keyword"),
        ("sms", "status", "revoked", "keyword"),
    ]


def test_stop_on_a_plain_long_code_is_twilios_to_answer_and_its_block_is_recorded(
    twilio: Twilio, session: Session
) -> None:
    """No OptOutType: Twilio has answered and blocked the phone all the same."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert reply_of(twilio.text("stop", from_=SAM)) is None
    rows = session.scalars(select(Consent).order_by(Consent.id)).all()
    assert [(r.purpose, r.action, r.source, r.detail) for r in rows] == [
        ("carrier", "revoked", "twilio:STOP", "+14155550100"),
        ("status", "revoked", "keyword", None),
        ("marketing", "revoked", "keyword", None),
    ]


def test_stop_answered_by_twilio_advanced_opt_out_gets_no_second_reply(
    twilio: Twilio, session: Session
) -> None:
    keyword_handling(session, "advanced")
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert reply_of(twilio.text("STOP", from_=SAM, OptOutType="STOP")) is None
    assert count(session, Consent) == 3  # status, marketing, and Twilio's block


def test_advanced_opt_out_answers_only_what_it_flags(twilio: Twilio, session: Session) -> None:
    """With Advanced Opt-Out the keywords are the owner's: a STOP Twilio did not flag is ours."""
    keyword_handling(session, "advanced")
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    answer = reply_of(twilio.text("STOP", from_=SAM))
    assert answer is not None and "unsubscribed" in answer
    assert reply_of(twilio.text("PARAR", from_=SAM, OptOutType="STOP")) is None


def test_yes_after_stop_opts_back_in_and_start_confirms(twilio: Twilio, session: Session) -> None:
    keyword_handling(session, "off")
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    twilio.text("STOP", from_=SAM)
    answer = reply_of(twilio.text("YES", from_=SAM))
    assert answer is not None and "resubscribed" in answer
    latest = session.scalars(select(Consent).order_by(Consent.id.desc())).first()
    assert latest is not None and (latest.purpose, latest.action) == ("status", "granted")
    # Marketing was never granted, so START does not invent written consent.
    assert (
        session.scalar(
            select(func.count()).where(Consent.purpose == "marketing", Consent.action == "granted")
        )
        == 0
    )


def test_help_names_the_rooftop_and_desk(twilio: Twilio, session: Session) -> None:
    keyword_handling(session, "off")
    answer = reply_of(twilio.text("HELP", from_=SAM))
    assert (
        answer == "Bayview Toyota service: call +14155550199. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )


def test_yes_approves_the_pending_lines_and_tells_the_advisor(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    order = repair_order(
        session,
        sam,
        ro_number="R6",
        stage="awaiting_approval",
        lines=[
            ("BRKPAD", "Front brake pads", 41200, "pending"),
            ("OIL", "Oil and filter", 8995, "approved"),
        ],
    )
    sent_before(session, order)
    session.commit()
    confirm = reply_of(twilio.text("Yes please", from_=SAM))
    assert confirm == (
        "To approve Front brake pads ($412.00) on your 2021 Toyota RAV4, reply YES. "
        "Questions? Just reply and your advisor will answer."
    )
    assert count(session, Approval) == 0
    session.rollback()  # SQLite: end the read before the webhook writes
    answer = reply_of(twilio.text("YES", from_=SAM))
    assert (
        answer == "Thanks, Sam! We've noted your approval of Front brake pads ($412.00). "
        "Your advisor will confirm shortly."
    )
    record = session.scalars(select(Approval)).one()
    assert (record.words, record.total_cents, record.shown) == (
        "YES",
        41200,
        "Pitwall's confirmation",
    )
    assert record.lines == [
        {"line": "A", "op_code": "BRKPAD", "description": "Front brake pads", "amount_cents": 41200}
    ]
    assert record.inbound_message_id is not None and record.repair_order_id == order.id
    session.expire_all()
    lines = {line.op_code: line for line in session.scalars(select(RoLine))}
    assert (
        lines["BRKPAD"].customer_approved_at is not None
        and lines["OIL"].customer_approved_at is None
    )
    task = session.scalars(select(Task).where(Task.kind == "approval")).one()
    assert task.summary.startswith("Sam Lee approved Front brake pads $412.00 by text")
    assert task.repair_order_id == order.id and task.advisor_ref == "A7"


def test_no_stops_followups_but_not_status_texts(twilio: Twilio, session: Session) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    order = repair_order(session, sam, ro_number="R7", stage="closed")
    session.add(
        FollowupPlan(
            repair_order_id=order.id,
            rooftop_id=order.rooftop_id,
            customer_id=sam.id,
            closed_at=OPEN_HOURS - timedelta(days=3),
        )
    )
    sent_before(session, order, template="followup", ago=timedelta(days=2))
    session.commit()
    answer = reply_of(twilio.text("no thanks, not right now", from_=SAM))
    assert answer is not None and "won't send more reminders" in answer
    plan = session.scalars(select(FollowupPlan)).one()
    session.refresh(plan)
    assert (plan.state, plan.stopped_reason) == ("stopped", "customer said no")
    assert count(session, Consent) == 0


def test_anything_else_goes_to_one_open_inbox_task(twilio: Twilio, session: Session) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    first = reply_of(twilio.text("Do you have a loaner available?", from_=SAM))
    second = reply_of(twilio.text("also the wipers squeak, can you look at them", from_=SAM))
    assert first is not None and "will reply shortly" in first
    assert second is None  # one acknowledgement per conversation
    task = session.scalars(select(Task)).one()
    assert task.kind == "needs_reply" and task.summary.startswith("Sam Lee: also the wipers squeak")


def test_unknown_number_becomes_a_contact_in_the_inbox(twilio: Twilio, session: Session) -> None:
    answer = reply_of(twilio.text("hi, is my truck done?", from_="+14155550177", to=FORD_SMS))
    assert answer is not None and "Bayview Ford" in answer
    assert count(session, Customer) == 1
    task = session.scalars(select(Task)).one()
    assert task.kind == "unknown_contact" and "+14155550177" in task.summary


def test_unknown_rooftop_number_is_an_empty_answer(twilio: Twilio, session: Session) -> None:
    response = twilio.text("hello", from_=SAM, to="+14155550999")
    assert reply_of(response) is None
    assert count(session, Task) == 0


def test_household_is_asked_which_vehicle_and_the_answer_resolves_it(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    kim = customer_on(session, SAM, first="Kim", last="Lee")
    repair_order(session, sam, ro_number="R8", stage="ready_for_pickup")
    repair_order(
        session, kim, ro_number="R9", stage="awaiting_parts", model=(2019, "Ford", "F-150")
    )
    session.commit()
    question = reply_of(twilio.text("is it ready?", from_=SAM))
    assert question == "Is this about the RAV4 or the F-150? Reply 1 or 2."
    assert "Sam" not in question and "Kim" not in question
    answer = reply_of(twilio.text("F150", from_=SAM))
    assert answer == (
        "Your 2019 Ford F-150 is waiting on parts.\nWe'll text you as soon as they arrive."
    )
    again = reply_of(
        twilio.text("1", from_=SAM)
    )  # the question was answered: "1" is just a text now
    assert again is not None and "RAV4" not in again


def test_household_prefers_the_customer_with_an_open_order_here(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    kim = customer_on(session, SAM, first="Kim", last="Lee")
    repair_order(session, sam, ro_number="R10", stage="closed")
    repair_order(
        session, kim, ro_number="R11", stage="quality_check", model=(2019, "Ford", "F-150")
    )
    session.commit()
    answer = reply_of(twilio.text("any update?", from_=SAM))
    assert answer == "Your 2019 Ford F-150 is in a final quality check."


def test_a_retry_racing_the_first_delivery_keeps_only_the_first(
    twilio: Twilio, session: Session, database: Database
) -> None:
    """Twilio retries while the first attempt is still answering: one row, one task, one answer.

    The retry's own work (here a second inbox task) rolls back with it.
    """
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    sid = new_sid()
    form = {"MessageSid": sid, "From": SAM, "To": "+14155550100", "Body": "Call me please"}
    first_reply: list[str | None] = []
    with database.transaction() as first:
        first_reply.append(receive_message(first, form=form, now=OPEN_HOURS))
        # The retry arrives now, from another connection, and waits for the first's commit
        # (PostgreSQL: on the row's unique key; SQLite: on the write lock).
        retry = ThreadPoolExecutor(1).submit(twilio.text, "Call me please", from_=SAM, sid=sid)
        time.sleep(0.3)
        assert not retry.done()
    assert reply_of(retry.result(timeout=10)) == first_reply[0] is not None
    assert count(session, InboundMessage) == 1
    tasks = session.scalars(select(Task)).all()
    assert len(tasks) == 1 and tasks[0].inbound_message_id is not None


def test_a_webhook_signed_by_twilios_own_validator_is_accepted_with_repeated_values(
    twilio: Twilio, session: Session
) -> None:
    """Issue 27: the same MediaUrl twice counts once in Twilio's signature, as Twilio signs."""
    from twilio.request_validator import RequestValidator

    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    pairs = [
        ("MessageSid", new_sid()),
        ("From", SAM),
        ("To", "+14155550100"),
        ("Body", "photo of the noise"),
        ("NumMedia", "2"),
        ("MediaUrl0", "https://api.twilio.com/m/1"),
        ("MediaUrl", "https://api.twilio.com/m/1"),
        ("MediaUrl", "https://api.twilio.com/m/1"),
    ]

    class Form(dict[str, str]):
        def getlist(self, name: str) -> list[str]:
            return [value for key, value in pairs if key == name]

    url = "https://pitwall.example.com/webhooks/twilio/messages"
    signature = RequestValidator(twilio.token).compute_signature(url, Form(pairs))
    response = twilio.client.post(
        "/webhooks/twilio/messages",
        content=urlencode(pairs),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200
    assert count(session, InboundMessage) == 1
