"""The reads behind the pages: the board, the inbox, a customer's timeline, one RO.

Every function takes the principal (or rooftops already checked against it), so a
page can only ever ask about what its user may see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from app.auth.service import Principal
from app.conversations.models import InboundMessage, Task
from app.customers.models import Consent, Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import OPEN_STAGES, RepairOrder, RoEvent

M = TypeVar("M")
R = TypeVar("R")
K = TypeVar("K")

# Stages in which a passed promised time means the customer is waiting on us.
_WORKING_STAGES = tuple(s for s in OPEN_STAGES if s != "ready_for_pickup")


def visible_rooftops(session: Session, *, principal: Principal) -> list[Rooftop]:
    """The active rooftops of the principal's group that the principal may see."""
    rooftops = session.scalars(
        select(Rooftop)
        .where(Rooftop.group_id == principal.group_id, Rooftop.active.is_(True))
        .order_by(Rooftop.name)
    )
    return [r for r in rooftops if principal.can_see_rooftop(r.id)]


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight today on the rooftop's wall clock, as an aware time."""
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


@dataclass(frozen=True)
class BoardRow:
    ro_id: int
    ro_number: str
    customer_id: int | None
    customer_name: str
    vehicle: str
    stage: str
    raw_status: str
    promised_at: datetime | None
    advisor: str
    last_message: OutboundMessage | None
    last_reply: InboundMessage | None
    flags: tuple[str, ...]
    updated_at: datetime


def board_rows(session: Session, *, rooftop: Rooftop, now: datetime) -> list[BoardRow]:
    """Today's repair orders at a rooftop: every open one, and those closed today."""
    since = day_start(now, rooftop.settings.zone)
    ros = list(
        session.scalars(
            select(RepairOrder)
            .options(selectinload(RepairOrder.vehicle))
            .where(
                RepairOrder.rooftop_id == rooftop.id,
                or_(RepairOrder.stage.in_(OPEN_STAGES), RepairOrder.closed_at >= since),
            )
            .order_by(
                RepairOrder.promised_at.is_(None), RepairOrder.promised_at, RepairOrder.ro_number
            )
        )
    )
    ro_ids = [ro.id for ro in ros]
    customer_ids = {ro.customer_id for ro in ros if ro.customer_id is not None}
    customers = rows_by_id(session, Customer, customer_ids)
    last_message = _latest_per(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.repair_order_id.in_(ro_ids))
            .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
        ),
        key=lambda m: m.repair_order_id,
    )
    last_reply = _latest_per(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.customer_id.in_(customer_ids))
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        ),
        key=lambda m: m.customer_id,
    )
    textable, opted_out = contact_state(session, customer_ids=customer_ids)
    open_tasks = list(
        session.execute(
            select(Task.repair_order_id, Task.customer_id).where(
                Task.state == "open",
                Task.rooftop_id == rooftop.id,
                Task.kind.in_(("needs_reply", "callback")),
            )
        )
    )
    needs_reply_ros = {t.repair_order_id for t in open_tasks}
    needs_reply_customers = {t.customer_id for t in open_tasks if t.repair_order_id is None}
    rows = []
    for ro in ros:
        customer = customers.get(ro.customer_id) if ro.customer_id else None
        flags = []
        if ro.promised_at and ro.promised_at < now and ro.stage in _WORKING_STAGES:
            flags.append("late")
        if ro.stage == "awaiting_approval":
            flags.append("awaiting approval")
        if ro.customer_id in opted_out:
            flags.append("opted out")
        if ro.customer_id not in textable:
            flags.append("not textable")
        if ro.id in needs_reply_ros or ro.customer_id in needs_reply_customers:
            flags.append("needs reply")
        rows.append(
            BoardRow(
                ro_id=ro.id,
                ro_number=ro.ro_number,
                customer_id=ro.customer_id,
                customer_name=customer.display_name if customer else "unknown customer",
                vehicle=ro.vehicle.label if ro.vehicle else "",
                stage=ro.stage,
                raw_status=ro.raw_status,
                promised_at=ro.promised_at,
                advisor=ro.advisor_name or ro.advisor_ref or "—",
                last_message=last_message.get(ro.id),
                last_reply=last_reply.get(ro.customer_id),
                flags=tuple(flags),
                updated_at=ro.updated_at,
            )
        )
    return rows


def contact_state(session: Session, *, customer_ids: Iterable[int]) -> tuple[set[int], set[int]]:
    """(customers with a textable number, customers whose latest status consent is revoked)."""
    ids = set(customer_ids)
    links = list(
        session.execute(
            select(CustomerPhone.customer_id, Phone.id, Phone.textable, Phone.e164)
            .join(Phone, Phone.id == CustomerPhone.phone_id)
            .where(CustomerPhone.customer_id.in_(ids))
        )
    )
    textable = {link.customer_id for link in links if link.textable and link.e164}
    phone_owners: dict[int, set[int]] = {}
    for link in links:
        phone_owners.setdefault(link.id, set()).add(link.customer_id)
    latest: dict[tuple[int, str], str] = {}
    for consent in session.scalars(
        select(Consent)
        .where(Consent.phone_id.in_(phone_owners), Consent.purpose == "status")
        .order_by(Consent.id)
    ):
        latest[(consent.phone_id, consent.channel)] = consent.action
    opted_out = {
        owner
        for (phone_id, _channel), action in latest.items()
        if action == "revoked"
        for owner in phone_owners[phone_id]
    }
    return textable, opted_out


def visible_repair_order(
    session: Session, *, principal: Principal, ro_id: int
) -> RepairOrder | None:
    """An RO of the principal's group and rooftops, or None."""
    ro = session.get(RepairOrder, ro_id)
    if ro is None:
        return None
    rooftop = session.get(Rooftop, ro.rooftop_id)
    if rooftop is None or rooftop.group_id != principal.group_id:
        return None
    return ro if principal.can_see_rooftop(rooftop.id) else None


def customer_phones(session: Session, *, customer_id: int) -> list[Phone]:
    return list(
        session.scalars(
            select(Phone)
            .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
            .where(CustomerPhone.customer_id == customer_id)
            .order_by(CustomerPhone.is_primary.desc(), Phone.id)
        )
    )


def customer_repair_orders(
    session: Session, *, principal: Principal, customer_id: int
) -> list[tuple[RepairOrder, str]]:
    """The customer's ROs at rooftops the principal may see, newest first, with rooftop names."""
    rows = session.execute(
        select(RepairOrder, Rooftop.name)
        .join(Rooftop, Rooftop.id == RepairOrder.rooftop_id)
        .where(RepairOrder.customer_id == customer_id, Rooftop.group_id == principal.group_id)
        .order_by(RepairOrder.opened_at.desc())
        .limit(50)
    )
    return [(ro, name) for ro, name in rows if principal.can_see_rooftop(ro.rooftop_id)]


def rows_by_id(session: Session, model: type[M], ids: set[int]) -> dict[int, M]:
    if not ids:
        return {}
    rows = session.scalars(select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


def _latest_per(rows: Iterable[R], key: Callable[[R], K]) -> dict[K, R]:
    """First row per key of rows already sorted newest first."""
    latest: dict[K, R] = {}
    for row in rows:
        latest.setdefault(key(row), row)
    return latest


def ro_events(session: Session, *, ro_ids: list[int]) -> list[RoEvent]:
    return list(
        session.scalars(
            select(RoEvent).where(RoEvent.repair_order_id.in_(ro_ids)).order_by(RoEvent.at.desc())
        )
    )
