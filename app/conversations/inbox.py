"""The advisor inbox: open tasks, replies through the outbox, and a customer's whole timeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.conversations.models import Call, InboundMessage, Task
from app.conversations.tasks import CONVERSATION_KINDS, finish
from app.customers.models import Consent, Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.messaging.service import MessageRequest, enqueue
from app.repair_orders.models import RepairOrder, RoEvent


class NotFound(LookupError):
    """Not there, or not this principal's to see (the API answers 404 either way)."""


def visible_rooftop(session: Session, *, principal: Principal, slug: str) -> Rooftop:
    rooftop = session.scalar(
        select(Rooftop).where(Rooftop.group_id == principal.group_id, Rooftop.slug == slug)
    )
    if rooftop is None or not principal.can_see_rooftop(rooftop.id):
        raise NotFound(f"no rooftop {slug!r} for this token")
    return rooftop


def visible_task(session: Session, *, principal: Principal, task_id: int) -> Task:
    task = session.get(Task, task_id)
    rooftop = session.get(Rooftop, task.rooftop_id) if task and task.rooftop_id else None
    if task is None or rooftop is None or rooftop.group_id != principal.group_id:
        raise NotFound(f"no task {task_id}")
    if not principal.can_see_rooftop(rooftop.id):
        raise NotFound(f"no task {task_id}")
    return task


def open_tasks(session: Session, *, rooftop: Rooftop) -> list[Task]:
    """Open tasks of a rooftop, the longest-waiting first."""
    return list(
        session.scalars(
            select(Task)
            .where(Task.rooftop_id == rooftop.id, Task.state == "open")
            .order_by(Task.created_at, Task.id)
        )
    )


def last_message(session: Session, task: Task) -> InboundMessage | None:
    """The customer's latest text in this task's conversation."""
    if task.customer_id is None and task.inbound_message_id is None:
        return None
    query = select(InboundMessage).where(InboundMessage.rooftop_id == task.rooftop_id)
    if task.customer_id is not None:
        query = query.where(InboundMessage.customer_id == task.customer_id)
    else:
        first = session.get(InboundMessage, task.inbound_message_id)
        query = query.where(InboundMessage.phone_id == (first.phone_id if first else None))
    return session.scalar(query.order_by(InboundMessage.id.desc()).limit(1))


@dataclass(frozen=True)
class Destination:
    phone: Phone
    channel: str


def _destination(session: Session, task: Task) -> Destination:
    """Where to answer: the number and channel the customer last used, else their primary phone."""
    latest = last_message(session, task)
    if latest is not None and latest.phone_id is not None:
        phone = session.get(Phone, latest.phone_id)
        if phone is not None:
            return Destination(phone, latest.channel)
    call = session.get(Call, task.call_id) if task.call_id else None
    if call is not None:
        bare = call.from_address.removeprefix("whatsapp:")
        phone = session.scalar(select(Phone).where(Phone.e164 == bare))
        if phone is not None:
            return Destination(phone, "sms")
    if task.customer_id is not None:
        phone = session.scalar(
            select(Phone)
            .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
            .where(CustomerPhone.customer_id == task.customer_id, Phone.e164.is_not(None))
            .order_by(CustomerPhone.is_primary.desc(), Phone.id)
            .limit(1)
        )
        if phone is not None:
            return Destination(phone, "sms")
    raise ValueError(f"task {task.id} has no phone to answer; call the customer instead")


def reply(
    session: Session,
    *,
    task: Task,
    body: str,
    principal: Principal,
    request_id: str | None,
    now: datetime,
) -> OutboundMessage:
    """Queue an advisor's reply (kind reply, purpose conversational: the customer just wrote, so
    the dispatcher does not hold it for quiet hours). The same request id never sends twice."""
    destination = _destination(session, task)
    key = f"task:{task.id}:reply:{request_id or uuid.uuid4().hex}"
    message = enqueue(
        session,
        MessageRequest(
            rooftop_id=task.rooftop_id or 0,
            customer_id=task.customer_id,
            phone_id=destination.phone.id,
            kind="reply",
            purpose="conversational",
            dedupe_key=key,
            body=body,
            repair_order_id=task.repair_order_id,
            channel=destination.channel,
            to_address=destination.phone.e164,
            not_before=now,
            created_by_user_id=principal.user_id,
        ),
    )
    if message is None:
        existing = session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == key))
        assert existing is not None
        return existing
    task.taken_at = task.taken_at or now
    task.assigned_user_id = task.assigned_user_id or principal.user_id
    if task.kind in CONVERSATION_KINDS:
        finish(task, now=now)  # answered: a new text opens a new conversation task
    return message


def visible_customer(session: Session, *, principal: Principal, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if (
        customer is None
        or customer.group_id != principal.group_id
        or customer.erased_at is not None
    ):
        raise NotFound(f"no customer {customer_id}")
    if principal.rooftop_ids is not None:
        ids = tuple(principal.rooftop_ids)
        known_here = session.scalar(
            select(RepairOrder.id)
            .where(RepairOrder.customer_id == customer_id, RepairOrder.rooftop_id.in_(ids))
            .limit(1)
        ) or session.scalar(
            select(InboundMessage.id)
            .where(InboundMessage.customer_id == customer_id, InboundMessage.rooftop_id.in_(ids))
            .limit(1)
        )
        if not known_here:
            raise NotFound(f"no customer {customer_id}")
    return customer


def timeline(session: Session, *, customer: Customer) -> list[dict[str, Any]]:
    """Texts both ways, calls, stage changes and consent changes, newest first, group-wide."""
    slugs = {
        r.id: r.slug
        for r in session.scalars(select(Rooftop).where(Rooftop.group_id == customer.group_id))
    }
    items: list[dict[str, Any]] = []
    for msg in session.scalars(
        select(InboundMessage).where(InboundMessage.customer_id == customer.id)
    ):
        rooftop = slugs.get(msg.rooftop_id or 0)
        items.append(
            _item(
                msg.received_at,
                "message",
                rooftop,
                direction="in",
                channel=msg.channel,
                body=msg.body,
                intent=msg.intent,
                id=msg.id,
            )
        )
        if msg.reply_body:
            items.append(
                _item(
                    msg.handled_at or msg.received_at,
                    "message",
                    rooftop,
                    direction="out",
                    channel=msg.channel,
                    body=msg.reply_body,
                    kind="auto_reply",
                    id=msg.id,
                )
            )
    for out in session.scalars(
        select(OutboundMessage).where(OutboundMessage.customer_id == customer.id)
    ):
        items.append(
            _item(
                out.sent_at or out.created_at,
                "message",
                slugs.get(out.rooftop_id),
                direction="out",
                channel=out.channel,
                body=out.body,
                kind=out.kind,
                state=out.state,
                id=out.id,
            )
        )
    for call in session.scalars(select(Call).where(Call.customer_id == customer.id)):
        items.append(
            _item(
                call.started_at,
                "call",
                slugs.get(call.rooftop_id or 0),
                outcome=call.outcome,
                status_told=call.status_told,
                forwarded=call.forwarded,
                id=call.id,
            )
        )
    orders = {
        o.id: o
        for o in session.scalars(select(RepairOrder).where(RepairOrder.customer_id == customer.id))
    }
    if orders:
        events = select(RoEvent).where(
            RoEvent.repair_order_id.in_(tuple(orders)), RoEvent.kind == "stage"
        )
        for event in session.scalars(events):
            order = orders[event.repair_order_id]
            items.append(
                _item(
                    event.at,
                    "stage",
                    slugs.get(order.rooftop_id),
                    ro_number=order.ro_number,
                    from_stage=event.from_stage,
                    to_stage=event.to_stage,
                    id=event.id,
                )
            )
    phone_ids = select(CustomerPhone.phone_id).where(CustomerPhone.customer_id == customer.id)
    consents = select(Consent).where(
        or_(Consent.customer_id == customer.id, Consent.phone_id.in_(phone_ids))
    )
    for consent in session.scalars(consents):
        items.append(
            _item(
                consent.at,
                "consent",
                None,
                channel=consent.channel,
                purpose=consent.purpose,
                action=consent.action,
                source=consent.source,
                id=consent.id,
            )
        )
    items.sort(key=lambda item: item["at"], reverse=True)
    return items


def _item(at: datetime, type_: str, rooftop: str | None, **fields: Any) -> dict[str, Any]:
    return {"at": at, "type": type_, "rooftop": rooftop, **fields}


def correct_intent(
    session: Session, *, task: Task, intent: str, corrected_by: str, now: datetime
) -> InboundMessage:
    """An advisor says what the task's text really meant; `pitwall intents export` reads it."""
    from app.conversations.intents import LABELS

    if intent not in LABELS:
        raise ValueError(f"{intent!r} is not an intent ({', '.join(LABELS)})")
    message = (
        session.get(InboundMessage, task.inbound_message_id) if task.inbound_message_id else None
    )
    if message is None:
        raise ValueError("this task has no text to correct")
    message.corrected_intent = intent
    message.corrected_by = corrected_by[:254]
    message.corrected_at = now
    return message
