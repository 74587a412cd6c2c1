"""The promise-time watchdog: late cars, new promised times, ROs stuck in a stage.

Everything here is once-only by key, so a tick that runs twice, or a worker that
restarts, repeats nothing: the customer's "running a little late" message is keyed
by the RO and the promised time it misses, the advisor's tasks by RO and the
promise (or the stage entry) they are about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.conversations.models import Task
from app.customer_page.links import link_for_text
from app.customers.models import Customer
from app.db import chunks, is_postgres, one_of
from app.dealers.models import Rooftop
from app.dealers.service import active_rooftops
from app.followups.messages import first_name, local_time, render, store_phone, textable_phone
from app.messaging.rules import promised_dedupe_key
from app.messaging.service import MessageRequest, enqueue
from app.repair_orders.changes import ForPage, RepairOrderChange
from app.repair_orders.models import OPEN_STAGES, RepairOrder, RoEvent

# Stages in which a car can still be late; ready_for_pickup means the promise was kept.
NOT_READY_STAGES = tuple(s for s in OPEN_STAGES if s != "ready_for_pickup")
# A rooftop's stage_alert_minutes add to or replace these.
DEFAULT_STAGE_ALERT_MINUTES: dict[str, int] = {"awaiting_approval": 120}
# Past this, a missed promise is history (e.g. the first run after an install): no message.
LATE_GRACE = timedelta(hours=12)
STAGE_WORDS = {
    "checked_in": "checked in",
    "diagnosing": "in diagnosis",
    "awaiting_approval": "waiting on customer approval",
    "awaiting_parts": "waiting on parts",
    "in_repair": "in repair",
    "quality_check": "in quality check",
    "ready_for_pickup": "ready for pickup",
}


def _describe(session: Session, ro: RepairOrder) -> str:
    customer = session.get(Customer, ro.customer_id) if ro.customer_id else None
    who = customer.display_name if customer else "no customer"
    vehicle = ro.vehicle.label if ro.vehicle else "vehicle"
    return f"RO {ro.ro_number} ({who}, {vehicle})"


def _add_task(
    session: Session, *, ro: RepairOrder, kind: str, summary: str, dedupe_key: str
) -> bool:
    """Open an advisor task once per key; False when it already exists."""
    if session.scalar(select(Task.id).where(Task.dedupe_key == dedupe_key)) is not None:
        return False
    session.add(
        Task(
            rooftop_id=ro.rooftop_id,
            customer_id=ro.customer_id,
            repair_order_id=ro.id,
            kind=kind,
            summary=summary,
            dedupe_key=dedupe_key,
            advisor_ref=ro.advisor_ref,
            state="open",
        )
    )
    session.flush()
    return True


def _tell_customer(
    session: Session,
    *,
    ro: RepairOrder,
    rooftop: Rooftop,
    template: str,
    dedupe_key: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    phone = textable_phone(session, ro.customer_id)
    if phone is None or ro.promised_at is None:
        return False
    customer = session.get(Customer, ro.customer_id) if ro.customer_id else None
    # A late car has no new time yet ("your advisor will text you"); a moved promise has one.
    promised = ro.promised_at if template == "new_promised_time" else None
    context = {
        "first_name": first_name(customer),
        "vehicle": ro.vehicle.label if ro.vehicle else "vehicle",
        "promised_time": local_time(promised, rooftop, customer) if promised else None,
        "store_phone": store_phone(rooftop),
        "ro_number": ro.ro_number,
    }
    page = link_for_text(session, ro=ro, customer=customer, purpose="status", now=now)
    context["page_link"] = page.url
    message = enqueue(
        session,
        MessageRequest(
            rooftop_id=rooftop.id,
            customer_id=ro.customer_id,
            phone_id=phone.id,
            kind="watchdog",
            purpose="status",
            dedupe_key=dedupe_key,
            body=render(template, rooftop=rooftop, customer=customer, context=context),
            template=template,
            repair_order_id=ro.id,
            stage=ro.stage,
            to_address=phone.e164,
            not_before=now,
            expires_at=expires_at,
        ),
    )
    page.settle(session, message.id if message is not None else None)
    return message is not None


def _locked(session: Session, query: object) -> object:
    # Two workers ticking at once: each RO is looked at by one of them.
    if is_postgres(session):
        return query.with_for_update(skip_locked=True, of=RepairOrder)  # type: ignore[attr-defined]
    return query


def check_late_promises(session: Session, *, now: datetime) -> int:
    """Message the customer and task the advisor, once, for each RO about to miss its promise."""
    acted = 0
    for rooftop in active_rooftops(session):
        margin = timedelta(minutes=rooftop.settings.promise_margin_minutes)
        query = select(RepairOrder).where(
            RepairOrder.rooftop_id == rooftop.id,
            RepairOrder.stage.in_(NOT_READY_STAGES),
            RepairOrder.promised_at.is_not(None),
            RepairOrder.promised_at <= now + margin,
            RepairOrder.promised_at >= now - LATE_GRACE,
        )
        for ro in session.scalars(_locked(session, query)):  # type: ignore[call-overload]
            assert ro.promised_at is not None
            promise = ro.promised_at.isoformat()
            told = _tell_customer(
                session,
                ro=ro,
                rooftop=rooftop,
                template="running_late",
                dedupe_key=f"ro:{ro.id}:late:{promise}",
                now=now,
                expires_at=ro.promised_at + LATE_GRACE,
            )
            tasked = _add_task(
                session,
                ro=ro,
                kind="promise_late",
                summary=(
                    f"{_describe(session, ro)} is not ready and was promised for "
                    f"{local_time(ro.promised_at, rooftop)}: set a new promised time in the DMS."
                ),
                dedupe_key=f"ro:{ro.id}:late-task:{promise}",
            )
            acted += int(told or tasked)
    return acted


def _stage_entered_at(session: Session, ro: RepairOrder) -> datetime:
    entered = session.scalar(
        select(func.max(RoEvent.at)).where(
            RoEvent.repair_order_id == ro.id, RoEvent.kind == "stage", RoEvent.to_stage == ro.stage
        )
    )
    return entered or ro.opened_at


def check_stuck_stages(session: Session, *, now: datetime) -> int:
    """Task the advisor (not the customer) once per RO per stage entry past its threshold."""
    created = 0
    for rooftop in active_rooftops(session):
        alerts = dict(DEFAULT_STAGE_ALERT_MINUTES)
        alerts.update({str(k): v for k, v in rooftop.settings.stage_alert_minutes.items()})
        for stage, minutes in alerts.items():
            if stage not in OPEN_STAGES:
                continue
            query = select(RepairOrder).where(
                RepairOrder.rooftop_id == rooftop.id, RepairOrder.stage == stage
            )
            for ro in session.scalars(_locked(session, query)):  # type: ignore[call-overload]
                entered = _stage_entered_at(session, ro)
                waited = now - entered
                if waited < timedelta(minutes=minutes):
                    continue
                hours, rest = divmod(int(waited.total_seconds()) // 60, 60)
                created += _add_task(
                    session,
                    ro=ro,
                    kind="stuck_stage",
                    summary=(
                        f"{_describe(session, ro)} has been {STAGE_WORDS[stage]} for "
                        f"{hours} h {rest:02d} min (since {local_time(entered, rooftop)})."
                    ),
                    dedupe_key=f"ro:{ro.id}:stuck:{stage}:{entered.isoformat()}",
                )
    return created


def check_promises(session: Session, *, now: datetime) -> int:
    """The watchdog's tick: late promises and stuck stages. Returns messages+tasks created."""
    return check_late_promises(session, now=now) + check_stuck_stages(session, now=now)


def on_promised_changes(session: Session, changes: Sequence[RepairOrderChange]) -> None:
    """PageHook: the DMS moved promised times; tell each customer once, close late tasks.

    A "not ready and promised for ..." task also closes when the car is ready (or the RO
    closes): it asked for a new promised time, and none is needed any more. The page's
    open late tasks are read in one query.
    """
    closing: dict[int, RepairOrderChange] = {}
    for change in changes:
        ro = change.ro
        now_ready = change.stage_changed and ro.stage not in NOT_READY_STAGES
        if not change.is_new and (
            now_ready or (change.promised_changed and ro.promised_at is not None)
        ):
            closing[ro.id] = change  # a new RO has no task yet
    for chunk in chunks(sorted(closing)):
        for task in session.scalars(
            select(Task).where(
                one_of(session, Task.repair_order_id, chunk),
                Task.kind == "promise_late",
                Task.state == "open",
            )
        ):
            task.state = "done"
            task.done_at = closing[task.repair_order_id].at  # type: ignore[index]
    for change in changes:
        _tell_new_promised_time(session, change)


# One change at a time for callers that have one; the poller hands it whole pages.
on_promised_change = ForPage(on_promised_changes)


def _tell_new_promised_time(session: Session, change: RepairOrderChange) -> None:
    ro = change.ro
    if not change.promised_changed or ro.promised_at is None:
        return
    # A first promised time is the status texts' to mention; a past one is no news.
    if change.previous_promised_at is None or ro.stage not in NOT_READY_STAGES:
        return
    if ro.promised_at <= change.at:
        return
    _tell_customer(
        session,
        ro=ro,
        rooftop=change.rooftop,
        template="new_promised_time",
        dedupe_key=promised_dedupe_key(ro.id, ro.promised_at),
        now=change.at,
        expires_at=ro.promised_at,
    )
