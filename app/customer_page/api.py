"""The customer page's measures in the JSON API (the director's numbers)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from app.auth.deps import ApiPrincipalDep
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep
from app.reports.customer_page import customer_page_measures, default_since

router = APIRouter()


@router.get("/api/v1/reports/customer-page", tags=["reports"])
def customer_page_report(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    since: date | None = None,
) -> dict[str, Any]:
    """Links opened, status seen on the page without a call, answers by page vs text, bookings."""
    with database.reading() as session:
        visible = [
            r
            for r in session.scalars(
                select(Rooftop).where(Rooftop.group_id == principal.group_id).order_by(Rooftop.id)
            )
            if principal.can_see_rooftop(r.id)
        ]
        if rooftop is not None:
            visible = [r for r in visible if r.slug == rooftop]
            if not visible:
                raise HTTPException(404, f"no rooftop {rooftop!r} among the rooftops you may see")
        return customer_page_measures(
            session, rooftops=visible, since=since or default_since(utcnow().date())
        )
