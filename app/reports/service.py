"""The declined-recovery report: every number is a sum over declined-line rows.

A declined line is a line with status `declined`, or `pending` on an RO that
closed (recommended, never approved), on an RO that was not canceled. Its date is
the declining RO's close (or its opening, while open), in its rooftop's zone; the
report keeps lines dated on or after `since`. Per line:

- declined_cents: the line's amount.
- followed_up_cents: the amount when at least one touch of the plan covering the
  line was sent (Twilio accepted it) before the line was recovered, or until now.
- recovered_cents: the amount recorded on its Recovery row, which is the DECLINED
  amount (see app/followups/recovery.py), so recovered <= declined line by line.
- recovered_after_followup_cents: recovered_cents when a touch preceded the recovery.

Totals and every breakdown (rooftop, advisor, op code, touch, month) are plain sums
of these per-line columns, so they add up exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.customer_page.bookings import booked_lines
from app.db import chunks
from app.dealers.models import DealerGroup, Rooftop
from app.followups.models import FollowupLine, FollowupTouch, Recovery
from app.followups.recovery import SENT_STATES
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine
from app.reports.holdout import DEFINITIONS as HOLDOUT_DEFINITIONS
from app.reports.holdout import holdout_fields, plan_draws
from app.reports.schemas import Breakdown, DeclinedRecoveryReport, RecoveryLine

DEFAULT_SINCE_DAYS = 90
DEFINITIONS = {
    "declined_cents": (
        "amount of declined lines (declined, or still pending when the RO closed; canceled ROs "
        "excluded) dated on or after `since` (RO close, else open, rooftop time)"
    ),
    "followed_up_cents": (
        "declined amount of lines whose follow-up plan sent at least one touch "
        "(before the recovery, when recovered)"
    ),
    "recovered_cents": (
        "declined amount of lines whose op code was later approved or completed for the same "
        "VIN (or customer, without VIN) at any rooftop of the group within recovery_window_days"
    ),
    "recovered_after_followup_cents": "recovered_cents of lines recovered after a sent touch",
    "booked_cents": (
        "declined amount of lines the customer booked (an appointment request) from their page"
    ),
    "touch": "last touch sent before the recovery (or until now); 0 / 'none' = never followed up",
}
_CHUNK = 500
T = TypeVar("T")


def default_since(today: date) -> date:
    return today - timedelta(days=DEFAULT_SINCE_DAYS)


def _declined_lines(
    session: Session, *, rooftops: Sequence[Rooftop], since: date
) -> list[tuple[RoLine, RepairOrder]]:
    # A day of slack in UTC, then the exact local-date test per rooftop below (no slack
    # before the first day a date can hold: `since=0001-01-01` asks for everything).
    slack = since - timedelta(days=1) if since > date.min else since
    bound = datetime.combine(slack, time(), tzinfo=UTC)
    rows = session.execute(
        select(RoLine, RepairOrder)
        .join(RepairOrder, RepairOrder.id == RoLine.repair_order_id)
        .where(
            RepairOrder.rooftop_id.in_([r.id for r in rooftops]),
            RepairOrder.stage != "canceled",
            or_(
                RoLine.status == "declined",
                and_(RoLine.status == "pending", RepairOrder.stage == "closed"),
            ),
            or_(
                RepairOrder.closed_at >= bound,
                and_(RepairOrder.closed_at.is_(None), RepairOrder.opened_at >= bound),
            ),
        )
        .options(selectinload(RepairOrder.vehicle))
        .order_by(RepairOrder.rooftop_id, RepairOrder.opened_at, RoLine.id)
    ).all()
    zones = {r.id: r.settings.zone for r in rooftops}
    kept = []
    for line, ro in rows:
        when = ro.closed_at or ro.opened_at
        if when.astimezone(zones[ro.rooftop_id]).date() >= since:
            kept.append((line, ro))
    return kept


def _recoveries(
    session: Session, line_ids: list[int]
) -> dict[int, tuple[Recovery, RoLine, RepairOrder]]:
    found: dict[int, tuple[Recovery, RoLine, RepairOrder]] = {}
    for chunk in chunks(line_ids, _CHUNK):
        for recovery, line, ro in session.execute(
            select(Recovery, RoLine, RepairOrder)
            .join(RoLine, RoLine.id == Recovery.recovering_line_id)
            .join(RepairOrder, RepairOrder.id == RoLine.repair_order_id)
            .where(Recovery.declined_line_id.in_(chunk))
        ).all():
            found[recovery.declined_line_id] = (recovery, line, ro)
    return found


def _plans(session: Session, line_ids: list[int]) -> dict[int, int]:
    plans: dict[int, int] = {}
    for chunk in chunks(line_ids, _CHUNK):
        rows = session.execute(
            select(FollowupLine.ro_line_id, FollowupLine.plan_id).where(
                FollowupLine.ro_line_id.in_(chunk)
            )
        ).all()
        plans.update({line_id: plan_id for line_id, plan_id in rows})
    return plans


def _last_sent_touch(session: Session, plan_ids: list[int]) -> dict[int, int]:
    sent: dict[int, int] = {}
    for chunk in chunks(plan_ids, _CHUNK):
        rows = session.execute(
            select(FollowupTouch.plan_id, func.max(FollowupTouch.touch_no))
            .join(OutboundMessage, OutboundMessage.id == FollowupTouch.outbound_message_id)
            .where(FollowupTouch.plan_id.in_(chunk), OutboundMessage.state.in_(SENT_STATES))
            .group_by(FollowupTouch.plan_id)
        ).all()
        sent.update({plan_id: touch_no for plan_id, touch_no in rows})
    return sent


def declined_recovery(
    session: Session, *, group: DealerGroup, rooftops: Sequence[Rooftop], since: date
) -> DeclinedRecoveryReport:
    """The report for these rooftops (all of one group) from `since` on."""
    pairs = _declined_lines(session, rooftops=rooftops, since=since) if rooftops else []
    line_ids = [line.id for line, _ in pairs]
    recoveries = _recoveries(session, line_ids)
    plans = _plans(session, line_ids)
    sent = _last_sent_touch(session, sorted(set(plans.values())))
    draws = plan_draws(session, sorted(set(plans.values())))
    booked = booked_lines(session, sorted({ro.id for _, ro in pairs}))
    slugs = {r.id: r.slug for r in group.rooftops}
    by_id = {r.id: r for r in rooftops}
    lines: list[RecoveryLine] = []
    for line, ro in pairs:
        zone = by_id[ro.rooftop_id].settings.zone
        declined_on = (ro.closed_at or ro.opened_at).astimezone(zone).date()
        plan_id = plans.get(line.id)
        found = recoveries.get(line.id)
        if found is not None:
            recovery, recovering_line, recovering_ro = found
            touch = recovery.preceding_touch_no or 0
            recovered = recovery.recovered_cents
        else:
            touch = sent.get(plan_id, 0) if plan_id is not None else 0
            recovered = 0
        lines.append(
            RecoveryLine(
                line_id=line.id,
                rooftop=slugs[ro.rooftop_id],
                ro_number=ro.ro_number,
                advisor=ro.advisor_name or ro.advisor_ref or "(no advisor)",
                op_code=line.op_code,
                description=line.description,
                vin=ro.vehicle.vin if ro.vehicle else None,
                customer_id=ro.customer_id,
                declined_on=declined_on,
                month=f"{declined_on:%Y-%m}",
                plan_id=plan_id,
                touch=touch,
                declined_cents=line.amount_cents,
                followed_up_cents=line.amount_cents if touch else 0,
                recovered_cents=recovered,
                recovered_after_followup_cents=recovered if touch else 0,
                recovered_on=(
                    recovery.recovered_at.astimezone(zone).date() if found is not None else None
                ),
                recovering_rooftop=slugs.get(recovering_ro.rooftop_id) if found else None,
                recovering_ro_number=recovering_ro.ro_number if found else None,
                recovering_amount_cents=recovering_line.amount_cents if found else None,
                customer_replied=recovery.customer_replied if found else None,
                holdout=draws[plan_id][0] if plan_id is not None else None,
                holdout_percent=draws[plan_id][1] if plan_id is not None else None,
                booked_cents=line.amount_cents if (ro.id, line.line_code) in booked else 0,
            )
        )
    total = _breakdown(lines, lambda _: "all")
    totals = total[0] if total else Breakdown(key="all")
    holdout = holdout_fields(lines, rooftops)
    return DeclinedRecoveryReport(
        declined_cents=totals.declined_cents,
        followed_up_cents=totals.followed_up_cents,
        recovered_cents=totals.recovered_cents,
        recovered_after_followup_cents=totals.recovered_after_followup_cents,
        booked_cents=sum(line.booked_cents for line in lines),
        booked_lines=sum(1 for line in lines if line.booked_cents),
        lines=lines,
        by_rooftop=_breakdown(lines, lambda ln: ln.rooftop),
        by_advisor=_breakdown(lines, lambda ln: ln.advisor),
        by_op_code=_breakdown(lines, lambda ln: ln.op_code),
        by_touch=_breakdown(lines, lambda ln: str(ln.touch) if ln.touch else "none"),
        by_month=_breakdown(lines, lambda ln: ln.month),
        rooftops=[r.slug for r in rooftops],
        since=since,
        recovery_window_days=group.recovery_window_days,
        definitions=DEFINITIONS | (HOLDOUT_DEFINITIONS if holdout else {}),
        **holdout,
    )


def _breakdown(lines: list[RecoveryLine], key: Callable[[RecoveryLine], str]) -> list[Breakdown]:
    groups: dict[str, Breakdown] = defaultdict(lambda: Breakdown(key=""))
    for line in lines:
        row = groups[key(line)]
        row.declined_cents += line.declined_cents
        row.followed_up_cents += line.followed_up_cents
        row.recovered_cents += line.recovered_cents
        row.recovered_after_followup_cents += line.recovered_after_followup_cents
        row.line_count += 1
    return [row.model_copy(update={"key": name}) for name, row in sorted(groups.items())]


CSV_COLUMNS = tuple(RecoveryLine.model_fields)


def report_rows(report: DeclinedRecoveryReport) -> Iterator[list[object]]:
    """The report's lines as CSV rows (one per declined line, in CSV_COLUMNS order).

    Op codes, descriptions and names come from the DMS: write them with
    app.web.export.csv_response, which keeps "=HYPERLINK(...)" text in a spreadsheet.
    """
    for line in report.lines:
        row = line.model_dump(mode="json")
        yield [row[column] for column in CSV_COLUMNS]
