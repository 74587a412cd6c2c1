"""JSON API for repair orders and each rooftop's DMS feed (health, quarantine, unmapped).

Every route needs an API principal (401 without) and sees only the principal's
group, and for advisors only their rooftops; anything else is a 404, so a caller
cannot even learn that another group's rooftop or RO exists.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.auth.deps import ApiPrincipalDep
from app.auth.service import Principal
from app.config import Stage
from app.customers.models import Customer
from app.db import utcnow
from app.dealers.models import Rooftop
from app.dealers.service import rooftop_by_slug
from app.deps import DatabaseDep, RowId
from app.repair_orders.models import (
    DmsPollState,
    QuarantinedRecord,
    RepairOrder,
    RoEvent,
    UnmappedStatus,
)
from app.repair_orders.schemas import (
    PollHealthOut,
    QuarantinedRecordOut,
    RepairOrderOut,
    RepairOrderSummaryOut,
    RoEventOut,
    RoLineOut,
    UnmappedStatusOut,
    VehicleOut,
)

router = APIRouter(prefix="/api/v1", tags=["repair orders"])


def _visible_rooftop(session: Session, principal: Principal, slug: str) -> Rooftop:
    rooftop = rooftop_by_slug(session, group_id=principal.group_id, slug=slug)
    if rooftop is None or not principal.can_see_rooftop(rooftop.id):
        raise HTTPException(status_code=404, detail=f"no rooftop {slug!r} visible to this token")
    return rooftop


@router.get("/rooftops/{slug}/poll-health", response_model=PollHealthOut)
def poll_health(slug: str, principal: ApiPrincipalDep, database: DatabaseDep) -> PollHealthOut:
    """Last success, lag, consecutive failures and last error of the rooftop's DMS poll."""
    with database.transaction() as session:
        rooftop = _visible_rooftop(session, principal, slug)
        state = session.get(DmsPollState, rooftop.id)
        if state is None:
            return PollHealthOut(
                rooftop=slug,
                healthy=False,
                cursor_at=None,
                last_attempt_at=None,
                last_success_at=None,
                lag_seconds=None,
                consecutive_failures=0,
                last_error=None,
                last_duration_ms=None,
                last_counts=None,
            )
        lag = None
        if state.last_success_at is not None:
            lag = int((utcnow() - state.last_success_at).total_seconds())
        return PollHealthOut(
            rooftop=slug,
            healthy=state.last_success_at is not None and state.consecutive_failures == 0,
            cursor_at=state.cursor_at,
            last_attempt_at=state.last_attempt_at,
            last_success_at=state.last_success_at,
            lag_seconds=lag,
            consecutive_failures=state.consecutive_failures,
            last_error=state.last_error,
            last_duration_ms=state.last_duration_ms,
            last_counts=state.last_counts,
        )


def _payload(text: str) -> dict[str, Any] | str:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


@router.get("/rooftops/{slug}/quarantine", response_model=list[QuarantinedRecordOut])
def quarantine(
    slug: str,
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QuarantinedRecordOut]:
    """Unresolved DMS records that could not be stored, newest first, with their reason."""
    with database.transaction() as session:
        rooftop = _visible_rooftop(session, principal, slug)
        rows = session.scalars(
            select(QuarantinedRecord)
            .where(
                QuarantinedRecord.rooftop_id == rooftop.id, QuarantinedRecord.resolved_at.is_(None)
            )
            .order_by(QuarantinedRecord.received_at.desc(), QuarantinedRecord.id.desc())
            .limit(limit)
        )
        return [
            QuarantinedRecordOut(
                id=row.id,
                ro_number=row.ro_number,
                reason=row.reason,
                payload=_payload(row.payload),
                received_at=row.received_at,
            )
            for row in rows
        ]


@router.get("/rooftops/{slug}/unmapped-statuses", response_model=list[UnmappedStatusOut])
def unmapped_statuses(
    slug: str, principal: ApiPrincipalDep, database: DatabaseDep
) -> list[UnmappedStatusOut]:
    """Raw DMS statuses with no stage in the rooftop's status_map: map them in the TOML."""
    with database.transaction() as session:
        rooftop = _visible_rooftop(session, principal, slug)
        rows = session.scalars(
            select(UnmappedStatus)
            .where(UnmappedStatus.rooftop_id == rooftop.id)
            .order_by(UnmappedStatus.count.desc(), UnmappedStatus.raw_status)
        )
        return [UnmappedStatusOut.model_validate(row) for row in rows]


def _summary_fields(ro: RepairOrder, slug: str, customer: Customer | None) -> dict[str, Any]:
    return {
        "id": ro.id,
        "rooftop": slug,
        "ro_number": ro.ro_number,
        "stage": ro.stage,
        "raw_status": ro.raw_status,
        "advisor_name": ro.advisor_name,
        "customer_id": ro.customer_id,
        "customer_name": customer.display_name if customer is not None else None,
        "opened_at": ro.opened_at,
        "promised_at": ro.promised_at,
        "closed_at": ro.closed_at,
    }


@router.get("/repair-orders", response_model=list[RepairOrderSummaryOut])
def list_repair_orders(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    stage: Stage | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RepairOrderSummaryOut]:
    """Repair orders of the rooftops this token may see, most recently opened first."""
    with database.transaction() as session:
        if rooftop is not None:
            rooftops = [_visible_rooftop(session, principal, rooftop)]
        else:
            rooftops = [
                r
                for r in session.scalars(
                    select(Rooftop).where(Rooftop.group_id == principal.group_id)
                )
                if principal.can_see_rooftop(r.id)
            ]
        slugs = {r.id: r.slug for r in rooftops}
        query = (
            select(RepairOrder, Customer)
            .outerjoin(Customer, Customer.id == RepairOrder.customer_id)
            .where(RepairOrder.rooftop_id.in_(list(slugs)))
            .order_by(RepairOrder.opened_at.desc(), RepairOrder.id.desc())
            .limit(limit)
        )
        if stage is not None:
            query = query.where(RepairOrder.stage == stage)
        return [
            RepairOrderSummaryOut(**_summary_fields(ro, slugs[ro.rooftop_id], customer))
            for ro, customer in session.execute(query)
        ]


@router.get("/repair-orders/{ro_id}", response_model=RepairOrderOut)
def get_repair_order(
    ro_id: RowId, principal: ApiPrincipalDep, database: DatabaseDep
) -> RepairOrderOut:
    """One repair order with its lines (cents) and its event history."""
    with database.transaction() as session:
        ro = session.scalar(
            select(RepairOrder)
            .where(RepairOrder.id == ro_id)
            .options(selectinload(RepairOrder.lines), selectinload(RepairOrder.vehicle))
        )
        rooftop = session.get(Rooftop, ro.rooftop_id) if ro is not None else None
        if (
            ro is None
            or rooftop is None
            or rooftop.group_id != principal.group_id
            or not principal.can_see_rooftop(rooftop.id)
        ):
            raise HTTPException(
                status_code=404, detail=f"no repair order {ro_id} visible to this token"
            )
        customer = session.get(Customer, ro.customer_id) if ro.customer_id else None
        events = session.scalars(
            select(RoEvent).where(RoEvent.repair_order_id == ro.id).order_by(RoEvent.at, RoEvent.id)
        )
        return RepairOrderOut(
            **_summary_fields(ro, rooftop.slug, customer),
            vehicle=VehicleOut.model_validate(ro.vehicle) if ro.vehicle is not None else None,
            lines=[RoLineOut.model_validate(line) for line in ro.lines],
            events=[RoEventOut.model_validate(event) for event in events],
        )
