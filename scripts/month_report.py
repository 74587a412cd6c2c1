"""Print a declined-recovery report with, for each total, the rows it is the sum of."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import select

from app.dealers.models import DealerGroup
from app.deps import Database
from app.followups.models import FollowupTouch, Recovery
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine
from app.reports.schemas import DeclinedRecoveryReport
from app.reports.service import declined_recovery


def print_report(database: Database, *, since: date) -> DeclinedRecoveryReport:
    """Print the report and, for each total, the rows it is the sum of."""
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        report = declined_recovery(session, group=group, rooftops=list(group.rooftops), since=since)
        recoveries = {r.declined_line_id: r for r in session.scalars(select(Recovery))}
        touches = session.execute(
            select(
                FollowupTouch.plan_id,
                FollowupTouch.touch_no,
                FollowupTouch.state,
                OutboundMessage.state,
                OutboundMessage.provider_sid,
            ).join(
                OutboundMessage,
                OutboundMessage.id == FollowupTouch.outbound_message_id,
                isouter=True,
            )
        ).all()
        ros = {ro.id: ro.ro_number for ro in session.scalars(select(RepairOrder))}
        rec_lines = {
            ln.id: ros[ln.repair_order_id]
            for ln in session.scalars(
                select(RoLine).where(
                    RoLine.id.in_([r.recovering_line_id for r in recoveries.values()])
                )
            )
        }
    money = lambda c: f"${c / 100:,.2f}"  # noqa: E731
    print(
        f"\nDECLINED-RECOVERY REPORT  rooftops={report.rooftops} since={report.since} "
        f"window={report.recovery_window_days}d"
    )
    for name in (
        "declined_cents",
        "followed_up_cents",
        "recovered_cents",
        "recovered_after_followup_cents",
    ):
        print(f"  {name:32s} {getattr(report, name):>9d}  ({money(getattr(report, name))})")
    print_holdout(report)
    for title in ("by_rooftop", "by_advisor", "by_op_code", "by_touch", "by_month"):
        print(
            f"\n  {title:14s} {'declined':>9s} {'followed':>9s} {'recovered':>9s} "
            f"{'after_fu':>9s} lines"
        )
        for row in getattr(report, title):
            print(
                f"  {row.key:14s} {row.declined_cents:9d} {row.followed_up_cents:9d} "
                f"{row.recovered_cents:9d} {row.recovered_after_followup_cents:9d} "
                f"{row.line_count:5d}"
            )
    print(
        f"\nLINES ({len(report.lines)}): ro_line.id rooftop RO op_code declined plan touch "
        "recovered <- the recovery row it comes from"
    )
    for ln in report.lines:
        rec = recoveries.get(ln.line_id)
        trace = (
            (
                f"recovery#{rec.id}: line {rec.recovering_line_id} on "
                f"{rec_lines[rec.recovering_line_id]} ({ln.recovering_rooftop}) "
                f"touch={rec.preceding_touch_no} replied={rec.customer_replied}"
            )
            if rec
            else ""
        )
        print(
            f"  {ln.line_id:5d} {ln.rooftop:14s} {ln.ro_number:6s} {ln.op_code:7s} "
            f"{ln.declined_cents:7d} plan={ln.plan_id!s:4s}{'H' if ln.holdout else ' '} "
            f"touch={ln.touch} "
            f"{ln.recovered_cents:7d} {trace}"
        )
    by_state: dict[str, int] = defaultdict(int)
    for _plan, _no, touch_state, message_state, _sid in touches:
        by_state[f"touch {touch_state} / message {message_state}"] += 1
    print("\nTOUCHES:", dict(sorted(by_state.items())))
    print(
        "CHECK: declined = sum(lines.declined_cents) =",
        sum(x.declined_cents for x in report.lines),
        "| recovered = sum(recovery.recovered_cents of listed lines) =",
        sum(recoveries[x.line_id].recovered_cents for x in report.lines if x.line_id in recoveries),
    )
    return report


def print_holdout(report: DeclinedRecoveryReport) -> None:
    """Followed against held-out plans, and the incremental estimate (or why there is none)."""
    if report.followed is None or report.holdout is None:
        print("\n  HOLDOUT: off at every rooftop in scope")
        return
    print(f"\n  {'HOLDOUT':14s} {'plans':>6s} {'lines':>6s} {'declined':>9s} {'rec_lines':>9s} "
          f"{'recovered':>9s}")  # fmt: skip
    for name, block in (("followed", report.followed), ("held out", report.holdout)):
        print(
            f"  {name:14s} {block.plans:6d} {block.lines:6d} {block.declined_cents:9d} "
            f"{block.recovered_lines:9d} {block.recovered_cents:9d}"
        )
    inc = report.incremental
    if inc is None:
        print(f"  incremental: {report.not_enough_data}")
        return
    print(
        f"  incremental: dollars {inc.rate:+.1%} (95% CI {inc.ci95[0]:+.1%} to {inc.ci95[1]:+.1%})"
        f" = {inc.cents / 100:+,.2f} (${inc.cents_ci95[0] / 100:,.2f} to "
        f"${inc.cents_ci95[1] / 100:,.2f}); lines {inc.line_rate:+.1%} "
        f"({inc.line_ci95[0]:+.1%} to {inc.line_ci95[1]:+.1%})"
    )
