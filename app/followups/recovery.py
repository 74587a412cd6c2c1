"""Recovery attribution: declined work later approved or done on another RO of the group.

A declined line is recovered when the same op code is approved or completed on a
later RO for the same vehicle (by VIN), or for the same customer when either RO has
no VIN, at any rooftop of the group, within the group's `recovery_window_days` of
the decline. The recovered amount is the DECLINED line's amount: the report then
answers "how many of the declined dollars came back", every recovered cent is also
a declined cent, and a price change on the later RO does not move the figure. The
recovering line's own amount stays on the row's recovering line for whoever wants it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage
from app.dealers.models import Rooftop
from app.followups.models import FollowupLine, FollowupPlan, FollowupTouch, Recovery
from app.messaging.models import OutboundMessage
from app.repair_orders.changes import RepairOrderChange
from app.repair_orders.models import RepairOrder, RoLine

DONE_STATUSES = ("approved", "completed")
# A touch counts as "sent" once Twilio took it; failed or undelivered never reached the customer.
SENT_STATES = ("sent", "delivered", "read")


def declined_on(ro: RepairOrder) -> datetime:
    """When a line on this RO counts as declined: at close, or at write-up while still open."""
    return ro.closed_at or ro.opened_at


def is_declined(line: RoLine, ro: RepairOrder) -> bool:
    """Declined outright, or recommended and never approved by the time the RO closed."""
    return line.status == "declined" or (line.status == "pending" and ro.stage == "closed")


def _has_vin(ro: RepairOrder) -> bool:
    return ro.vehicle is not None and bool(ro.vehicle.vin)


def same_need(earlier: RepairOrder, later: RepairOrder) -> bool:
    """Same vehicle by VIN; same customer when either RO has no VIN."""
    if _has_vin(earlier) and _has_vin(later):
        return earlier.vehicle_id == later.vehicle_id
    return earlier.customer_id is not None and earlier.customer_id == later.customer_id


def related_ro_filter(ro: RepairOrder) -> object:
    """SQL pre-filter for ROs that may concern the same vehicle or customer as `ro`."""
    clauses = []
    if ro.vehicle_id is not None:
        clauses.append(RepairOrder.vehicle_id == ro.vehicle_id)
    if ro.customer_id is not None:
        clauses.append(RepairOrder.customer_id == ro.customer_id)
    return or_(*clauses) if clauses else RepairOrder.id == -1


def _recovering_lines(change: RepairOrderChange) -> list[RoLine]:
    if change.is_new and not change.line_changes:
        return [line for line in change.ro.lines if line.status in DONE_STATUSES]
    return [
        lc.line
        for lc in change.line_changes
        if lc.line.status in DONE_STATUSES and lc.previous_status not in DONE_STATUSES
    ]


def _open_declined_candidates(
    session: Session, *, ro: RepairOrder, group_id: int, op_code: str, at: datetime, window: int
) -> list[RoLine]:
    rows = session.scalars(
        select(RoLine)
        .join(RepairOrder, RepairOrder.id == RoLine.repair_order_id)
        .join(Rooftop, Rooftop.id == RepairOrder.rooftop_id)
        .where(
            Rooftop.group_id == group_id,
            RoLine.op_code == op_code,
            RoLine.status.in_(("declined", "pending")),
            RepairOrder.id != ro.id,
            RepairOrder.stage != "canceled",
            related_ro_filter(ro),  # type: ignore[arg-type]
            ~exists().where(Recovery.declined_line_id == RoLine.id),
        )
        .order_by(RoLine.id)
    )
    found = []
    for line in rows:
        earlier = line.repair_order
        when = declined_on(earlier)
        if (
            is_declined(line, earlier)
            and same_need(earlier, ro)
            and earlier.opened_at <= ro.opened_at
            and when <= at
            and at - when <= timedelta(days=window)
        ):
            found.append(line)
    return found


def _plan_for_line(session: Session, line_id: int) -> FollowupPlan | None:
    return session.scalar(
        select(FollowupPlan)
        .join(FollowupLine, FollowupLine.plan_id == FollowupPlan.id)
        .where(FollowupLine.ro_line_id == line_id)
    )


def last_sent_touch_no(session: Session, *, plan_id: int, before: datetime) -> int | None:
    """The number of the plan's last touch the customer was actually sent before `before`."""
    return session.scalar(
        select(FollowupTouch.touch_no)
        .join(OutboundMessage, OutboundMessage.id == FollowupTouch.outbound_message_id)
        .where(
            FollowupTouch.plan_id == plan_id,
            OutboundMessage.state.in_(SENT_STATES),
            OutboundMessage.sent_at <= before,
        )
        .order_by(FollowupTouch.touch_no.desc())
        .limit(1)
    )


def _customer_replied(
    session: Session, *, customer_id: int | None, since: datetime, until: datetime
) -> bool:
    if customer_id is None:
        return False
    return bool(
        session.scalar(
            select(
                exists().where(
                    and_(
                        InboundMessage.customer_id == customer_id,
                        InboundMessage.received_at >= since,
                        InboundMessage.received_at <= until,
                    )
                )
            )
        )
    )


def record_recoveries(session: Session, change: RepairOrderChange) -> list[Recovery]:
    """Write a Recovery for every open declined line this change's approved/done lines win back."""
    ro = change.ro
    window = change.rooftop.group.recovery_window_days
    recovered: list[Recovery] = []
    for line in _recovering_lines(change):
        for declined in _open_declined_candidates(
            session,
            ro=ro,
            group_id=change.rooftop.group_id,
            op_code=line.op_code,
            at=change.at,
            window=window,
        ):
            plan = _plan_for_line(session, declined.id)
            since = plan.created_at if plan is not None else declined_on(declined.repair_order)
            recovery = Recovery(
                declined_line_id=declined.id,
                recovering_line_id=line.id,
                recovered_cents=declined.amount_cents,
                preceding_touch_no=(
                    last_sent_touch_no(session, plan_id=plan.id, before=change.at)
                    if plan is not None
                    else None
                ),
                customer_replied=_customer_replied(
                    session,
                    customer_id=declined.repair_order.customer_id,
                    since=since,
                    until=change.at,
                ),
                recovered_at=change.at,
            )
            session.add(recovery)
            recovered.append(recovery)
    if recovered:
        session.flush()
    return recovered
