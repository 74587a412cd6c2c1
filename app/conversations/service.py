"""Inbound texts: answered, then stored under their MessageSid with the answer, in one transaction.

Answers go back as TwiML `<Message>` in the webhook's own response: the customer hears
back in a second, no Twilio API call happens inside the request, and there is nothing
to send twice (a retried MessageSid gets the stored `reply_body` again, nothing else).
Messages Pitwall starts itself (text-backs, advisor replies) go through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations import intents
from app.conversations.approvals import acknowledged, approve_or_confirm, decline_work
from app.conversations.consent_replies import blocked_at_twilio, consent_reply, twilio_answered
from app.conversations.handoff import ask_which, needs_reply, unknown_contact
from app.conversations.intents import Intent, classify
from app.conversations.matching import (
    PENDING_QUESTION_TTL,
    Candidate,
    answer_to_question,
    candidates,
    channel_of,
    choice_of,
    e164_of,
    find_or_create_contact,
)
from app.conversations.models import Approval, InboundMessage, Task
from app.conversations.storing import store
from app.conversations.tasks import HeldWrites
from app.conversations.texts import status_words
from app.conversations.turn import Turn, reply_context
from app.customers.models import Customer
from app.customers.service import current_consent
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import rooftop_for_number
from app.followups.models import FollowupPlan
from app.followups.service import stop_plan
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder

log = logging.getLogger(__name__)


class MalformedWebhook(ValueError):
    """A Twilio form without the fields every such webhook carries."""


def receive_message(session: Session, *, form: Mapping[str, str], now: datetime) -> str | None:
    """Answer an inbound text and store it under its MessageSid; the reply text or None.

    The row is written last, in one INSERT with its answer (and, on PostgreSQL, its
    conversation task's write): a retried MessageSid makes that insert find the first one
    (waiting for its commit if it is in flight) and raise AlreadyReceived, so a retry
    changes nothing and gets the first answer.
    """
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not sid:
        raise MalformedWebhook("MessageSid is missing: is this webhook configured for messages?")
    to_address, from_address = form.get("To", ""), form.get("From", "")
    rooftop = rooftop_for_number(session, to_address)
    row = InboundMessage(
        provider_sid=sid,
        group_id=rooftop.group_id if rooftop else None,
        rooftop_id=rooftop.id if rooftop else None,
        channel=channel_of(from_address),
        from_address=from_address[:40],
        to_address=to_address[:40],
        body=form.get("Body", ""),
        num_media=_media_count(form.get("NumMedia")),
        raw=dict(form),
        received_at=now,
    )
    opened: list[Task | Approval] = []
    held = HeldWrites()
    if rooftop is None:
        log.warning(
            "inbound message %s to %s: no rooftop has this number; ignored", sid, to_address
        )
    else:
        row.reply_body = _answer(
            session, row=row, rooftop=rooftop, form=form, now=now, opened=opened, held=held
        )
    row.handled_at = now
    row.id = store(session, row, held)
    for made in opened:
        made.inbound_message_id = row.id
    return row.reply_body


def first_answer(session: Session, *, sid: str) -> str | None:
    """The reply stored with an inbound message the first time it came."""
    return session.scalar(
        select(InboundMessage.reply_body).where(InboundMessage.provider_sid == sid)
    )


def _media_count(value: str | None) -> int:
    """NumMedia as a count; anything else (text, "1e3", a huge number) is 0, the form is kept
    whole in `raw`, and the text is answered all the same."""
    return int(value) if value and value.isdigit() and len(value) <= 2 else 0


def _answer(
    session: Session,
    *,
    row: InboundMessage,
    rooftop: Rooftop,
    form: Mapping[str, str],
    now: datetime,
    opened: list[Task | Approval],
    held: HeldWrites,
) -> str | None:
    address = row.from_address.removeprefix("whatsapp:").strip()
    region = "US"
    if not address.startswith("+"):
        # Twilio sends E.164; only a number without its country needs the group's region.
        group = session.get(DealerGroup, rooftop.group_id)
        region = group.default_region if group else "US"
    e164 = e164_of(address, region)
    if e164 is None:
        log.warning(
            "inbound message %s from %r: not a phone number; ignored",
            row.provider_sid,
            row.from_address,
        )
        return None
    # The phone, its customers, any pending "which vehicle?" question and what the phone
    # was last sent: one round trip.
    contact = find_or_create_contact(
        session, rooftop=rooftop, e164=e164, question_asked_since=now - PENDING_QUESTION_TTL
    )
    row.phone_id = contact.phone.id
    row.customer_id = contact.only_customer.id if contact.only_customer else None
    opted_out = False
    if intents.depends_on_opt_out(row.body):
        # Only a bare "YES" means something else to an opted-out sender: only then ask the
        # ledger.
        opted_out = (
            current_consent(
                session, phone_id=contact.phone.id, channel=row.channel, purpose="status"
            )
            is False
        )
    context = reply_context(contact.last_sent, now=now)
    intent = classify(row.body, opted_out=opted_out, reply_to=context.reply_to)
    carrier = twilio_answered(
        session,
        row=row,
        rooftop=rooftop,
        contact=contact,
        form=form,
        opted_out=opted_out,
    )
    if carrier is not None and (intent.name != carrier or not intent.by_keyword):
        # Twilio has acted on the keyword already (blocked, unblocked or answered): so does
        # Pitwall, whatever else the words could mean ("CANCEL", a bare YES while blocked).
        intent = Intent(carrier, "en", label=carrier, by_keyword=True)
    _note(row, intent, context.reply_to)
    turn = Turn(
        session=session,
        row=row,
        rooftop=rooftop,
        contact=contact,
        now=now,
        intent=intent,
        context=context,
        twilio_replied=carrier is not None,
        opened=opened,
        held=held,
    )
    _learn_language(turn)
    if intent.by_keyword:
        return consent_reply(turn, intent.name)
    blocked_by = blocked_at_twilio(turn)
    if blocked_by is not None:
        # Twilio refuses every text to this phone until it texts START, this answer too: a
        # person answers by phone, and the ledger keeps what the customer asked for.
        if intent.name in (intents.OPT_OUT, intents.OPT_IN, intents.HELP):
            consent_reply(turn, intent.name)
        else:
            needs_reply(
                turn,
                note=f"Twilio blocks texts from {blocked_by} to this phone until the "
                "customer texts START: answer by phone: ",
            )
        return None
    # An answer to "which vehicle?" / "reply 1 or 2" is read before anything the model says.
    question = (
        session.get(InboundMessage, contact.pending_question_id)
        if contact.pending_question_id is not None
        else None
    )
    if question is not None and question.pending_choices:
        picked = answer_to_question(row.body, question.pending_choices)
        if picked is not None:
            question.pending_choices = None
            row.intent = question.intent
            return _resolved(turn, picked, intent_name=question.intent or intents.OTHER)
    if intent.name in (intents.OPT_OUT, intents.OPT_IN, intents.HELP):
        return consent_reply(turn, intent.name)
    if contact.is_new:
        return unknown_contact(turn)
    return _act(turn)


def _note(row: InboundMessage, intent: Intent, reply_to: str) -> None:
    row.intent, row.intent_label = intent.name, intent.label
    row.intent_confidence = round(intent.confidence, 4)
    row.intent_guesses = [[label, round(p, 4)] for label, p in intent.guesses] or None
    row.reply_to = reply_to
    row.language = None if intent.by_keyword else intent.language


def _act(turn: Turn) -> str | None:
    """What the text asks for, given what Pitwall sent last."""
    name = turn.intent.name
    if name == intents.STATUS:
        return _status_question(turn)
    if name in (intents.APPROVE, intents.CONFIRM_APPROVAL):
        return approve_or_confirm(turn)
    if name == intents.DECLINE:
        return _decline_followup(turn)
    if name == intents.DECLINE_WORK:
        return decline_work(turn)
    if name == intents.ACKNOWLEDGE:
        return acknowledged(turn)
    if name == intents.BOOKING:
        return needs_reply(turn, note="wants to book: ")
    if name == intents.UNSURE and turn.intent.label == intents.STATUS:
        return _clarify(turn)
    return needs_reply(turn)


def _learn_language(turn: Turn) -> None:
    """Two texts in a row in one language that is not the customer's: write in it from now on."""
    customer, language = turn.contact.only_customer, turn.row.language
    if (
        customer is not None
        and language is not None
        and language == turn.context.previous_language
        and customer.preferred_language != language
    ):
        customer.texts_language = language


# --- which customer, which car --------------------------------------------------------------


def _resolved(turn: Turn, picked: Mapping[str, object], *, intent_name: str) -> str | None:
    if picked.get("advisor"):
        return needs_reply(turn)
    customer = turn.session.get(Customer, picked["customer_id"])
    order = turn.session.get(RepairOrder, picked["repair_order_id"])
    if customer is None or order is None:
        return needs_reply(turn)
    turn.row.customer_id = customer.id
    if intent_name in (intents.APPROVE, intents.CONFIRM_APPROVAL):
        # Which vehicle was settled; the approval itself still passes every gate.
        return approve_or_confirm(turn)
    return _tell_status(turn, Candidate(customer=customer, repair_order=order))


# --- status ----------------------------------------------------------------------------------


def _status_question(turn: Turn) -> str | None:
    options = candidates(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if not options:
        needs_reply(turn, none_open=True)
        return turn.say("answer_no_open_ro")
    if len(options) == 1:
        return _tell_status(turn, options[0])
    return ask_which(turn, options)


def _clarify(turn: Turn) -> str | None:
    """Probably a status question, but not surely: ask (1 status, 2 advisor), never guess."""
    options = candidates(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if len(options) != 1:
        return needs_reply(turn)
    option = options[0]
    turn.row.pending_choices = [
        choice_of(option),
        {"label": "advisor", "advisor": True},
    ]
    turn.row.reply_kind = "clarify"
    return turn.say("clarify_status", option.customer, vehicle=option.vehicle_label)


def _tell_status(turn: Turn, candidate: Candidate) -> str:
    turn.row.customer_id = candidate.customer.id
    turn.row.repair_order_id = candidate.repair_order.id
    language = turn.language(candidate.customer)
    words = status_words(
        candidate.repair_order, rooftop=turn.rooftop, language=language, now=turn.now
    )
    # An answer that names the lines waiting and their total asks for YES, as a confirmation.
    waiting = words.waiting_on == "approval"
    turn.row.reply_kind = "approval_confirm" if waiting else "status_answer"
    return turn.say("answer_status", candidate.customer, **words.context())


# --- follow-ups -------------------------------------------------------------------------------


def _decline_followup(turn: Turn) -> str | None:
    """ "No" / "not interested": end the follow-up cadence; status texts stay allowed."""
    ids = [c.id for c in turn.contact.customers]
    plans = list(
        turn.session.scalars(
            select(FollowupPlan).where(
                FollowupPlan.customer_id.in_(ids), FollowupPlan.state == "active"
            )
        )
    )
    # In a household, stop only the plans whose reminders went to this phone.
    messaged = set(
        turn.session.scalars(
            select(OutboundMessage.repair_order_id).where(
                OutboundMessage.phone_id == turn.contact.phone.id,
                OutboundMessage.kind == "followup",
            )
        )
    )
    targeted = [p for p in plans if p.repair_order_id in messaged]
    if not targeted and turn.contact.only_customer is not None:
        targeted = plans
    if not targeted:
        return needs_reply(turn)
    for plan in targeted:
        # stop_plan also cancels a touch already queued but not yet sent (e.g. held overnight).
        stop_plan(turn.session, plan=plan, reason="customer said no", at=turn.now)
    customer = (
        turn.session.get(Customer, targeted[0].customer_id) if targeted[0].customer_id else None
    )
    turn.row.reply_kind = "followup_stopped"
    return turn.say("answer_followup_stopped", customer)
