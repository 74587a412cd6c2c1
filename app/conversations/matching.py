"""Who wrote or called: the phone, the customers on it, and which repair order they mean.

A phone may be shared by a household. We prefer the customer with an open repair
order at the rooftop they contacted; when several remain we ask which vehicle
(by model only, never a name or a status) or hand it to an advisor. We never
answer one person with another person's car.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from app.conversations.contact_query import contact_statement, pending_question_query
from app.conversations.intent_model import fold
from app.conversations.models import InboundMessage
from app.customer_page.models import LineAnswer
from app.customers.carrier import sender_key
from app.customers.models import Customer, CustomerPhone, Phone
from app.customers.service import normalise_phone
from app.dealers.models import Rooftop
from app.repair_orders.models import OPEN_STAGES, RepairOrder, RoLine

# How long a "which vehicle?" question waits for its answer.
PENDING_QUESTION_TTL = timedelta(hours=24)


def channel_of(address: str) -> str:
    """`whatsapp:+1415...` is WhatsApp; anything else reached us by SMS (or voice)."""
    return "whatsapp" if address.startswith("whatsapp:") else "sms"


def e164_of(address: str, region: str) -> str | None:
    """The caller's number in E.164 (WhatsApp prefix stripped), None when it is not a number."""
    e164, _why = normalise_phone(address.removeprefix("whatsapp:").strip(), region)
    return e164


@dataclass(frozen=True)
class LastSent:
    """The latest outbound message to a phone and the latest inbound text from it."""

    outbound: str | None = None  # "kind|stage|template"
    outbound_at: datetime | None = None
    answer: str | None = None  # "reply_kind|language" of the phone's previous text
    answer_at: datetime | None = None


@dataclass
class Contact:
    """The phone a message came from and the customers linked to it (oldest first)."""

    phone: Phone
    customers: list[Customer]
    is_new: bool = False
    # The id of the phone's pending "which vehicle?" question, when the lookup asked for it.
    pending_question_id: int | None = None
    # The customers' open orders at any rooftop, read once by the first `candidates` call.
    open_orders: list[RepairOrder] | None = None
    # What the lookup also read of each customer (None: not read, ask the database):
    # the ids of those with an open order anywhere (no order query when none has one),
    # and each one's open conversation task at this rooftop (a task id, or None).
    with_open_orders: set[int] | None = None
    conversations: dict[int, int | None] | None = None
    # What the phone was last told: the latest message sent to it ("kind|stage|template"),
    # the latest inbound text's answer ("reply_kind|language"), each with its time.
    last_sent: LastSent | None = None
    # Twilio's block on the rooftop's SMS sender for this phone: "revoked" (blocked until the
    # customer texts START), "granted", or None (never recorded).
    carrier_action: str | None = None

    @property
    def only_customer(self) -> Customer | None:
        return self.customers[0] if len(self.customers) == 1 else None


def find_or_create_contact(
    session: Session, *, rooftop: Rooftop, e164: str, question_asked_since: datetime | None = None
) -> Contact:
    """The group's phone for this number and its customers; an unknown number becomes a contact.

    The same round trip reads what answering needs next of each customer: whether they
    have an open order anywhere, and their open conversation task at this rooftop. With
    `question_asked_since`, it also finds the id of the phone's latest unanswered "which
    vehicle?" question at this rooftop asked since then (`pending_question`).
    """
    group_id = rooftop.group_id
    rows = session.execute(
        contact_statement(with_question=question_asked_since is not None),
        {
            "group_id": group_id,
            "e164": e164,
            "rooftop_id": rooftop.id,
            "since": question_asked_since,
            "sender": sender_key(rooftop.settings) or "",
        },
    ).all()
    phone = rows[0][0] if rows else None
    customers = sorted((row[1] for row in rows if row[1] is not None), key=lambda c: c.id)
    question_id = rows[0][2] if rows and question_asked_since is not None else None
    if phone is not None and customers:
        return Contact(
            phone=phone,
            customers=customers,
            pending_question_id=question_id,
            with_open_orders={row[1].id for row in rows if row[1] is not None and row[3]},
            conversations={row[1].id: row[4] for row in rows if row[1] is not None},
            last_sent=_last_sent(rows),
            carrier_action=rows[0][9],
        )
    if phone is None:
        phone = Phone(group_id=group_id, e164=e164, as_typed=e164, kind="mobile")
        session.add(phone)
    customer = Customer(group_id=group_id, language=rooftop.settings.language)
    session.add(customer)
    session.flush()
    session.add(CustomerPhone(customer_id=customer.id, phone_id=phone.id, is_primary=True))
    session.flush()
    return Contact(
        phone=phone,
        customers=[customer],
        is_new=True,
        pending_question_id=question_id,
        with_open_orders=set(),  # a new customer has no orders and no tasks yet
        conversations={customer.id: None},
    )


def _last_sent(rows: Any) -> LastSent:
    """The latest outbound message across the phone's customers, and its previous text."""
    latest = max((row for row in rows if row[6] is not None), key=lambda row: row[6], default=None)
    first = rows[0]
    return LastSent(
        outbound=latest[5] if latest is not None else None,
        outbound_at=latest[6] if latest is not None else None,
        answer=first[7],
        answer_at=first[8],
    )


@dataclass(frozen=True)
class Candidate:
    """One repair order the sender may mean, with its owner."""

    customer: Customer
    repair_order: RepairOrder

    @property
    def vehicle_label(self) -> str:
        vehicle = self.repair_order.vehicle
        if vehicle is None:
            return f"RO {self.repair_order.ro_number}"
        return vehicle.model or vehicle.label


def _orders(
    session: Session, customers: Iterable[Customer], *, stages: Iterable[str]
) -> list[RepairOrder]:
    ids = [c.id for c in customers]
    if not ids:
        return []
    # Every caller reads the vehicle (its label) and most the lines (status, approval): one
    # round trip for all three. No autoflush: pending changes (the inbound row being
    # answered) never decide which orders are open, and go out with the next write.
    with session.no_autoflush:
        return list(
            session.scalars(_orders_statement(), {"ids": ids, "stages": tuple(stages)}).unique()
        )


@cache
def _orders_statement() -> Select[Any]:
    """Orders of some customers in some stages, with vehicle and lines; built once."""
    return (
        select(RepairOrder)
        .options(joinedload(RepairOrder.vehicle), joinedload(RepairOrder.lines))
        .where(
            RepairOrder.customer_id.in_(bindparam("ids", expanding=True)),
            RepairOrder.stage.in_(bindparam("stages", expanding=True)),
        )
        .order_by(RepairOrder.id)
    )


def candidates(
    session: Session,
    *,
    contact: Contact,
    rooftop: Rooftop,
    stages: Iterable[str] = OPEN_STAGES,
    customer: Customer | None = None,
) -> list[Candidate]:
    """Open orders in `stages` of the phone's customers (or only of `customer`, one of them):
    this rooftop's if any, else the group's.

    The contact's open orders are read once, in one query, whatever each caller filters.
    """
    wanted = set(stages)
    if not wanted <= set(OPEN_STAGES):
        raise ValueError(f"candidates are open orders; {sorted(wanted - set(OPEN_STAGES))} are not")
    if contact.open_orders is None:
        known = contact.with_open_orders
        having = [c for c in contact.customers if known is None or c.id in known]
        contact.open_orders = _orders(session, having, stages=OPEN_STAGES)
    by_id = {c.id: c for c in contact.customers}
    if customer is not None:
        by_id = {customer.id: by_id[customer.id]} if customer.id in by_id else {}
    orders = [o for o in contact.open_orders if o.stage in wanted and o.customer_id in by_id]
    here = [o for o in orders if o.rooftop_id == rooftop.id]
    chosen = here or orders  # customers belong to the group, so do all their orders
    return [
        Candidate(customer=by_id[o.customer_id], repair_order=o) for o in chosen if o.customer_id
    ]


def awaiting_approval(
    session: Session, *, contact: Contact, rooftop: Rooftop
) -> list[tuple[Candidate, list[RoLine]]]:
    """Orders waiting on the customer's OK, with the lines not yet approved by them."""
    found = []
    for candidate in candidates(
        session, contact=contact, rooftop=rooftop, stages=("awaiting_approval",)
    ):
        # A line answered on the customer's page (declined there) no longer waits on a text.
        answered = set(
            session.scalars(
                select(LineAnswer.ro_line_id).where(
                    LineAnswer.ro_line_id.in_([line.id for line in candidate.repair_order.lines])
                )
            )
        )
        lines = [
            line
            for line in candidate.repair_order.lines
            if line.status == "pending"
            and line.customer_approved_at is None
            and line.id not in answered
        ]
        if lines:
            found.append((candidate, lines))
    return found


def can_ask_which(options: list[Candidate]) -> bool:
    """A "which vehicle?" question works only when the vehicles have different names."""
    labels = [fold(c.vehicle_label) for c in options]
    return len(set(labels)) == len(labels) and len(labels) <= 4


def pending_question(
    session: Session, *, rooftop: Rooftop, phone: Phone, now: datetime
) -> InboundMessage | None:
    """The latest unanswered "which vehicle?" question to this phone at this rooftop."""
    return session.scalar(
        pending_question_query(
            rooftop_id=rooftop.id, phone_id=phone.id, since=now - PENDING_QUESTION_TTL
        )
    )


def answer_to_question(body: str, choices: list[dict[str, object]]) -> dict[str, object] | None:
    """Which choice "1", "2", "the RAV4" or "f150" picks; None when it picks none or several."""
    text = fold(body).strip(" .!#")
    if text.isdigit() and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1]
    squeezed = text.replace("-", "").replace(" ", "")
    picked = [
        c
        for c in choices
        if (label := fold(str(c["label"])).replace("-", "").replace(" ", "")) and label in squeezed
    ]
    return picked[0] if len(picked) == 1 else None


def choice_of(candidate: Candidate) -> dict[str, object]:
    """What a pending question remembers of one option."""
    return {
        "customer_id": candidate.customer.id,
        "repair_order_id": candidate.repair_order.id,
        "label": candidate.vehicle_label,
    }
