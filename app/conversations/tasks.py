"""Tasks for people: call back, reply, act on an approval. Opened once, closed by an advisor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, Update, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from app.conversations.models import InboundMessage, Task
from app.customers.models import Customer, Phone
from app.dealers.models import Rooftop

# The kinds that are a customer conversation waiting for a human reply.
CONVERSATION_KINDS = ("needs_reply", "unknown_contact", "household")


def open_task(
    session: Session,
    *,
    rooftop_id: int | None,
    kind: str,
    summary: str,
    now: datetime,
    dedupe_key: str | None = None,
    customer_id: int | None = None,
    repair_order_id: int | None = None,
    inbound_message_id: int | None = None,
    call_id: int | None = None,
    advisor_ref: str | None = None,
) -> Task | None:
    """Open a task; with a dedupe key, only the first call opens one (None afterwards).

    The task is added to the session, not flushed: it goes out with the unit of work.
    """
    if dedupe_key is not None and session.scalar(
        select(Task.id).where(Task.dedupe_key == dedupe_key)
    ):
        return None
    task = _new_task(
        rooftop_id=rooftop_id,
        kind=kind,
        summary=summary,
        now=now,
        dedupe_key=dedupe_key,
        customer_id=customer_id,
        repair_order_id=repair_order_id,
        inbound_message_id=inbound_message_id,
        call_id=call_id,
        advisor_ref=advisor_ref,
    )
    session.add(task)
    return task


def _new_task(*, now: datetime, **columns: Any) -> Task:
    """A new open task, in no session yet: `columns` are Task's (rooftop_id, kind, ...)."""
    return Task(**columns, created_at=now, state="open")


def open_conversation(
    session: Session, *, rooftop: Rooftop, phone: Phone, customer: Customer | None
) -> Task | None:
    """The open conversation task of this customer (or, unmatched, this phone) at this rooftop."""
    if customer is not None:
        # A customer's open tasks at every rooftop (a few), the rooftop picked here: with the
        # rooftop in the query, a planner with stale statistics (a new table) may scan the
        # rooftop's index and filter every open task of the rooftop on each text instead.
        found = session.scalars(_customer_conversations(), {"customer_id": customer.id})
        return next((task for task in found if task.rooftop_id == rooftop.id), None)
    return session.scalar(_phone_conversation(), {"rooftop_id": rooftop.id, "phone_id": phone.id})


@cache
def _customer_conversations() -> Select[Task]:
    """A customer's open conversation tasks, oldest first; built once (every inbound text)."""
    return (
        select(Task)
        .where(
            Task.customer_id == bindparam("customer_id"),
            Task.state == "open",
            Task.kind.in_(CONVERSATION_KINDS),
        )
        .order_by(Task.id)
    )


@cache
def _phone_conversation() -> Select[Task]:
    """The oldest open conversation task of an unmatched phone at a rooftop; built once."""
    return (
        select(Task)
        .join(InboundMessage, InboundMessage.id == Task.inbound_message_id)
        .where(
            Task.rooftop_id == bindparam("rooftop_id"),
            Task.state == "open",
            Task.kind.in_(CONVERSATION_KINDS),
            InboundMessage.phone_id == bindparam("phone_id"),
            Task.customer_id.is_(None),
        )
        .order_by(Task.id)
        .limit(1)
    )


@cache
def _summary_update() -> Update:
    """A conversation task's summary replaced (a later message joined it); built once."""
    table = cast(Table, Task.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("task_id"))
        .values(summary=bindparam("summary", type_=table.c.summary.type))
    )


@dataclass(frozen=True)
class Conversation:
    """What a lookup already found of a customer's open conversation task at the rooftop."""

    task_id: int | None


@dataclass
class HeldWrites:
    """Conversation writes held back to go out with the inbound message's own INSERT.

    `opened`: new tasks, not in the session, their `inbound_message_id` still unset;
    `summaries`: the new summary of each joined task (by id) that the session has not loaded.
    `storing.store` writes them with the message (on PostgreSQL, one write in its statement).
    """

    opened: list[Task] = field(default_factory=list)
    summaries: dict[int, str] = field(default_factory=dict)


def attach_to_conversation(
    session: Session,
    *,
    rooftop: Rooftop,
    phone: Phone,
    customer: Customer | None,
    kind: str,
    summary: str,
    now: datetime,
    repair_order_id: int | None = None,
    advisor_ref: str | None = None,
    found: Conversation | None = None,
    held: HeldWrites,
) -> bool:
    """One open task per customer conversation: later messages join it. True when opened.

    An opened task is not in the session: it is held in `held`, to be stored with the
    message, which is stored after it is answered (and sets its `inbound_message_id`).
    `found`: the caller's lookup already read the task.
    """
    if found is not None and found.task_id is not None:
        # The waiting time keeps counting from the first unanswered message.
        loaded = session.identity_map.get(identity_key(Task, found.task_id))
        if loaded is not None:
            loaded.summary = summary
        else:  # not in the session: written with the message (`store_summaries`)
            held.summaries[found.task_id] = summary
        return False
    task = None
    if found is None:
        task = open_conversation(session, rooftop=rooftop, phone=phone, customer=customer)
    if task is not None:
        task.summary = summary
        return False
    opened = _new_task(
        rooftop_id=rooftop.id,
        kind=kind,
        summary=summary,
        now=now,
        customer_id=customer.id if customer else None,
        repair_order_id=repair_order_id,
        advisor_ref=advisor_ref,
    )
    held.opened.append(opened)
    return True


def store_summaries(session: Session, summaries: dict[int, str]) -> None:
    """Write held summaries of joined tasks: an UPDATE each, built once, without the ORM."""
    for task_id, summary in summaries.items():
        session.connection().execute(_summary_update(), {"task_id": task_id, "summary": summary})


def finish(task: Task, *, now: datetime) -> None:
    """Mark a task done (again is a no-op: the first done time stays)."""
    if task.state != "done":
        task.state = "done"
        task.done_at = now


def take(task: Task, *, user_id: int | None, now: datetime) -> None:
    """An advisor takes the task: it is theirs now."""
    task.assigned_user_id = user_id if user_id is not None else task.assigned_user_id
    task.taken_at = task.taken_at or now
