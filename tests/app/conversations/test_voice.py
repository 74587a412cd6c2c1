"""Calls: status by voice, the menu, the service desk, missed and after-hours calls."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.models import Call, Task
from app.messaging.models import OutboundMessage
from tests.app.conversations.conftest import (
    TOYOTA_DESK,
    Twilio,
    customer_on,
    message_xml,
    new_sid,
    repair_order,
)

SAM = "+14155550142"


def twiml(response) -> ElementTree.Element:  # type: ignore[no-untyped-def]
    return ElementTree.fromstring(message_xml(response))


def test_caller_with_a_ready_car_hears_it_then_can_press_1(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R1", stage="ready_for_pickup")
    session.commit()
    sid = new_sid("CA")
    root = twiml(twilio.call(from_=SAM, sid=sid))
    said = root.find("Say")
    assert said is not None and said.get("language") == "en-US"
    assert said.text == "Hello, this is Bayview Toyota. Your 2021 Toyota RAV4 is ready for pickup."
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == "/webhooks/twilio/voice?step=menu"
    assert gather.get("numDigits") == "1" and "advisor" in (gather.get("hints") or "")

    menu = twiml(twilio.post("/webhooks/twilio/voice?step=menu", {"CallSid": sid, "Digits": "1"}))
    dial = menu.find("Dial")
    assert dial is not None and dial.text == TOYOTA_DESK
    assert (
        dial.get("action") == "/webhooks/twilio/voice/dial-status" and dial.get("timeout") == "20"
    )
    call = session.scalars(select(Call)).one()
    assert call.status_told and call.forwarded


def test_status_heard_and_no_person_asked_is_deflected(twilio: Twilio, session: Session) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee", language="es")
    repair_order(session, sam, ro_number="R2", stage="in_repair")
    session.commit()
    sid = new_sid("CA")
    first = twiml(twilio.call(from_=SAM, sid=sid))
    assert first.find("Say").get("language") == "es-US"  # type: ignore[union-attr]
    bye = twiml(twilio.post("/webhooks/twilio/voice?step=menu", {"CallSid": sid, "Digits": ""}))
    assert bye.find("Dial") is None and bye.find("Hangup") is not None
    call = session.scalars(select(Call)).one()
    assert (call.status_told, call.forwarded, call.outcome) == (True, False, "status_only")


def test_retried_call_sid_gets_the_same_answer_and_one_row(
    twilio: Twilio, session: Session
) -> None:
    sid = new_sid("CA")
    first, second = twilio.call(from_=SAM, sid=sid), twilio.call(from_=SAM, sid=sid)
    assert first.text == second.text
    assert len(session.scalars(select(Call)).all()) == 1


def test_unknown_caller_goes_straight_to_the_desk(twilio: Twilio, session: Session) -> None:
    root = twiml(twilio.call(from_="+14155550177"))
    assert root.find("Say") is None and root.find("Dial").text == TOYOTA_DESK  # type: ignore[union-attr]


def test_missed_call_gets_one_textback_and_one_task_however_often_told(
    twilio: Twilio, session: Session
) -> None:
    sid = new_sid("CA")
    twilio.call(from_=SAM, sid=sid)
    status = {
        "CallSid": sid,
        "DialCallStatus": "no-answer",
        "DialCallSid": new_sid("CA"),
        "DialCallDuration": "0",
    }
    for _ in range(3):
        root = twiml(twilio.post("/webhooks/twilio/voice/dial-status", status))
        assert root.find("Say") is not None
    texts = session.scalars(select(OutboundMessage)).all()
    assert [(m.kind, m.purpose, m.dedupe_key, m.to_address) for m in texts] == [
        ("textback", "conversational", f"call:{sid}:textback", SAM)
    ]
    assert (
        texts[0].body
        # The store's first text to this phone: it also says how to opt out (CTIA).
        == "Sorry we missed your call to Bayview Toyota. Reply here or we'll call you back."
        "\nReply STOP to opt out."
    )
    tasks = session.scalars(select(Task)).all()
    assert [(t.kind, t.dedupe_key) for t in tasks] == [("callback", f"call:{sid}:callback")]
    call = session.scalars(select(Call)).one()
    assert (call.outcome, call.dial_status) == ("missed", "no-answer")


def test_answered_dial_is_not_a_missed_call(twilio: Twilio, session: Session) -> None:
    sid = new_sid("CA")
    twilio.call(from_=SAM, sid=sid)
    twilio.post(
        "/webhooks/twilio/voice/dial-status", {"CallSid": sid, "DialCallStatus": "completed"}
    )
    assert session.scalars(select(OutboundMessage)).all() == []
    assert session.scalars(select(Call)).one().outcome == "answered"


def test_after_hours_caller_hears_the_hours_and_gets_a_textback(
    twilio: Twilio, session: Session
) -> None:
    sunday_night = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Sunday 21:00 in Los Angeles
    with time_machine.travel(sunday_night, tick=False):
        root = twiml(twilio.call(from_=SAM))
    said = " ".join(s.text or "" for s in root.findall("Say"))
    assert "Monday to Friday 7 AM to 6 PM, Saturday 8 AM to 4 PM" in said
    assert root.find("Dial") is None
    assert [m.kind for m in session.scalars(select(OutboundMessage))] == ["textback"]
    assert [t.kind for t in session.scalars(select(Task))] == ["callback"]
    assert session.scalars(select(Call)).one().after_hours


def test_the_voice_status_says_each_thing_once(twilio: Twilio, session: Session) -> None:
    """Issue 31: "waiting on parts" was said twice; an approval now names the work and price."""
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    kim = customer_on(session, "+14155550143", first="Kim", last="Lee")
    repair_order(session, sam, ro_number="R7", stage="awaiting_parts")
    repair_order(
        session,
        kim,
        ro_number="R8",
        stage="awaiting_approval",
        lines=[("BRK", "Front brake pads", 41200, "pending")],
    )
    session.commit()
    parts = twiml(twilio.call(from_=SAM)).find("Say")
    assert parts is not None and parts.text is not None
    assert parts.text.count("parts") == 1 and "waiting on parts" in parts.text
    assert parts.text.endswith("We will text you as soon as they arrive.")
    approval = twiml(twilio.call(from_="+14155550143")).find("Say")
    assert approval is not None and approval.text is not None
    assert "It is for Front brake pads, $412.00" in approval.text


def test_a_dial_duration_no_column_can_hold_still_gets_the_missed_call_followed_up(
    twilio: Twilio, session: Session
) -> None:
    """Issue 27 point 7: a huge DialCallDuration answered 422 and lost the text-back."""
    sid = new_sid("CA")
    twilio.call(from_=SAM, sid=sid)
    status = {"CallSid": sid, "DialCallStatus": "no-answer", "DialCallDuration": "9" * 30}
    response = twilio.post("/webhooks/twilio/voice/dial-status", status)
    assert response.status_code == 200
    assert [m.kind for m in session.scalars(select(OutboundMessage))] == ["textback"]
    call = session.scalars(select(Call)).one()
    assert (call.outcome, call.dial_duration_s) == ("missed", None)
