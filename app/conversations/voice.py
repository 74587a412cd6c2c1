"""Calls: a customer with an open repair order hears its status; others reach the service desk.

A call is stored first under its CallSid. Calls nobody answers (Dial busy, no-answer,
failed) and calls after store hours become one text-back through the outbox and one
callback task, each under a dedupe key, however often Twilio repeats the webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.conversations import twiml
from app.conversations.matching import (
    Candidate,
    Contact,
    candidates,
    e164_of,
    find_or_create_contact,
)
from app.conversations.models import Call
from app.conversations.service import MalformedWebhook
from app.conversations.tasks import open_task
from app.conversations.texts import (
    VOICE_LANGUAGE,
    closed_until_words,
    language_of,
    say,
    spoken_hours,
    status_words,
)
from app.customers.models import Customer, Phone
from app.customers.service import customers_for_phone
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import rooftop_for_number
from app.messaging.first_text import is_first_text, with_first_text_notice
from app.messaging.service import MessageRequest, enqueue
from app.repair_orders.models import RepairOrder

log = logging.getLogger(__name__)

MENU_ACTION = "/webhooks/twilio/voice?step=menu"
DIAL_ACTION = "/webhooks/twilio/voice/dial-status"
MISSED = ("busy", "no-answer", "failed")
# Said instead of pressing 1; matched loosely in whatever the speech recogniser heard.
ASK_FOR_PERSON = (
    "advisor",
    "adviser",
    "asesor",
    "conseiller",
    "agent",
    "person",
    "representative",
    "operator",
)


def _sid(form: Mapping[str, str]) -> str:
    sid = form.get("CallSid", "")
    if not sid:
        raise MalformedWebhook("CallSid is missing: is this webhook configured for voice?")
    return sid


def _region(session: Session, rooftop: Rooftop) -> str:
    group = session.get(DealerGroup, rooftop.group_id)
    return group.default_region if group else "US"


def answer_call(session: Session, *, form: Mapping[str, str], now: datetime) -> str:
    """The TwiML for a new inbound call; a retried CallSid gets the first answer again."""
    sid = _sid(form)
    stored = session.scalar(select(Call).where(Call.call_sid == sid))
    if stored is not None:
        return stored.answer_twiml or twiml.render()
    rooftop = rooftop_for_number(session, form.get("To", ""))
    call = Call(
        call_sid=sid,
        rooftop_id=rooftop.id if rooftop else None,
        from_address=form.get("From", "")[:40],
        to_address=form.get("To", "")[:40],
        started_at=now,
    )
    try:
        with session.begin_nested():
            session.add(call)
    except IntegrityError:
        first = session.scalar(select(Call).where(Call.call_sid == sid))
        return (first.answer_twiml if first else None) or twiml.render()
    if rooftop is None:
        log.warning(
            "inbound call %s to %s: no rooftop has this number; not answered", sid, call.to_address
        )
        call.answer_twiml = twiml.render()
        return call.answer_twiml
    call.answer_twiml = _first_answer(session, call=call, rooftop=rooftop, now=now)
    return call.answer_twiml


def _caller(
    session: Session, *, call: Call, rooftop: Rooftop
) -> tuple[list[Customer], Candidate | None]:
    """The caller's customers, and their one open repair order here (none when it is not one)."""
    e164 = e164_of(call.from_address, _region(session, rooftop))
    if e164 is None:
        return [], None
    customers = customers_for_phone(session, group_id=rooftop.group_id, e164=e164)
    phone = session.scalar(
        select(Phone).where(Phone.group_id == rooftop.group_id, Phone.e164 == e164)
    )
    if phone is None or not customers:
        return customers, None
    here = [
        c
        for c in candidates(session, contact=Contact(phone, customers), rooftop=rooftop)
        if c.repair_order.rooftop_id == rooftop.id
    ]
    # Two cars on one phone: a voice menu cannot ask safely, so a person answers.
    return customers, here[0] if len(here) == 1 else None


def _first_answer(session: Session, *, call: Call, rooftop: Rooftop, now: datetime) -> str:
    customers, candidate = _caller(session, call=call, rooftop=rooftop)
    customer = candidate.customer if candidate else (customers[0] if len(customers) == 1 else None)
    language = language_of(
        customer.preferred_language if customer else None, rooftop.settings.language
    )
    voice = VOICE_LANGUAGE[language]
    verbs = []
    if candidate is not None:
        call.customer_id, call.repair_order_id = candidate.customer.id, candidate.repair_order.id
        words = status_words(candidate.repair_order, rooftop=rooftop, language=language, now=now)
        verbs.append(
            twiml.say(
                say(rooftop, "voice_status", language=language, **words.context()), language=voice
            )
        )
        call.status_told = True
    elif customer is not None:
        call.customer_id = customer.id
    store = rooftop.settings.hours  # hours, holidays and special days: app/dealers/hours.py
    if not store.is_open(now):
        call.after_hours, call.outcome = True, "after_hours"
        hours = spoken_hours(list(store.weekly), language)
        opens = closed_until_words(rooftop, now=now, language=language) or ""
        said = say(
            rooftop,
            "voice_after_hours",
            language=language,
            hours=hours,
            opens=opens,
            holiday=store.is_holiday(now),
        )
        verbs.append(twiml.say(said, language=voice))
        verbs.append(twiml.hangup())
        follow_up_missed_call(session, call=call, rooftop=rooftop, now=now)
        return twiml.render(*verbs)
    if candidate is not None:
        call.outcome = "status_only"  # until the caller asks for a person
        menu = twiml.say(say(rooftop, "voice_menu", language=language), language=voice)
        verbs.append(
            twiml.gather(
                action=MENU_ACTION, prompt=menu, language=voice, hints=", ".join(ASK_FOR_PERSON)
            )
        )
        return twiml.render(*verbs)
    return _connect(session, call=call, rooftop=rooftop, now=now, language=language)


def _connect(
    session: Session, *, call: Call, rooftop: Rooftop, now: datetime, language: str
) -> str:
    """Put the caller through to the service desk; without one, it is a missed call."""
    call.outcome = None
    if not rooftop.service_desk:
        call.outcome = "missed"
        follow_up_missed_call(session, call=call, rooftop=rooftop, now=now)
        said = say(rooftop, "voice_missed", language=language)
        return twiml.render(twiml.say(said, language=VOICE_LANGUAGE[language]), twiml.hangup())
    call.forwarded = True
    return twiml.render(twiml.dial(rooftop.service_desk, action=DIAL_ACTION, timeout=20))


def menu_choice(session: Session, *, form: Mapping[str, str], now: datetime) -> str:
    """After the status: 1 (or "advisor") connects; anything else says goodbye (deflected)."""
    call = session.scalar(select(Call).where(Call.call_sid == _sid(form)))
    rooftop = session.get(Rooftop, call.rooftop_id) if call and call.rooftop_id else None
    if call is None or rooftop is None:
        return twiml.render(twiml.hangup())
    customer = session.get(Customer, call.customer_id) if call.customer_id else None
    language = language_of(
        customer.preferred_language if customer else None, rooftop.settings.language
    )
    speech = form.get("SpeechResult", "").lower()
    if form.get("Digits") == "1" or any(word in speech for word in ASK_FOR_PERSON):
        return _connect(session, call=call, rooftop=rooftop, now=now, language=language)
    said = say(rooftop, "voice_goodbye", language=language)
    return twiml.render(twiml.say(said, language=VOICE_LANGUAGE[language]), twiml.hangup())


def dial_finished(session: Session, *, form: Mapping[str, str], now: datetime) -> str:
    """The `<Dial action>` result: busy/no-answer/failed is a missed call, followed up once."""
    sid = _sid(form)
    call = session.scalar(select(Call).where(Call.call_sid == sid))
    rooftop = session.get(Rooftop, call.rooftop_id) if call and call.rooftop_id else None
    if call is None or rooftop is None:
        log.warning("dial status for unknown call %s; ignored", sid)
        return twiml.render(twiml.hangup())
    status = form.get("DialCallStatus", "")
    call.dial_status = status[:20] or None
    duration = form.get("DialCallDuration", "")
    # Seconds of a call; anything longer than a few days is not one, and never a 500.
    if duration.isdigit() and len(duration) <= 6:
        call.dial_duration_s = int(duration)
    call.ended_at = call.ended_at or now
    if status not in MISSED:
        call.outcome = "answered" if status == "completed" else (status[:20] or call.outcome)
        return twiml.render(twiml.hangup())
    call.outcome = "missed"
    follow_up_missed_call(session, call=call, rooftop=rooftop, now=now)
    customer = session.get(Customer, call.customer_id) if call.customer_id else None
    language = language_of(
        customer.preferred_language if customer else None, rooftop.settings.language
    )
    said = say(rooftop, "voice_missed", language=language)
    return twiml.render(twiml.say(said, language=VOICE_LANGUAGE[language]), twiml.hangup())


def follow_up_missed_call(session: Session, *, call: Call, rooftop: Rooftop, now: datetime) -> None:
    """One text-back through the outbox and one callback task for this CallSid, ever."""
    e164 = e164_of(call.from_address, _region(session, rooftop))
    if e164 is None:
        log.warning(
            "missed call %s from %r: no number to call back", call.call_sid, call.from_address
        )
        return
    contact = find_or_create_contact(session, rooftop=rooftop, e164=e164)
    customer = (
        session.get(Customer, call.customer_id) if call.customer_id else contact.only_customer
    )
    call.customer_id = customer.id if customer else None
    order = session.get(RepairOrder, call.repair_order_id) if call.repair_order_id else None
    language = language_of(
        customer.preferred_language if customer else None, rooftop.settings.language
    )
    enqueue(
        session,
        MessageRequest(
            rooftop_id=rooftop.id,
            customer_id=call.customer_id,
            phone_id=contact.phone.id,
            kind="textback",
            purpose="conversational",
            dedupe_key=f"call:{call.call_sid}:textback",
            body=_textback(session, rooftop, contact.phone.id, language, call.after_hours, now=now),
            repair_order_id=order.id if order else None,
            channel="sms",
            to_address=e164,
        ),
    )
    local = call.started_at.astimezone(rooftop.settings.zone)
    who = (
        customer.display_name if customer and (customer.first_name or customer.last_name) else e164
    )
    why = "after hours" if call.after_hours else "missed call"
    open_task(
        session,
        rooftop_id=rooftop.id,
        kind="callback",
        summary=f"Call back {who} at {e164} ({why} {local:%a %H:%M})",
        now=now,
        dedupe_key=f"call:{call.call_sid}:callback",
        customer_id=call.customer_id,
        repair_order_id=order.id if order else None,
        call_id=call.id,
        advisor_ref=order.advisor_ref if order else None,
    )


def _textback(
    session: Session,
    rooftop: Rooftop,
    phone_id: int,
    language: str,
    after_hours: bool,
    *,
    now: datetime,
) -> str:
    # After hours the text says when someone will call back (the next opening, not a holiday).
    opens = closed_until_words(rooftop, now=now, language=language) if after_hours else None
    body = say(
        rooftop, "voice_textback", language=language, after_hours=after_hours, opens=opens or ""
    )
    if is_first_text(session, phone_id=phone_id, rooftop_id=rooftop.id):
        body = with_first_text_notice(body, rooftop=rooftop, language=language)
    return body
