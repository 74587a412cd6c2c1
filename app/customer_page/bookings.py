"""Booking declined work from the page: open slots from the rooftop's capacity, or a call back.

Slots are whole hours in the rooftop's zone (`[rooftop.booking]`: days, hours, per_hour,
days_ahead), from the next full hour after a two-hour lead. A slot's seats are numbered;
(rooftop, slot, seat) is unique, so the last seat of an hour goes to one customer only.
A booking stops the RO's declined-work follow-ups (the work is booked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.conversations.tasks import open_task
from app.customer_page.links import Resolved
from app.customer_page.models import Booking
from app.customer_page.page import PageLine
from app.dealers.models import Rooftop
from app.followups.models import FollowupPlan
from app.followups.service import stop_plan
from app.messaging.templates import format_money

LEAD = timedelta(hours=2)
BOOKED_REASON = "booked on the customer page"


@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    free: int


def open_slots(session: Session, *, rooftop: Rooftop, now: datetime) -> list[Slot]:
    """Every hour with a free seat in the booking window, earliest first."""
    capacity = rooftop.settings.booking
    if capacity.per_hour <= 0:
        return []
    zone = rooftop.settings.zone
    earliest = now + LEAD
    first_day = now.astimezone(zone).date()
    candidates: list[datetime] = []
    for offset in range(capacity.days_ahead + 1):
        day = first_day + timedelta(days=offset)
        if day.weekday() not in capacity.weekdays:
            continue
        for hour in capacity.hour_range:
            start = datetime.combine(day, time(hour), tzinfo=zone)
            if start >= earliest:
                candidates.append(start.astimezone(earliest.tzinfo))
    if not candidates:
        return []
    taken = dict(
        session.execute(
            select(Booking.slot_start, func.count())
            .where(
                Booking.rooftop_id == rooftop.id,
                Booking.kind == "appointment",
                Booking.slot_start >= candidates[0],
                Booking.slot_start <= candidates[-1],
            )
            .group_by(Booking.slot_start)
        ).all()
    )
    return [
        Slot(start, capacity.per_hour - taken.get(start, 0))
        for start in candidates
        if taken.get(start, 0) < capacity.per_hour
    ]


class SlotTaken(Exception):
    """The slot filled up (or was never offered) between showing it and booking it."""


def book(
    session: Session,
    *,
    resolved: Resolved,
    lines: list[PageLine],
    slot: datetime | None,
    now: datetime,
) -> Booking:
    """An appointment request at `slot` (None: a call back) for the lines; tasks the advisor."""
    ro, customer, rooftop, link = resolved.ro, resolved.customer, resolved.rooftop, resolved.link
    assert ro is not None and customer is not None and rooftop is not None and link is not None
    seat = None
    if slot is not None:
        offered = {s.start: s for s in open_slots(session, rooftop=rooftop, now=now)}
        if slot not in offered:
            raise SlotTaken(slot.isoformat())
        seat = rooftop.settings.booking.per_hour - offered[slot].free + 1
    total = sum(line.amount_cents for line in lines)
    booking = Booking(
        rooftop_id=rooftop.id,
        repair_order_id=ro.id,
        customer_id=customer.id,
        link_id=link.id,
        kind="appointment" if slot is not None else "callback",
        slot_start=slot,
        seat=seat,
        lines=[
            {
                "line": line.line_code,
                "description": line.description,
                "amount_cents": line.amount_cents,
            }
            for line in lines
        ],
        total_cents=total,
        state="requested",
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(booking)
            session.flush()
    except IntegrityError:
        raise SlotTaken(slot.isoformat() if slot else "callback") from None
    described = ", ".join(f"{line.description} {format_money(line.amount_cents)}" for line in lines)
    if slot is not None:
        local = slot.astimezone(rooftop.settings.zone)
        what = (
            f"booked {local:%a %b} {local.day} {local:%H:%M} for {described}: confirm it in the DMS"
        )
    else:
        what = f"asks for a call back about {described}"
    task = open_task(
        session,
        rooftop_id=rooftop.id,
        kind="callback" if slot is None else "booking",
        summary=f"{customer.display_name} on the customer page (RO {ro.ro_number}) {what}",
        now=now,
        customer_id=customer.id,
        repair_order_id=ro.id,
        advisor_ref=ro.advisor_ref,
    )
    assert task is not None
    session.flush()
    booking.task_id = task.id
    if slot is not None:
        for plan in session.scalars(
            select(FollowupPlan).where(
                FollowupPlan.repair_order_id == ro.id, FollowupPlan.state == "active"
            )
        ):
            stop_plan(session, plan=plan, reason=BOOKED_REASON, at=now)
    return booking


def booked_lines(session: Session, ro_ids: list[int]) -> set[tuple[int, str]]:
    """(RO id, line code) of every line in an appointment request on these ROs."""
    found: set[tuple[int, str]] = set()
    for ro_id, lines in session.execute(
        select(Booking.repair_order_id, Booking.lines).where(
            Booking.repair_order_id.in_(ro_ids),
            Booking.kind == "appointment",
            Booking.state == "requested",
        )
    ):
        found.update((ro_id, line["line"]) for line in lines)
    return found
