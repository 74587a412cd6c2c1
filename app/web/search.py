"""Find a repair order or a customer across the group by name, phone, RO number or VIN.

Only what the principal may see: ROs at their rooftops, and customers known at them
(an advisor of one rooftop does not find another rooftop's customers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.conversations.models import InboundMessage
from app.customers.models import Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.repair_orders.models import RepairOrder, Vehicle

LIMIT = 25
MIN_LENGTH = 2


class SearchError(ValueError):
    """The query cannot be searched; the message says what to type instead."""


@dataclass(frozen=True)
class FoundRo:
    ro_id: int
    ro_number: str
    rooftop: str
    stage: str
    customer_id: int | None
    customer_name: str
    vehicle: str
    vin: str | None


@dataclass(frozen=True)
class FoundCustomer:
    customer_id: int
    name: str
    phones: tuple[str, ...]


@dataclass(frozen=True)
class Results:
    query: str
    repair_orders: list[FoundRo]
    customers: list[FoundCustomer]


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    session: Session, *, principal: Principal, rooftops: list[Rooftop], query: str
) -> Results:
    """ROs and customers matching `query`, at the rooftops given (already checked against
    the principal). Digits match phone numbers; words match names, RO numbers and VINs."""
    text = " ".join(query.split())[:80]
    if len(text) < MIN_LENGTH:
        raise SearchError(f"type at least {MIN_LENGTH} characters: a name, phone, RO number or VIN")
    rooftop_names = {r.id: r.name for r in rooftops}
    digits = re.sub(r"\D", "", text)
    like = _like(text)
    name = func.lower(
        func.coalesce(Customer.first_name, "") + " " + func.coalesce(Customer.last_name, "")
    )
    phone_match = (
        select(CustomerPhone.customer_id)
        .join(Phone, Phone.id == CustomerPhone.phone_id)
        .where(Phone.e164.like(f"%{digits[-10:]}%"))
    )
    customer_terms = [
        name.like(like, escape="\\"),
        func.lower(Customer.last_name).like(like, escape="\\"),
    ]
    if len(digits) >= 4 and not re.search(r"[^\d\s()+.-]", text):  # a phone number
        customer_terms.append(Customer.id.in_(phone_match))
    ro_terms = [
        func.lower(RepairOrder.ro_number).like(like, escape="\\"),
        func.lower(Vehicle.vin).like(like, escape="\\"),
        RepairOrder.customer_id.in_(
            select(Customer.id).where(Customer.group_id == principal.group_id, or_(*customer_terms))
        ),
    ]
    found = session.execute(
        select(RepairOrder, Customer, Vehicle)
        .outerjoin(Customer, Customer.id == RepairOrder.customer_id)
        .outerjoin(Vehicle, Vehicle.id == RepairOrder.vehicle_id)
        .where(RepairOrder.rooftop_id.in_(list(rooftop_names)), or_(*ro_terms))
        .order_by(RepairOrder.opened_at.desc())
        .limit(LIMIT)
    )
    ros = [
        FoundRo(
            ro_id=ro.id,
            ro_number=ro.ro_number,
            rooftop=rooftop_names[ro.rooftop_id],
            stage=ro.stage,
            customer_id=customer.id if customer else None,
            customer_name=customer.display_name if customer else "unknown customer",
            vehicle=vehicle.label if vehicle else "",
            vin=vehicle.vin if vehicle else None,
        )
        for ro, customer, vehicle in found
    ]
    return Results(text, ros, _customers(session, principal, list(rooftop_names), customer_terms))


def _customers(
    session: Session, principal: Principal, rooftop_ids: list[int], terms: list
) -> list[FoundCustomer]:
    query = select(Customer).where(
        Customer.group_id == principal.group_id, Customer.erased_at.is_(None), or_(*terms)
    )
    if principal.rooftop_ids is not None:
        known_at = or_(
            Customer.id.in_(
                select(RepairOrder.customer_id).where(RepairOrder.rooftop_id.in_(rooftop_ids))
            ),
            Customer.id.in_(
                select(InboundMessage.customer_id).where(InboundMessage.rooftop_id.in_(rooftop_ids))
            ),
        )
        query = query.where(known_at)
    customers = list(session.scalars(query.order_by(Customer.last_name, Customer.id).limit(LIMIT)))
    phones: dict[int, list[str]] = {}
    for customer_id, e164, typed in session.execute(
        select(CustomerPhone.customer_id, Phone.e164, Phone.as_typed)
        .join(Phone, Phone.id == CustomerPhone.phone_id)
        .where(CustomerPhone.customer_id.in_([c.id for c in customers]))
    ):
        phones.setdefault(customer_id, []).append(e164 or typed)
    return [FoundCustomer(c.id, c.display_name, tuple(phones.get(c.id, []))) for c in customers]
