"""Declined-work follow-ups: a plan when an RO closes, one message per touch, and stopping.

A plan covers every declined line of one RO (one message names them all) and has
one touch per day in the rooftop's `followup_days`, counted on the rooftop's wall
clock from the close (10:00 stays 10:00 across a daylight-saving change). Touches
are queued by `queue_due_touches`; consent, quiet hours and the daily cap are the
dispatcher's, at send time. A plan stops when all its work is approved or done,
when the customer says no or STOP, or when its last touch has gone. A plan drawn
into the holdout (app/followups/holdout.py) goes through all of this too, except
that each touch is canceled where its message would be queued.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.customer_page.links import link_for_text
from app.customers.models import Customer
from app.customers.service import current_consent
from app.db import chunks, is_postgres, one_of
from app.dealers.models import Rooftop
from app.followups.holdout import HELD_OUT, assign
from app.followups.messages import (
    first_name,
    language_for,
    money,
    render,
    store_phone,
    textable_phone,
)
from app.followups.models import FollowupLine, FollowupPlan, FollowupTouch, Recovery
from app.followups.recovery import (
    DONE_STATUSES,
    is_declined,
    record_recoveries,
    related_ro_filter,
    same_need,
)
from app.messaging.line_names import line_name
from app.messaging.models import OutboundMessage
from app.messaging.service import MessageRequest, enqueue
from app.repair_orders.changes import ForPage, RepairOrderChange
from app.repair_orders.models import OPEN_STAGES, RepairOrder, RoLine

# A touch missed by more than this (worker down for days) is canceled, not sent late:
# "we recommended brakes" a week after the planned day reads like a glitch.
STALE_AFTER = timedelta(days=2)
# A queued touch held by quiet hours or the daily cap is dropped after this.
EXPIRES_AFTER = timedelta(days=3)
WORK_APPROVED = "work approved"


def on_repair_order_changes(session: Session, changes: Sequence[RepairOrderChange]) -> None:
    """PageHook: record recoveries, plan follow-ups when an RO closes, stop finished plans
    (the page's active plans read in one query)."""
    for change in changes:
        record_recoveries(session, change)
        if change.ro.stage == "closed" and change.stage_changed:
            create_plan(session, ro=change.ro, rooftop=change.rooftop, at=change.at)
    if changes:
        stop_finished_plans_of(session, ros=[c.ro for c in changes], at=changes[-1].at)


# One change at a time for callers that have one; the poller hands it whole pages.
on_repair_order_change = ForPage(on_repair_order_changes)


def create_plan(
    session: Session, *, ro: RepairOrder, rooftop: Rooftop, at: datetime
) -> FollowupPlan | None:
    """One plan for a closed RO's declined lines not yet followed up; None if nothing to ask."""
    if ro.customer_id is None or not rooftop.settings.followup_days:
        return None
    if session.scalar(select(FollowupPlan.id).where(FollowupPlan.repair_order_id == ro.id)):
        return None  # the RO closed before (reopened and closed again): one plan per RO
    window = timedelta(days=rooftop.group.recovery_window_days)
    lines = [
        line
        for line in ro.lines
        if is_declined(line, ro)
        and not _followed_up_elsewhere(session, ro=ro, line=line, since=at - window)
    ]
    if not lines:
        return None
    closed_at = ro.closed_at or at
    plan = FollowupPlan(
        repair_order_id=ro.id,
        rooftop_id=rooftop.id,
        customer_id=ro.customer_id,
        state="active",
        closed_at=closed_at,
        created_at=at,
    )
    assign(session, plan=plan, rooftop=rooftop, ro_number=ro.ro_number)
    session.add(plan)
    session.flush()
    local_close = closed_at.astimezone(rooftop.settings.zone)
    for line in lines:
        session.add(FollowupLine(plan_id=plan.id, ro_line_id=line.id))
    for touch_no, days in enumerate(rooftop.settings.followup_days, start=1):
        # Wall-clock arithmetic in the rooftop's zone, then back to UTC.
        due_at = (local_close + timedelta(days=days)).astimezone(UTC)
        session.add(FollowupTouch(plan_id=plan.id, touch_no=touch_no, due_at=due_at))
    session.flush()
    return plan


def _followed_up_elsewhere(
    session: Session, *, ro: RepairOrder, line: RoLine, since: datetime
) -> bool:
    """True when another plan (closed within the window) already asks about this op code."""
    others = session.scalars(
        select(RepairOrder)
        .join(FollowupPlan, FollowupPlan.repair_order_id == RepairOrder.id)
        .join(FollowupLine, FollowupLine.plan_id == FollowupPlan.id)
        .join(RoLine, RoLine.id == FollowupLine.ro_line_id)
        .where(
            RoLine.op_code == line.op_code,
            FollowupPlan.repair_order_id != ro.id,
            FollowupPlan.closed_at >= since,
            related_ro_filter(ro),  # type: ignore[arg-type]
        )
    )
    return any(same_need(other, ro) for other in others)


def plan_lines(session: Session, plan: FollowupPlan) -> list[RoLine]:
    return list(
        session.scalars(
            select(RoLine)
            .join(FollowupLine, FollowupLine.ro_line_id == RoLine.id)
            .where(FollowupLine.plan_id == plan.id)
            .order_by(RoLine.id)
        )
    )


def _recovered_ids(session: Session, lines: list[RoLine]) -> set[int]:
    ids = [line.id for line in lines]
    return set(
        session.scalars(select(Recovery.declined_line_id).where(Recovery.declined_line_id.in_(ids)))
    )


def _settled(session: Session, lines: list[RoLine]) -> list[bool]:
    """Per line: has the work come back (recovered elsewhere, or approved on its own RO)?"""
    recovered = _recovered_ids(session, lines)
    return [line.id in recovered or line.status in DONE_STATUSES for line in lines]


def open_lines(session: Session, *, plan: FollowupPlan) -> list[RoLine]:
    """The plan's lines still worth asking about: not recovered, and not booked on an open RO."""
    lines = plan_lines(session, plan)
    unsettled = [
        line for line, done in zip(lines, _settled(session, lines), strict=True) if not done
    ]
    if not unsettled:
        return []
    plan_ro = session.get_one(RepairOrder, plan.repair_order_id)
    booked: set[str] = set()
    for other in session.scalars(
        select(RepairOrder).where(
            RepairOrder.id != plan_ro.id,
            RepairOrder.stage.in_(OPEN_STAGES),
            RepairOrder.opened_at >= plan_ro.opened_at,
            related_ro_filter(plan_ro),  # type: ignore[arg-type]
        )
    ):
        if same_need(plan_ro, other):
            booked.update(line.op_code for line in other.lines if line.status != "declined")
    return [line for line in unsettled if line.op_code not in booked]


def stop_finished_plans(session: Session, *, ro: RepairOrder, at: datetime) -> int:
    """Stop active plans about this vehicle/customer whose every line has been won back."""
    return stop_finished_plans_of(session, ros=[ro], at=at)


def stop_finished_plans_of(session: Session, *, ros: Sequence[RepairOrder], at: datetime) -> int:
    """`stop_finished_plans` for a page of ROs: their active plans read in one query."""
    vehicles = sorted({ro.vehicle_id for ro in ros if ro.vehicle_id is not None})
    customers = sorted({ro.customer_id for ro in ros if ro.customer_id is not None})
    plans: dict[int, FollowupPlan] = {}
    for kind, ids in ((RepairOrder.vehicle_id, vehicles), (RepairOrder.customer_id, customers)):
        for chunk in chunks(ids):
            plans.update(
                (plan.id, plan)
                for plan in session.scalars(
                    select(FollowupPlan)
                    .join(RepairOrder, RepairOrder.id == FollowupPlan.repair_order_id)
                    .where(FollowupPlan.state == "active", one_of(session, kind, chunk))
                )
            )
    stopped = 0
    for plan in plans.values():
        lines = plan_lines(session, plan)
        if lines and all(_settled(session, lines)):
            stop_plan(session, plan=plan, reason=WORK_APPROVED, at=at)
            stopped += 1
    return stopped


def stop_plan(session: Session, *, plan: FollowupPlan, reason: str, at: datetime) -> None:
    """Stop a plan now: cancel its unsent touches and any of its messages still waiting to go."""
    plan.state = "stopped"
    plan.stopped_reason = reason[:100]
    plan.stopped_at = at
    touches = list(session.scalars(select(FollowupTouch).where(FollowupTouch.plan_id == plan.id)))
    for touch in touches:
        if touch.state == "scheduled":
            _cancel(touch, f"plan stopped: {reason}")
    waiting = [t.outbound_message_id for t in touches if t.outbound_message_id is not None]
    if waiting:
        # Compare-and-set on `pending`: a message already claimed by a sender is in flight.
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(waiting), OutboundMessage.state == "pending")
            .values(state="canceled", suppressed_reason=f"follow-up stopped: {reason}"[:200])
        )
    session.flush()


def stop_plans_for_customer(
    session: Session, *, customer_id: int, reason: str, at: datetime
) -> int:
    """Stop every active plan of a customer (they replied no or STOP). Returns how many."""
    plans = list(
        session.scalars(
            select(FollowupPlan).where(
                FollowupPlan.customer_id == customer_id, FollowupPlan.state == "active"
            )
        )
    )
    for plan in plans:
        stop_plan(session, plan=plan, reason=reason, at=at)
    return len(plans)


def _cancel(touch: FollowupTouch, reason: str) -> None:
    touch.state = "canceled"
    touch.canceled_reason = reason[:200]


def queue_due_touches(session: Session, *, now: datetime) -> int:
    """Queue one message per due touch of an active plan; returns how many were queued.

    Safe to run twice or after missed ticks: a touch is `scheduled` until this marks it,
    in the same transaction as its outbox row (whose dedupe key is the touch). When a
    plan has several touches due at once (the worker was down), only the latest is
    sent; a touch older than STALE_AFTER is canceled with its reason.
    """
    query = (
        select(FollowupTouch)
        .where(FollowupTouch.state == "scheduled", FollowupTouch.due_at <= now)
        .order_by(FollowupTouch.plan_id, FollowupTouch.touch_no)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)  # several workers may tick at once
    due: dict[int, list[FollowupTouch]] = defaultdict(list)
    for touch in session.scalars(query):
        due[touch.plan_id].append(touch)
    queued = 0
    for plan_id, touches in due.items():
        plan = session.get_one(FollowupPlan, plan_id)
        *earlier, latest = touches
        if plan.state != "active":
            for touch in touches:
                _cancel(touch, f"plan {plan.state}: {plan.stopped_reason or ''}".strip(": "))
            continue
        for touch in earlier:
            _cancel(touch, f"superseded by touch {latest.touch_no}, due at the same time")
        if now - latest.due_at > STALE_AFTER:
            _cancel(
                latest,
                f"stale: due {latest.due_at.isoformat()}, not queued until {now.isoformat()}",
            )
        else:
            queued += _queue_touch(session, plan=plan, touch=latest, now=now)
        _finish_if_last(session, plan=plan, now=now)
    session.flush()
    return queued


def _queue_touch(
    session: Session, *, plan: FollowupPlan, touch: FollowupTouch, now: datetime
) -> int:
    rooftop = session.get_one(Rooftop, plan.rooftop_id)
    lines = open_lines(session, plan=plan)
    if not lines:
        all_lines = plan_lines(session, plan)
        if all(_settled(session, all_lines)):
            stop_plan(session, plan=plan, reason=WORK_APPROVED, at=now)
        else:
            _cancel(touch, "nothing to ask about now: the work is booked on an open RO")
        return 0
    if not rooftop.active:
        _cancel(touch, f"rooftop {rooftop.slug} is no longer active")
        return 0
    phone = textable_phone(session, plan.customer_id)
    if phone is None:
        _cancel(touch, "the customer has no textable phone")
        return 0
    if current_consent(session, phone_id=phone.id, channel="sms", purpose="marketing") is False:
        # STOP (or a revoked DMS flag) ends the cadence; unknown consent is the dispatcher's call.
        stop_plan(session, plan=plan, reason="marketing consent revoked", at=now)
        return 0
    if plan.holdout:
        # Everything above (stops, consent, phone) runs as for a followed plan; only this differs.
        _cancel(touch, HELD_OUT)
        return 0
    ro = session.get_one(RepairOrder, plan.repair_order_id)
    customer = session.get(Customer, plan.customer_id) if plan.customer_id else None
    total = sum(line.amount_cents for line in lines)
    language = language_for(rooftop, customer)[:2]  # the lines' names in the text's language
    context = {
        "first_name": first_name(customer),
        "vehicle": ro.vehicle.label if ro.vehicle else "vehicle",
        "items": [
            {"description": line_name(ln.description, language), "amount": money(ln.amount_cents)}
            for ln in lines
        ],
        "total": money(total),
        "store_phone": store_phone(rooftop),
        "touch_no": touch.touch_no,
        "ro_number": ro.ro_number,
    }
    page = link_for_text(session, ro=ro, customer=customer, purpose="followup", now=now)
    context["page_link"] = page.url
    dedupe_key = f"followup:{plan.id}:touch:{touch.touch_no}"
    message = enqueue(
        session,
        MessageRequest(
            rooftop_id=rooftop.id,
            customer_id=plan.customer_id,
            phone_id=phone.id,
            kind="followup",
            purpose="marketing",
            dedupe_key=dedupe_key,
            body=render("followup", rooftop=rooftop, customer=customer, context=context),
            template="followup",
            repair_order_id=ro.id,
            to_address=phone.e164,
            content_variables={"vehicle": context["vehicle"], "total": context["total"]},
            not_before=now,
            expires_at=now + EXPIRES_AFTER,
        ),
    )
    page.settle(session, message.id if message is not None else None)
    touch.outbound_message_id = (
        message.id
        if message is not None
        else session.scalar(
            select(OutboundMessage.id).where(OutboundMessage.dedupe_key == dedupe_key)
        )
    )
    touch.state = "queued"
    touch.queued_at = now
    return 1


def _finish_if_last(session: Session, *, plan: FollowupPlan, now: datetime) -> None:
    """The cadence has ended once no touch is left scheduled."""
    if plan.state != "active":
        return
    remaining = session.scalar(
        select(FollowupTouch.id)
        .where(FollowupTouch.plan_id == plan.id, FollowupTouch.state == "scheduled")
        .limit(1)
    )
    if remaining is None:
        plan.state = "done"
        plan.stopped_reason = "cadence ended"
        plan.stopped_at = now
