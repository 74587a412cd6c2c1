"""The director's page: declined work won back, calls deflected and missed, delivery, opt-outs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.auth.deps import WebUser, WebUserDep, require_role
from app.db import utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.deps import DatabaseDep
from app.reports import contacts, readable
from app.reports.service import declined_recovery
from app.web import queries, report_queries
from app.web.charts import bar_chart
from app.web.export import csv_response
from app.web.holdout_report import HOLDOUT_COLUMNS, holdout_chart, holdout_rows
from app.web.templating import money, not_found, render

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90, 365)
CSV_NAMES = (
    "declined-recovery",
    "recovery-by-touch",
    "recovery-by-op-code",
    "followup-holdout",
    "deflections",
    "missed-calls",
    "delivery",
)


def _scope(
    request: Request, user: WebUser, database: DatabaseDep, rooftop: str | None, days: int
) -> tuple[list[Rooftop], Rooftop | None, datetime] | None:
    require_role(user, "director", "admin")
    if days not in PERIODS:
        raise HTTPException(status_code=422, detail=f"days must be one of {PERIODS}")
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
    chosen = next((r for r in rooftops if r.slug == rooftop), None) if rooftop else None
    if rooftop and chosen is None:
        return None
    zone = ZoneInfo(rooftops[0].timezone) if rooftops else ZoneInfo("UTC")
    start_day = utcnow().astimezone(zone).date() - timedelta(days=days - 1)
    since = datetime.combine(start_day, time(0), tzinfo=zone)
    return ([chosen] if chosen else rooftops), chosen, since


def _figures(
    user: WebUser, database: DatabaseDep, scope: tuple[list[Rooftop], Rooftop | None, datetime]
) -> dict[str, Any]:
    rooftops, _chosen, since = scope
    now = utcnow()
    with database.transaction() as session:
        # The very function GET /api/v1/reports/declined-recovery answers with.
        recovery = declined_recovery(
            session,
            group=session.get_one(DealerGroup, user.group_id),
            rooftops=rooftops,
            since=since.date(),
        )
        return {
            "recovery": recovery,
            # The API gives customer ids; people read names.
            "names": readable.customer_names(session, (ln.customer_id for ln in recovery.lines)),
            "descriptions": readable.op_code_descriptions(recovery.lines),
            "contacts": contacts.status_contacts_by_day(
                session, rooftops=rooftops, since=since, now=now
            ),
            "missed": contacts.missed_calls_by_hour(session, rooftops=rooftops, since=since),
            "delivery": report_queries.delivery_stats(
                session, group_id=user.group_id, rooftops=rooftops, since=since
            ),
        }


@router.get("/reports", response_class=HTMLResponse)
def reports(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    days: int = 30,
) -> Response:
    """Directors and admins only; advisors get 404 like any page they cannot see."""
    scope = _scope(request, user, database, rooftop, days)
    if scope is None:
        return not_found(request, user)
    figures = _figures(user, database, scope)
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
    context = {
        "title": "Reports",
        "nav": "reports",
        "rooftops": rooftops,
        "rooftop": scope[1],
        "days": days,
        "periods": PERIODS,
        "since": scope[2],
        "query": f"rooftop={scope[1].slug}&days={days}" if scope[1] else f"days={days}",
        "charts": _charts(figures),
        **figures,
        **_page_figures(figures),
    }
    return render(request, "web/reports.html", context, user=user)


@router.get("/reports/{name}.csv")
def report_download(
    request: Request,
    name: str,
    user: WebUserDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    days: int = 30,
) -> Response:
    """The numbers behind a chart, as CSV."""
    if name not in CSV_NAMES:
        return not_found(request, user)
    scope = _scope(request, user, database, rooftop, days)
    if scope is None:
        return not_found(request, user)
    figures = _figures(user, database, scope)
    filename = f"pitwall-{name}-{days}d.csv"
    header, rows = _TABLES[name](figures)
    return csv_response(filename, header, rows)


def _page_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """Totals the page shows beside its charts."""
    days = figures["contacts"]
    recovery = figures["recovery"]
    return {
        "contact_totals": {
            "texts_answered": sum(d.texts_answered for d in days),
            "calls_deflected": sum(d.calls_deflected for d in days),
            "status_calls": sum(d.status_calls for d in days),
            "page_views": sum(d.page_views for d in days),
            "answered": sum(d.answered for d in days),
        },
        "missed_total": sum(h.missed for h in figures["missed"]),
        "missed_out_of_hours": sum(h.out_of_hours for h in figures["missed"]),
        # The largest declined lines first: whom to call about what.
        "top_lines": sorted(recovery.lines, key=lambda ln: -ln.declined_cents)[:25],
    }


def _charts(figures: dict[str, Any]) -> dict[str, Any]:
    recovery = figures["recovery"]
    days = figures["contacts"]
    declined = money(recovery.declined_cents)
    return {
        "recovery": bar_chart(
            chart_id="chart-recovery",
            title="Recovered dollars by follow-up touch",
            bars=[
                (f"touch {b.key}" if b.key != "none" else "no follow-up", b.recovered_cents / 100)
                for b in recovery.by_touch
            ],
            prefix="$",
            empty_text=(
                f"None of the {declined} declined won back yet"
                if recovery.declined_cents
                else "No declined work in this period"
            ),
        ),
        "holdout": holdout_chart(recovery),  # None: no rooftop in scope holds plans out
        "deflections": bar_chart(
            chart_id="chart-deflections",
            title="Status contacts answered by Pitwall (texts, calls, page views), per day",
            bars=[(d.day.strftime("%b %-d"), d.answered) for d in days],
            empty_text="No status contacts answered in this period",
        ),
        "missed": bar_chart(
            chart_id="chart-missed",
            title="Missed calls by hour of day (rooftop time, out of hours included)",
            bars=[(_hour(h.hour), h.missed) for h in figures["missed"]],
            empty_text="No missed calls in this period",
        ),
    }


def _hour(hour: int) -> str:
    return f"{hour % 12 or 12}{'a' if hour < 12 else 'p'}"


Table = tuple[Sequence[str], list[Sequence[object]]]


def _lines_table(figures: dict[str, Any]) -> Table:
    # Dollars and names for people; GET /api/v1/reports/declined-recovery keeps cents and ids.
    return readable.LINE_COLUMNS, list(readable.line_rows(figures["recovery"], figures["names"]))


def _contacts_table(figures: dict[str, Any]) -> Table:
    header = ("day", "status_texts_answered", "status_calls", "calls_deflected", "page_views",
              "status_contacts_answered")  # fmt: skip
    rows: list[Sequence[object]] = [
        (
            d.day.isoformat(),
            d.texts_answered,
            d.status_calls,
            d.calls_deflected,
            d.page_views,
            d.answered,
        )
        for d in figures["contacts"]
    ]
    return header, rows


def _missed_table(figures: dict[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        (f"{h.hour:02d}:00", h.missed, h.out_of_hours) for h in figures["missed"]
    ]
    return ("hour", "missed_calls", "of_which_out_of_hours"), rows


def _delivery_table(figures: dict[str, Any]) -> Table:
    stats = figures["delivery"]
    header = ("attempted", "delivered", "not_delivered", "suppressed", "delivery_rate",
              "phones_texted", "opt_outs", "opt_out_rate")  # fmt: skip
    row = (stats.attempted, stats.delivered, stats.not_delivered, stats.suppressed,
           _ratio(stats.delivery_rate), stats.phones_texted, stats.opt_outs,
           _ratio(stats.opt_out_rate))  # fmt: skip
    return header, [row]


def _touch_table(figures: dict[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        [b.key, *readable.breakdown_row(b)] for b in figures["recovery"].by_touch
    ]
    return ("touch", *readable.BREAKDOWN_COLUMNS), rows


def _op_code_table(figures: dict[str, Any]) -> Table:
    descriptions = figures["descriptions"]
    rows: list[Sequence[object]] = [
        [b.key, descriptions.get(b.key, ""), *readable.breakdown_row(b)]
        for b in figures["recovery"].by_op_code
    ]
    return ("op_code", "description", *readable.BREAKDOWN_COLUMNS), rows


def _holdout_table(figures: dict[str, Any]) -> Table:
    return HOLDOUT_COLUMNS, holdout_rows(figures["recovery"])


_TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "declined-recovery": _lines_table,
    "followup-holdout": _holdout_table,
    "deflections": _contacts_table,
    "missed-calls": _missed_table,
    "delivery": _delivery_table,
    "recovery-by-touch": _touch_table,
    "recovery-by-op-code": _op_code_table,
}


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
