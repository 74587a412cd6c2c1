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
from app.reports.service import CSV_COLUMNS, declined_recovery, report_rows
from app.web import queries, report_queries
from app.web.charts import bar_chart
from app.web.export import csv_response
from app.web.holdout_report import HOLDOUT_COLUMNS, holdout_chart, holdout_rows
from app.web.templating import not_found, render

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90, 365)
CSV_NAMES = (
    "declined-recovery",
    "recovery-by-touch",
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
        return {
            # The very function GET /api/v1/reports/declined-recovery answers with.
            "recovery": declined_recovery(
                session,
                group=session.get_one(DealerGroup, user.group_id),
                rooftops=rooftops,
                since=since.date(),
            ),
            "deflections": report_queries.deflections_by_day(
                session, rooftops=rooftops, since=since, now=now
            ),
            "missed": report_queries.missed_calls_by_hour(session, rooftops=rooftops, since=since),
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
    deflections = figures["deflections"]
    recovery = figures["recovery"]
    charts = {
        "recovery": bar_chart(
            chart_id="chart-recovery",
            title="Recovered dollars by follow-up touch",
            bars=[
                (f"touch {b.key}" if b.key != "none" else "no follow-up", b.recovered_cents / 100)
                for b in recovery.by_touch
            ],
            unit="",
        ),
        "holdout": holdout_chart(recovery),  # None: no rooftop in scope holds plans out
        "deflections": bar_chart(
            chart_id="chart-deflections",
            title="Status calls answered by Pitwall, per day",
            bars=[(d.day.strftime("%b %-d"), d.deflected) for d in deflections],
            label_every=max(len(deflections) // 8, 1),
        ),
        "missed": bar_chart(
            chart_id="chart-missed",
            title="Missed calls by hour of day (rooftop time)",
            bars=[(f"{h:02d}", n) for h, n in figures["missed"]],
            label_every=2,
        ),
    }
    context = {
        "title": "Reports",
        "nav": "reports",
        "rooftops": rooftops,
        "rooftop": scope[1],
        "days": days,
        "periods": PERIODS,
        "since": scope[2],
        "charts": charts,
        "query": f"rooftop={scope[1].slug}&days={days}" if scope[1] else f"days={days}",
        **figures,
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
    if name == "declined-recovery":
        # Same columns as the API's CSV: one row per declined line.
        return csv_response(filename, CSV_COLUMNS, report_rows(figures["recovery"]))
    header, rows = _TABLES[name](figures)
    return csv_response(filename, header, rows)


Table = tuple[Sequence[str], list[Sequence[object]]]


def _deflections_table(figures: dict[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        (d.day.isoformat(), d.status_calls, d.deflected) for d in figures["deflections"]
    ]
    return ("day", "status_calls", "deflected"), rows


def _missed_table(figures: dict[str, Any]) -> Table:
    return ("hour", "missed_calls"), list(figures["missed"])


def _delivery_table(figures: dict[str, Any]) -> Table:
    stats = figures["delivery"]
    header = ("attempted", "delivered", "not_delivered", "suppressed", "delivery_rate",
              "phones_texted", "opt_outs", "opt_out_rate")  # fmt: skip
    row = (stats.attempted, stats.delivered, stats.not_delivered, stats.suppressed,
           _ratio(stats.delivery_rate), stats.phones_texted, stats.opt_outs,
           _ratio(stats.opt_out_rate))  # fmt: skip
    return header, [row]


def _touch_table(figures: dict[str, Any]) -> Table:
    header = ("touch", "lines", "declined_cents", "followed_up_cents", "recovered_cents",
              "recovered_after_followup_cents")  # fmt: skip
    rows: list[Sequence[object]] = [
        (
            b.key,
            b.line_count,
            b.declined_cents,
            b.followed_up_cents,
            b.recovered_cents,
            b.recovered_after_followup_cents,
        )
        for b in figures["recovery"].by_touch
    ]
    return header, rows


def _holdout_table(figures: dict[str, Any]) -> Table:
    return HOLDOUT_COLUMNS, holdout_rows(figures["recovery"])


_TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "followup-holdout": _holdout_table,
    "deflections": _deflections_table,
    "missed-calls": _missed_table,
    "delivery": _delivery_table,
    "recovery-by-touch": _touch_table,
}


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
