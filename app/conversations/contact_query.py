"""The contact lookup every inbound text and call runs: one statement, built once.

It reads the phone, its customers and what answering needs next of each (an open order
anywhere, the open conversation task at the rooftop, the pending "which vehicle?"
question, what the phone was last sent and Twilio's block) in one round trip.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    null,
    select,
)

from app.conversations.models import InboundMessage, Task
from app.conversations.tasks import CONVERSATION_KINDS
from app.customers.carrier import CARRIER
from app.customers.models import Consent, Customer, CustomerPhone, Phone
from app.db import UTCDateTime, one_of_constants, sql_constant
from app.messaging.models import OutboundMessage
from app.repair_orders.models import OPEN_STAGES, RepairOrder

# Outbound messages the customer has seen, or may have: the context of their next text.
SEEN_STATES = ("sent", "delivered", "read")


@cache
def contact_statement(*, with_question: bool) -> Select[Any]:
    """The contact lookup, built once: every inbound text and call runs it.

    Columns: the phone, a customer, the pending question's id (or NULL), whether the
    customer has an open order anywhere, their open conversation task's id at the rooftop.
    Fixed values (stages, states, kinds) are in the SQL; only the request's are bound.
    """
    empty, bar = sql_constant(""), sql_constant("|")
    question: Any = null()
    if with_question:
        question = (
            pending_question_query(
                rooftop_id=bindparam("rooftop_id"),
                phone_id=Phone.id,
                since=bindparam("since", type_=UTCDateTime),
            )
            .with_only_columns(InboundMessage.id)
            .scalar_subquery()
        )
    has_open_order = exists().where(
        RepairOrder.customer_id == Customer.id, one_of_constants(RepairOrder.stage, OPEN_STAGES)
    )
    # The rooftop is picked by CASE, not in the WHERE: only the customer's index can serve
    # this, whatever a planner with stale statistics thinks of the rooftop's index.
    conversation = (
        select(func.min(case((Task.rooftop_id == bindparam("rooftop_id"), Task.id))))
        .where(
            Task.customer_id == Customer.id,
            Task.state == sql_constant("open"),
            one_of_constants(Task.kind, CONVERSATION_KINDS),
        )
        .scalar_subquery()
    )
    sent = (
        select(OutboundMessage.id)
        .where(
            OutboundMessage.customer_id == Customer.id,
            OutboundMessage.phone_id == Phone.id,
            one_of_constants(OutboundMessage.state, SEEN_STATES),
        )
        .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
        .limit(1)
    )
    outbound = sent.with_only_columns(
        func.coalesce(OutboundMessage.kind, empty)
        + bar
        + func.coalesce(OutboundMessage.stage, empty)
        + bar
        + func.coalesce(OutboundMessage.template, empty)
    ).scalar_subquery()
    outbound_at = sent.with_only_columns(
        func.coalesce(OutboundMessage.sent_at, OutboundMessage.created_at, type_=UTCDateTime)
    ).scalar_subquery()
    previous = (
        select(InboundMessage.id)
        .where(
            InboundMessage.phone_id == Phone.id,
            InboundMessage.rooftop_id == bindparam("rooftop_id"),
        )
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(1)
    )
    answer = previous.with_only_columns(
        func.coalesce(InboundMessage.reply_kind, empty)
        + bar
        + func.coalesce(InboundMessage.language, empty)
    ).scalar_subquery()
    answer_at = previous.with_only_columns(InboundMessage.received_at).scalar_subquery()
    # Twilio's block on this rooftop's sender, as the ledger last heard of it (carrier.py).
    carrier_action = (
        select(Consent.action)
        .where(
            Consent.phone_id == Phone.id,
            Consent.channel == sql_constant("sms"),
            Consent.purpose == sql_constant(CARRIER),
            Consent.detail == bindparam("sender"),
        )
        .order_by(Consent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns: list[Any] = [
        Phone,
        Customer,
        question,
        has_open_order,
        conversation,
        outbound,
        outbound_at,
        answer,
        answer_at,
        carrier_action,
    ]
    return (
        select(*columns)
        .outerjoin(CustomerPhone, CustomerPhone.phone_id == Phone.id)
        .outerjoin(
            Customer,
            and_(Customer.id == CustomerPhone.customer_id, Customer.erased_at.is_(None)),
        )
        .where(Phone.group_id == bindparam("group_id"), Phone.e164 == bindparam("e164"))
    )


def pending_question_query(rooftop_id: Any, phone_id: Any, since: Any) -> Select[Any]:
    """The latest unanswered question query; its arguments are values or bind parameters."""
    return (
        select(InboundMessage)
        .where(
            InboundMessage.rooftop_id == rooftop_id,
            InboundMessage.phone_id == phone_id,
            InboundMessage.pending_choices.is_not(None),
            InboundMessage.received_at >= since,
        )
        .order_by(InboundMessage.id.desc())
        .limit(1)
    )
