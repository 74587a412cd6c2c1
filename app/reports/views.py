"""Reports API: declined-work recovery (DESIGN.md contract), as JSON or CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.auth.deps import ApiPrincipalDep
from app.auth.service import Principal
from app.db import utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.deps import DatabaseDep
from app.reports.schemas import DeclinedRecoveryReport, report_json
from app.reports.service import CSV_COLUMNS, declined_recovery, default_since, report_rows
from app.web.export import csv_response

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

RooftopQuery = Annotated[
    str | None, Query(description="rooftop slug; omitted = every rooftop you may see")
]
SinceQuery = Annotated[
    date | None, Query(description="first decline date (YYYY-MM-DD); default 90 days ago")
]


def _report(
    database: DatabaseDep, principal: Principal, rooftop: str | None, since: date | None
) -> DeclinedRecoveryReport:
    with database.transaction() as session:
        group = session.get_one(DealerGroup, principal.group_id)
        visible = [
            r
            for r in session.scalars(
                select(Rooftop).where(Rooftop.group_id == group.id).order_by(Rooftop.id)
            )
            if principal.can_see_rooftop(r.id)
        ]
        if rooftop is not None:
            visible = [r for r in visible if r.slug == rooftop]
            if not visible:
                # Unknown and not-yours answer alike: no rooftop names leak across scopes.
                raise HTTPException(404, f"no rooftop {rooftop!r} among the rooftops you may see")
        return declined_recovery(
            session,
            group=group,
            rooftops=visible,
            since=since or default_since(utcnow().date()),
        )


@router.get("/declined-recovery", response_model=DeclinedRecoveryReport)
def declined_recovery_report(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: RooftopQuery = None,
    since: SinceQuery = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: one row per line")] = "json",
) -> DeclinedRecoveryReport | Response:
    """Dollars declined, followed up, recovered, and recovered after a follow-up.

    With a holdout in scope, also the followed and held-out groups and the incremental
    recovery with its 95% intervals (`incremental` is null while there is too little data).
    """
    report = _report(database, principal, rooftop, since)
    if format == "csv":
        return _csv(report)
    return JSONResponse(report_json(report))


@router.get("/declined-recovery.csv", response_class=Response)
def declined_recovery_csv(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: RooftopQuery = None,
    since: SinceQuery = None,
) -> Response:
    """The same report, one CSV row per declined line."""
    return _csv(_report(database, principal, rooftop, since))


def _csv(report: DeclinedRecoveryReport) -> Response:
    return csv_response("declined-recovery.csv", CSV_COLUMNS, report_rows(report))
