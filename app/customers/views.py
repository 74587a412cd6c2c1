"""Privacy API: erase a customer (admins), export the consent ledger (directors, admins).

Mounted by app.main (ROUTER_MODULES: "app.customers.views").
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from app.auth.deps import ApiPrincipalDep
from app.customers.privacy import CustomerNotFound, consent_csv, consent_rows, erase_customer
from app.db import utcnow
from app.dealers.service import rooftop_by_slug
from app.deps import DatabaseDep, RowId

router = APIRouter(prefix="/api/v1", tags=["privacy"])


@router.post("/customers/{customer_id}/erase")
def erase(customer_id: RowId, principal: ApiPrincipalDep, database: DatabaseDep) -> dict[str, Any]:
    """Remove the customer's personal data everywhere; reports keep anonymous counts (admin)."""
    if not principal.is_admin:
        raise HTTPException(404, f"no customer {customer_id} you may erase")
    with database.transaction() as session:
        try:
            report = erase_customer(
                session, customer_id=customer_id, at=utcnow(), group_id=principal.group_id
            )
        except CustomerNotFound:
            raise HTTPException(404, f"no customer {customer_id} you may erase") from None
    return asdict(report)


@router.get("/consent.csv", response_class=Response)
def consent_export(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: Annotated[str | None, Query(description="rooftop slug; omitted = group")] = None,
    full_numbers: Annotated[bool, Query(description="whole numbers instead of masked")] = False,
) -> Response:
    """The consent ledger for an audit: at, phone, channel, purpose, action, source, detail."""
    if principal.role not in ("director", "admin"):
        raise HTTPException(404, "Not Found")
    with database.transaction() as session:
        found = None
        if rooftop is not None:
            found = rooftop_by_slug(session, group_id=principal.group_id, slug=rooftop)
            if found is None or not principal.can_see_rooftop(found.id):
                raise HTTPException(404, f"no rooftop {rooftop!r} among the rooftops you may see")
        elif principal.rooftop_ids is not None:
            raise HTTPException(404, "name a rooftop you may see")
        text = consent_csv(
            consent_rows(session, group_id=principal.group_id, rooftop=found),
            full_numbers=full_numbers,
        )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="consent.csv"'},
    )
