"""Inbound texts: answered, then stored under their MessageSid with the answer, in one transaction.

Answers go back as TwiML `<Message>` in the webhook's own response: the customer hears
back in a second, no Twilio API call happens inside the request, and there is nothing
to send twice (a retried MessageSid gets the stored `reply_body` again, nothing else).
Messages Pitwall starts itself (text-backs, advisor replies) go through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.conversations import intents
from app.conversations.intents import classify
from app.conversations.matching import (
    PENDING_QUESTION_TTL,
    Candidate,
    Contact,
    answer_to_question,
    awaiting_approval,
    can_ask_which,
    candidates,
    channel_of,
    choice_of,
    e164_of,
    find_or_create_contact,
)
from app.conversations.models import InboundMessage, Task
from app.conversations.tasks import Conversation, attach_to_conversation, open_task
from app.conversations.texts import language_of, say, status_words
from app.customers.models import Consent, Customer
from app.customers.service import current_consent, record_consent, revoke_all
from app.db import is_postgres
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import rooftop_for_number
from app.followups.models import FollowupPlan
from app.followups.service import stop_plan
from app.messaging.models import OutboundMessage
from app.messaging.templates import format_money
from app.repair_orders.models import RepairOrder, RoLine

log = logging.getLogger(__name__)


class MalformedWebhook(ValueError):
    """A Twilio form without the fields every such webhook carries."""


class AlreadyReceived(Exception):
    """This MessageSid is stored already (a retry, or a delivery racing this one).

    Nothing of this attempt may stay: the caller rolls it back and answers with
    `first_answer`.
    """

    def __init__(self, sid: str) -> None:
        super().__init__(f"inbound message {sid} was received before")
        self.sid = sid


def receive_message(session: Session, *, form: Mapping[str, str], now: datetime) -> str | None:
    """Answer an inbound text and store it under its MessageSid; the reply text or None.

    The row is written last, in one INSERT with its answer: a retried MessageSid makes
    that insert find the first one (waiting for its commit if it is in flight) and raise
    AlreadyReceived, so a retry changes nothing and gets the first answer.
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
        num_media=int(form.get("NumMedia") or 0),
        raw=dict(form),
        received_at=now,
    )
    opened: list[Task] = []
    if rooftop is None:
        log.warning(
            "inbound message %s to %s: no rooftop has this number; ignored", sid, to_address
        )
    else:
        row.reply_body = _answer(
            session, row=row, rooftop=rooftop, form=form, now=now, opened=opened
        )
    row.handled_at = now
    with session.no_autoflush:  # the tasks opened for it go out after it, with its id
        row.id = session.scalar(
            _store_statement(is_postgres(session)),
            {column: getattr(row, column) for column in _STORED},
        )
    if row.id is None:
        raise AlreadyReceived(sid)
    for task in opened:
        task.inbound_message_id = row.id
    return row.reply_body


def first_answer(session: Session, *, sid: str) -> str | None:
    """The reply stored with an inbound message the first time it came."""
    return session.scalar(
        select(InboundMessage.reply_body).where(InboundMessage.provider_sid == sid)
    )


_STORED = tuple(column.key for column in InboundMessage.__table__.columns if column.key != "id")


@cache
def _store_statement(postgres: bool) -> Any:
    """INSERT ... ON CONFLICT (provider_sid) DO NOTHING RETURNING id, built once: every
    inbound text runs it, and building a statement costs more than running it."""
    table = cast(Table, InboundMessage.__table__)
    insert = postgresql.insert if postgres else sqlite.insert
    return (
        insert(table)
        .values({name: bindparam(name, type_=table.c[name].type) for name in _STORED})
        .on_conflict_do_nothing(index_elements=["provider_sid"])
        .returning(table.c.id)
    )


@dataclass
class _Turn:
    """One inbound message being answered."""

    session: Session
    row: InboundMessage
    rooftop: Rooftop
    contact: Contact
    now: datetime
    hint: str | None  # language of the rule that matched, if any
    twilio_replied: bool  # Twilio's Advanced Opt-Out already answered STOP/START/HELP
    opened: list[Task]  # tasks opened for this message: they get its id once it is stored

    def language(self, customer: Customer | None = None) -> str:
        customer = customer or self.contact.only_customer
        return language_of(
            self.hint, customer.language if customer else None, self.rooftop.settings.language
        )

    def say(self, name: str, customer: Customer | None = None, **context: object) -> str:
        return say(self.rooftop, name, language=self.language(customer), **context)


def _answer(
    session: Session,
    *,
    row: InboundMessage,
    rooftop: Rooftop,
    form: Mapping[str, str],
    now: datetime,
    opened: list[Task],
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
    # The phone, its customers and any pending "which vehicle?" question: one round trip.
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
    intent = classify(row.body, opted_out=opted_out)
    row.intent = intent.name
    turn = _Turn(
        session=session,
        row=row,
        rooftop=rooftop,
        contact=contact,
        now=now,
        hint=intent.language,
        twilio_replied=row.channel == "sms" and bool(form.get("OptOutType")),
        opened=opened,
    )
    if intent.name in (intents.OPT_OUT, intents.OPT_IN, intents.HELP):
        return _keyword(turn, intent.name)
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
    if contact.is_new:
        return _unknown_contact(turn)
    if intent.name == intents.STATUS:
        return _status_question(turn)
    if intent.name == intents.APPROVE:
        return _approve(turn)
    if intent.name == intents.DECLINE:
        return _decline_followup(turn)
    return _needs_reply(turn)


# --- STOP / START / HELP -----------------------------------------------------------------


def _keyword(turn: _Turn, name: str) -> str | None:
    phone, channel = turn.contact.phone, turn.row.channel
    if name == intents.OPT_OUT:
        revoke_all(turn.session, phone=phone, channel=channel, source="keyword")
        reply = turn.say("stop_confirm")
    elif name == intents.OPT_IN:
        for purpose in ("status", "marketing"):
            if purpose == "status" or _marketing_was_granted(
                turn.session, phone_id=phone.id, channel=channel
            ):
                record_consent(
                    turn.session,
                    phone=phone,
                    customer=turn.contact.only_customer,
                    channel=channel,
                    purpose=purpose,
                    action="granted",
                    source="keyword",
                    detail=turn.row.body.strip()[:40],
                )
        reply = turn.say("start_confirm")
    else:
        reply = turn.say("help_reply", desk=turn.rooftop.service_desk or "")
    # On SMS with Advanced Opt-Out Twilio has answered the keyword itself; a second reply
    # would be one confirmation too many. WhatsApp has no carrier-level keywords: we answer.
    return None if turn.twilio_replied else reply


def _marketing_was_granted(session: Session, *, phone_id: int, channel: str) -> bool:
    """START restores marketing only if STOP is what took it away (written consent stands)."""
    rows = session.scalars(
        select(Consent)
        .where(
            Consent.phone_id == phone_id, Consent.channel == channel, Consent.purpose == "marketing"
        )
        .order_by(Consent.id.desc())
    )
    for row in rows:
        if row.source == "keyword" and row.action == "revoked":
            continue
        return row.action == "granted"
    return False


# --- which customer, which car --------------------------------------------------------------


def _ask_which(turn: _Turn, options: list[Candidate]) -> str | None:
    """Several vehicles fit: ask by model name, or hand it to an advisor when that cannot work."""
    if can_ask_which(options):
        turn.row.pending_choices = [choice_of(o) for o in options]
        language = language_of(turn.hint, turn.rooftop.settings.language)
        return say(
            turn.rooftop,
            "household_question",
            language=language,
            choices=[o.vehicle_label for o in options],
        )
    return _needs_reply(turn, kind="household")


def _resolved(turn: _Turn, picked: Mapping[str, object], *, intent_name: str) -> str | None:
    customer = turn.session.get(Customer, picked["customer_id"])
    order = turn.session.get(RepairOrder, picked["repair_order_id"])
    if customer is None or order is None:
        return _needs_reply(turn)
    turn.row.customer_id = customer.id
    candidate = Candidate(customer=customer, repair_order=order)
    if intent_name == intents.APPROVE:
        lines = [
            line
            for line in order.lines
            if line.status == "pending" and line.customer_approved_at is None
        ]
        if order.stage == "awaiting_approval" and lines:
            return _record_approval(turn, candidate, lines)
        return _needs_reply(turn, customer=customer)
    return _tell_status(turn, candidate)


# --- status ----------------------------------------------------------------------------------


def _status_question(turn: _Turn) -> str | None:
    options = candidates(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if not options:
        _needs_reply(turn, none_open=True)
        return turn.say("answer_no_open_ro")
    if len(options) == 1:
        return _tell_status(turn, options[0])
    return _ask_which(turn, options)


def _tell_status(turn: _Turn, candidate: Candidate) -> str:
    turn.row.customer_id = candidate.customer.id
    turn.row.repair_order_id = candidate.repair_order.id
    language = turn.language(candidate.customer)
    words = status_words(
        candidate.repair_order, rooftop=turn.rooftop, language=language, now=turn.now
    )
    return say(turn.rooftop, "answer_status", language=language, **words.context())


# --- approvals and follow-ups -------------------------------------------------------------


def _approve(turn: _Turn) -> str | None:
    found = awaiting_approval(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if not found:
        return _needs_reply(turn)
    if len(found) == 1:
        return _record_approval(turn, *found[0])
    return _ask_which(turn, [candidate for candidate, _lines in found])


def _record_approval(turn: _Turn, candidate: Candidate, lines: list[RoLine]) -> str:
    """Note the customer's OK on the lines and ask the advisor to enter it in the DMS."""
    order, customer = candidate.repair_order, candidate.customer
    for line in lines:
        line.customer_approved_at = turn.now
    turn.row.customer_id, turn.row.repair_order_id = customer.id, order.id
    total = sum(line.amount_cents for line in lines)
    described = ", ".join(line.description for line in lines)
    task = open_task(
        turn.session,
        rooftop_id=order.rooftop_id,
        kind="approval",
        summary=(
            f"{customer.display_name} approved {described} {format_money(total)} by text "
            f"(RO {order.ro_number}) — enter it in the DMS"
        ),
        now=turn.now,
        customer_id=customer.id,
        repair_order_id=order.id,
        advisor_ref=order.advisor_ref,
    )
    assert task is not None  # no dedupe key: always opens (a retried message rolls back whole)
    turn.opened.append(task)
    return turn.say(
        "answer_approved",
        customer,
        first_name=customer.first_name or "",
        lines=described,
        total=total,
    )


def _decline_followup(turn: _Turn) -> str | None:
    """ "No" / "stop reminding me": end the follow-up cadence; status texts stay allowed."""
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
        return _needs_reply(turn)
    for plan in targeted:
        # stop_plan also cancels a touch already queued but not yet sent (e.g. held overnight).
        stop_plan(turn.session, plan=plan, reason="customer said no", at=turn.now)
    customer = (
        turn.session.get(Customer, targeted[0].customer_id) if targeted[0].customer_id else None
    )
    return turn.say("answer_followup_stopped", customer)


# --- people -----------------------------------------------------------------------------------


def _needs_reply(
    turn: _Turn,
    *,
    kind: str = "needs_reply",
    customer: Customer | None = None,
    none_open: bool = False,
) -> str | None:
    """Hand the message to the advisor inbox; acknowledge only the first of a conversation.

    `none_open`: the caller already found no open RO for the phone's customers.
    """
    customer = customer or turn.contact.only_customer
    advisor_ref = advisor_name = None
    if customer is not None and not none_open:
        # The customer is one of the phone's unless a pending question named one since unlinked.
        known = any(c.id == customer.id for c in turn.contact.customers)
        contact = turn.contact if known else Contact(turn.contact.phone, [customer])
        open_here = [
            c
            for c in candidates(
                turn.session, contact=contact, rooftop=turn.rooftop, customer=customer
            )
            if c.repair_order.rooftop_id == turn.rooftop.id
        ]
        if open_here:
            advisor_ref = open_here[0].repair_order.advisor_ref
            advisor_name = open_here[0].repair_order.advisor_name
    who = customer.display_name if customer else f"{turn.contact.phone.e164} (shared phone)"
    opened = _attach(
        turn,
        customer=customer,
        kind=kind,
        summary=f"{who}: {turn.row.body[:200]}",
        advisor_ref=advisor_ref,
    )
    return turn.say("answer_received", customer, advisor=advisor_name or "") if opened else None


def _unknown_contact(turn: _Turn) -> str | None:
    opened = _attach(
        turn,
        customer=turn.contact.only_customer,
        kind="unknown_contact",
        summary=f"New contact {turn.contact.phone.e164}: {turn.row.body[:200]}",
    )
    return turn.say("unknown_contact") if opened else None


def _attach(
    turn: _Turn,
    *,
    customer: Customer | None,
    kind: str,
    summary: str,
    advisor_ref: str | None = None,
) -> bool:
    """Join the message to its conversation task, or open one; True when opened."""
    known = turn.contact.conversations
    task, opened = attach_to_conversation(
        turn.session,
        rooftop=turn.rooftop,
        phone=turn.contact.phone,
        customer=customer,
        kind=kind,
        summary=summary,
        now=turn.now,
        repair_order_id=turn.row.repair_order_id,
        advisor_ref=advisor_ref,
        # The contact lookup read each customer's open conversation here: no second query.
        found=(
            Conversation(known[customer.id])
            if customer is not None and known is not None and customer.id in known
            else None
        ),
    )
    if opened:
        assert task is not None
        turn.opened.append(task)
    return opened
