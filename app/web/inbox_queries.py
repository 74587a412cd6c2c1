"""What an inbox card shows: who (a name, or the number and any name the phone gave), the RO
and vehicle, the conversation's last messages both ways, how long it has waited.

One card per open conversation: every open task of one customer (or, for an unknown
number, of one caller) at one rooftop is one card; the oldest task leads it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.auth.models import User
from app.conversations.models import Call, InboundMessage, Task
from app.customers.models import Customer
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder
from app.web.people import staff_name
from app.web.queries import rows_by_id

# How far back a card looks for the conversation's last messages, and how many it shows.
RECENT_WINDOW = timedelta(days=14)
RECENT_SHOWN = 4


@dataclass(frozen=True)
class Said:
    """One message of the conversation, as a card lists it."""

    at: datetime
    by: str  # customer | pitwall | staff
    body: str


@dataclass(frozen=True)
class InboxItem:
    task: Task
    rooftop: Rooftop
    customer: Customer | None
    ro_number: str | None
    message: InboundMessage | None
    taken_by: str | None
    ro_id: int | None = None
    vehicle: str | None = None
    caller: str | None = None  # the number (and a name the phone gave) when no customer
    recent: list[Said] = field(default_factory=list)
    others: tuple[Task, ...] = ()  # the conversation's later open tasks (one card)

    @property
    def kinds(self) -> list[str]:
        """What the card asks for: "needs reply", "callback", without repeats."""
        kinds = [self.task.kind, *(t.kind for t in self.others)]
        return list(dict.fromkeys(kinds))

    @property
    def who(self) -> str:
        if self.customer is not None and (self.customer.first_name or self.customer.last_name):
            return self.customer.display_name
        return self.caller or "Unknown caller"

    @property
    def note(self) -> str | None:
        """The task's summary less what the heading and the quoted message already say.

        Conversation tasks are summed up as "Name: their text"; the page shows the name
        as the heading and the text as a quote, so that summary would say it all twice.
        """
        summary = self.task.summary or ""
        said = self.message.body[:200] if self.message is not None else ""
        if not said:
            return summary or None
        name = self.customer.display_name if self.customer is not None else None
        if name and summary.startswith(f"{name}: "):
            latest = summary[len(name) + 2 :]
            # A later message replaces the summary; the quote stays the first one. The
            # model's guesses after it are on the card already.
            if latest == said or latest.startswith(f"{said} (Pitwall was unsure"):
                return None
            return f"Latest: {latest}"
        if summary == said:
            return None
        if summary.endswith(f": {said}"):
            return summary[: -len(said) - 2]  # "New contact +1415...": who wrote
        return summary


def inbox_items(session: Session, *, rooftops: list[Rooftop], now: datetime) -> list[InboxItem]:
    """Open tasks at these rooftops, the longest-waiting first, with what a card shows."""
    by_id = {r.id: r for r in rooftops}
    tasks = list(
        session.scalars(
            select(Task)
            .where(Task.state == "open", Task.rooftop_id.in_(by_id))
            .order_by(Task.created_at, Task.id)
            .limit(500)
        )
    )
    customers = rows_by_id(session, Customer, {t.customer_id for t in tasks if t.customer_id})
    ros = {
        ro.id: ro
        for ro in session.scalars(
            select(RepairOrder)
            .where(RepairOrder.id.in_({t.repair_order_id for t in tasks if t.repair_order_id}))
            .options(selectinload(RepairOrder.vehicle))
        )
    }
    messages = rows_by_id(
        session, InboundMessage, {t.inbound_message_id for t in tasks if t.inbound_message_id}
    )
    calls = rows_by_id(session, Call, {t.call_id for t in tasks if t.call_id})
    users = rows_by_id(session, User, {t.assigned_user_id for t in tasks if t.assigned_user_id})
    recent = _recent(session, customer_ids=set(customers), since=now - RECENT_WINDOW)
    items: list[InboxItem] = []
    cards: dict[tuple[int | None, object], int] = {}
    for t in tasks:
        ro = ros.get(t.repair_order_id) if t.repair_order_id else None
        message = messages.get(t.inbound_message_id) if t.inbound_message_id else None
        call = calls.get(t.call_id) if t.call_id else None
        key = (t.rooftop_id, t.customer_id or _number(message, call) or f"task {t.id}")
        if key in cards:
            _join(items, cards[key], t, ro, _caller(message, call))
            continue
        cards[key] = len(items)
        assigned = users.get(t.assigned_user_id) if t.assigned_user_id else None
        items.append(
            InboxItem(
                task=t,
                rooftop=by_id[t.rooftop_id],  # type: ignore[index]
                customer=customers.get(t.customer_id) if t.customer_id else None,
                ro_number=ro.ro_number if ro else None,
                message=message,
                taken_by=staff_name(assigned) if t.assigned_user_id else None,
                ro_id=ro.id if ro else None,
                vehicle=ro.vehicle.label if ro is not None and ro.vehicle is not None else None,
                caller=_caller(message, call),
                recent=recent.get(t.customer_id, [])[-RECENT_SHOWN:] if t.customer_id else [],
            )
        )
    return items


def _join(
    items: list[InboxItem], index: int, task: Task, ro: RepairOrder | None, caller: str | None
) -> None:
    """A later task of a conversation joins its card (which gains the RO if it had none,
    and the name a later text or caller ID gave, if the first gave none)."""
    card = items[index]
    changes: dict[str, object] = {"others": (*card.others, task)}
    if caller and "(" in caller and (card.caller is None or "(" not in card.caller):
        changes["caller"] = caller
    if card.ro_id is None and ro is not None:
        changes.update(
            ro_id=ro.id,
            ro_number=ro.ro_number,
            vehicle=ro.vehicle.label if ro.vehicle is not None else None,
        )
    items[index] = replace(card, **changes)  # type: ignore[arg-type]


def _number(message: InboundMessage | None, call: Call | None) -> str | None:
    number = (message.from_address if message else None) or (call.from_address if call else None)
    return number.removeprefix("whatsapp:") if number else None


def card_tasks(session: Session, *, task: Task) -> list[Task]:
    """Every open task on `task`'s card: the same customer (or caller) at the same rooftop."""
    if task.state != "open":
        return [task]
    query = select(Task).where(Task.rooftop_id == task.rooftop_id, Task.state == "open")
    if task.customer_id is not None:
        return list(session.scalars(query.where(Task.customer_id == task.customer_id)))
    number = _task_number(session, task)
    if number is None:
        return [task]
    return [
        t
        for t in session.scalars(query.where(Task.customer_id.is_(None)))
        if t.id == task.id or _task_number(session, t) == number
    ]


def _task_number(session: Session, task: Task) -> str | None:
    message = (
        session.get(InboundMessage, task.inbound_message_id) if task.inbound_message_id else None
    )
    call = session.get(Call, task.call_id) if task.call_id else None
    return _number(message, call)


def open_card_count(session: Session, *, rooftop_ids: list[int]) -> int:
    """How many cards the inbox shows at these rooftops (the count beside the Inbox link)."""
    if not rooftop_ids:
        return 0
    rows = session.execute(
        select(
            Task.id,
            Task.rooftop_id,
            Task.customer_id,
            InboundMessage.from_address,
            Call.from_address,
        )
        .outerjoin(InboundMessage, InboundMessage.id == Task.inbound_message_id)
        .outerjoin(Call, Call.id == Task.call_id)
        .where(Task.state == "open", Task.rooftop_id.in_(rooftop_ids))
    )
    cards = set()
    for task_id, rooftop_id, customer_id, texted, called in rows:
        number = (texted or called or "").removeprefix("whatsapp:")
        cards.add((rooftop_id, customer_id or number or f"task {task_id}"))
    return len(cards)


def _caller(message: InboundMessage | None, call: Call | None) -> str | None:
    """The number that wrote or called, with a name its WhatsApp profile or caller ID gave."""
    raw = (message.raw or {}) if message is not None else {}
    number = _number(message, call)
    if not number:
        return None
    name = str(raw.get("ProfileName") or raw.get("CallerName") or "").strip()[:60]
    return f"{name} ({number})" if name else number


def _recent(session: Session, *, customer_ids: set[int], since: datetime) -> dict[int, list[Said]]:
    """Each customer's messages since `since`, both ways, oldest first."""
    found: dict[int, list[Said]] = defaultdict(list)
    if not customer_ids:
        return found
    for inbound in session.scalars(
        select(InboundMessage).where(
            InboundMessage.customer_id.in_(customer_ids), InboundMessage.received_at >= since
        )
    ):
        assert inbound.customer_id is not None
        found[inbound.customer_id].append(Said(inbound.received_at, "customer", inbound.body))
        if inbound.reply_body:
            at = inbound.handled_at or inbound.received_at
            found[inbound.customer_id].append(Said(at, "pitwall", inbound.reply_body))
    for out in session.scalars(
        select(OutboundMessage).where(
            OutboundMessage.customer_id.in_(customer_ids),
            OutboundMessage.created_at >= since,
            OutboundMessage.state.in_(("claimed", "sent", "delivered", "read", "pending")),
        )
    ):
        assert out.customer_id is not None
        by = "staff" if out.created_by_user_id else "pitwall"
        found[out.customer_id].append(Said(out.sent_at or out.created_at, by, out.body or ""))
    for said in found.values():
        said.sort(key=lambda s: s.at)
    return found
