"""The reads behind the pages: the board, the inbox, a customer's timeline, one RO.

Every function takes the principal (or rooftops already checked against it), so a
page can only ever ask about what its user may see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.customers.models import Consent, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.repair_orders.models import RepairOrder, RoEvent

M = TypeVar("M")
R = TypeVar("R")
K = TypeVar("K")


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


def latest_per(rows: Iterable[R], key: Callable[[R], K]) -> dict[K, R]:
    """First row per key of rows already sorted newest first."""
    latest: dict[K, R] = {}
    for row in rows:
        latest.setdefault(key(row), row)
    return latest


def ro_events(session: Session, *, ro_ids: list[int]) -> list[RoEvent]:
    """The ROs' history (stage moves, promised times moved, vanished), newest first."""
    return list(
        session.scalars(
            select(RoEvent).where(RoEvent.repair_order_id.in_(ro_ids)).order_by(RoEvent.at.desc())
        )
    )
